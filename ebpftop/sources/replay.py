"""Replays a recording: no root, no BCC."""

from __future__ import annotations

from pathlib import Path

from ebpftop.model import Snapshot
from ebpftop.recording import read_recording


class ReplaySource:
    def __init__(self, path: str | Path, speed: float = 1.0):
        self.path = Path(path)
        self.speed = speed
        self._snapshots: list[Snapshot] = read_recording(self.path)  # errors now, before any UI
        self._next = 0
        self.interval_s = self._snapshots[0].interval_s / speed

    @property
    def ended(self) -> bool:
        return self._next >= len(self._snapshots)

    def start(self) -> dict[str, str]:
        return dict(self._snapshots[0].status)

    def poll(self) -> Snapshot | None:
        if self.ended:
            return None
        snap = self._snapshots[self._next]
        self._next += 1
        return snap

    def drain_events(self) -> None:
        """Nothing to drain: the recording holds whole intervals."""

    def close(self) -> None:
        pass
