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
        """The inner source's snapshot, written first.  A write that fails
        (the disk is full, say) never stops the monitor: the snapshot is
        returned all the same, and its notices say so once (the TUI's
        notification, --json's stderr and its notices)."""
        snap = self.inner.poll()
        if snap is None:
            return None
        self.recorder.write(snap)
        notices = self.recorder.take_notices()
        return snap.replace(notices=snap.notices + notices) if notices else snap

    def close(self) -> None:
        try:
            self.inner.close()
        finally:
            self.recorder.close()
