"""Replays snapshots made earlier: a recording, or a list (tests).  No root,
no BCC."""

from __future__ import annotations

from pathlib import Path

from ebpftop.model import Alert, Snapshot
from ebpftop.recording import read_recording


class ReplaySource:
    kind = "replay"

    def __init__(self, snapshots: list[Snapshot], label: str = "", speed: float = 1.0,
                 interval_s: float | None = None):
        if not snapshots:
            raise ValueError("nothing to replay")
        self.label = label
        self.speed = speed
        self._snapshots = list(snapshots)
        self._next = 0
        self._alerts: list[Alert] = []  # of the snapshots polled, not yet handed to poll_alerts()
        self.interval_s = (interval_s or self._snapshots[0].interval_s) / speed
        self.probe_stats = self._snapshots[0].probe_stats

    @classmethod
    def from_file(cls, path: str | Path, speed: float = 1.0) -> ReplaySource:
        """A recording, read and checked now (errors before any UI)."""
        return cls(read_recording(path), label=Path(path).name, speed=speed)

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
        self._alerts.extend(snap.alerts)
        self.probe_stats = snap.probe_stats
        return snap

    def poll_alerts(self) -> list[Alert]:
        out, self._alerts = self._alerts, []
        return out

    def drain_events(self) -> None:
        """Nothing to drain: the recording holds whole intervals."""

    def set_probe_stats(self, on: bool) -> str:
        """A recording shows the probe costs it recorded; nothing to turn on."""
        return self.probe_stats

    def close(self) -> None:
        pass
