"""--record: a source whose every snapshot is also written to a recording,
whoever polls it (the TUI or headless mode).  The one place a recording is
written."""

from __future__ import annotations

from ebpftop.model import Snapshot
from ebpftop.recording import Recorder
from ebpftop.sources.base import Wrapper


class RecordedSource(Wrapper):
    def __init__(self, inner, recorder: Recorder):
        super().__init__(inner)
        self.recorder = recorder

    def poll(self) -> Snapshot | None:
        """The inner source's snapshot, written first; a write that fails
        raises RecordingError (the disk is full, say)."""
        snap = self.inner.poll()
        if snap is not None:
            self.recorder.write(snap)
        return snap

    def close(self) -> None:
        try:
            self.inner.close()
        finally:
            self.recorder.close()
