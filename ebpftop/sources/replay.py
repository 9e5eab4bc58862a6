"""Replays snapshots made earlier: a recording, or a list (tests).  No root,
no BCC."""

from __future__ import annotations

import datetime as _dt
import re
from pathlib import Path

from ebpftop.model import Snapshot
from ebpftop.recording import read_recording
from ebpftop.sets.file_opens import Alert

_RELATIVE = re.compile(r"^-(\d+(?:\.\d+)?)(s|m|min|h)$")
_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?$")


def split_at(snapshots: list[Snapshot], at: str) -> tuple[list[Snapshot], list[Snapshot]]:
    """--at: the snapshots before that moment (the TUI keeps them to rewind
    into) and those from it on (played).  AT is a clock time of the
    recording's first day (10:32, 10:32:05; the next day's if the recording
    runs past midnight) or a time before its end (-5m, -90s, -1h; from the
    start if the recording is shorter).  The first played snapshot is the
    first whose interval ends at AT or later.
    ValueError: a bad AT, or one outside the recording."""
    first, last = snapshots[0].time, snapshots[-1].time
    m = _RELATIVE.match(at.strip())
    if m:
        seconds = float(m.group(1)) * {"s": 1, "m": 60, "min": 60, "h": 3600}[m.group(2)]
        when = max(last - seconds, first)  # further back than the recording: from its start
    elif (m := _CLOCK.match(at.strip())):
        h, mi, s = int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)
        if h > 23 or mi > 59 or s > 59:
            raise ValueError(f"--at {at!r}: not a time of day")
        day = _dt.datetime.fromtimestamp(first)
        moment = day.replace(hour=h, minute=mi, second=s, microsecond=0)
        if moment.timestamp() < first - snapshots[0].interval_s:
            moment += _dt.timedelta(days=1)  # a recording past midnight: the next day's
        when = moment.timestamp()
    else:
        raise ValueError(f"--at {at!r}: give a time of day (10:32, 10:32:05) or a time before the end (-5m, -90s, -1h)")
    i = next((k for k, snap in enumerate(snapshots) if snap.time >= when), None)
    if i is None or when < first - snapshots[0].interval_s:
        span = f"{_clock(first - snapshots[0].interval_s)} to {_clock(last)}"
        raise ValueError(f"--at {at!r}: the recording covers {span}")
    return snapshots[:i], snapshots[i:]


def _clock(t: float) -> str:
    return _dt.datetime.fromtimestamp(t).strftime("%H:%M:%S")


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
    def snapshots(self) -> list[Snapshot]:
        return list(self._snapshots)

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
