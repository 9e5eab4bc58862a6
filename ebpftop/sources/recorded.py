"""--record: a source whose every snapshot is also written to a recording,
whoever polls it (the TUI or headless mode).  The one place a recording is
written."""

from __future__ import annotations

from ebpftop.model import Alert, Snapshot
from ebpftop.recording import Recorder


class RecordedSource:
    def __init__(self, inner, recorder: Recorder):
        self.inner = inner
        self.recorder = recorder
        self.kind = inner.kind
        self.label = inner.label

    @property
    def interval_s(self) -> float:
        return self.inner.interval_s

    @property
    def probe_stats(self) -> str:
        return self.inner.probe_stats

    def start(self) -> dict[str, str]:
        return self.inner.start()

    def poll(self) -> Snapshot | None:
        """The inner source's snapshot, written first; a write that fails
        raises RecordingError (the disk is full, say)."""
        snap = self.inner.poll()
        if snap is not None:
            self.recorder.write(snap)
        return snap

    def poll_alerts(self) -> list[Alert]:
        return self.inner.poll_alerts()

    def drain_events(self) -> None:
        self.inner.drain_events()

    def set_probe_stats(self, on: bool) -> str:
        return self.inner.set_probe_stats(on)

    def close(self) -> None:
        try:
            self.inner.close()
        finally:
            self.recorder.close()
