"""Replays snapshots made earlier: a recording, or a list (tests).  No root,
no BCC."""

from __future__ import annotations

import datetime as _dt
import re
from collections import deque
from pathlib import Path

from ebpftop import sets
from ebpftop.history import MAX_KEPT_ROWS, snapshot_rows
from ebpftop.model import Snapshot
from ebpftop.recording import iter_recording
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
    else:
        when = _clock_moment(at, snapshots[0])
    i = next((k for k, snap in enumerate(snapshots) if snap.time >= when), None)
    if i is None or when < first - snapshots[0].interval_s:
        span = f"{_clock(first - snapshots[0].interval_s)} to {_clock(last)}"
        raise ValueError(f"--at {at!r}: the recording covers {span}")
    return snapshots[:i], snapshots[i:]


def _clock_moment(at: str, first: Snapshot) -> float:
    """--at as a clock time: that moment of the recording's first day (the
    next day's if before the recording's start)."""
    m = _CLOCK.match(at.strip())
    if not m:
        raise ValueError(f"--at {at!r}: give a time of day (10:32, 10:32:05) or a time before the end (-5m, -90s, -1h)")
    h, mi, s = int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)
    if h > 23 or mi > 59 or s > 59:
        raise ValueError(f"--at {at!r}: not a time of day")
    moment = _dt.datetime.fromtimestamp(first.time).replace(hour=h, minute=mi, second=s, microsecond=0)
    if moment.timestamp() < first.time - first.interval_s:
        moment += _dt.timedelta(days=1)
    return moment.timestamp()


def load(path: str | Path, at: str | None = None, max_rows: int = MAX_KEPT_ROWS) -> tuple[list[Snapshot], list[Snapshot]]:
    """A recording read for replaying: the snapshots before --at (kept to
    rewind into) and those played, at most max_rows rows in all, the rows
    the TUI keeps (a recording is read whole into memory, a few hundred
    bytes a row: a day's recording of a busy host would not fit).  Without
    --at the recording is played from its start, up to that many rows; with
    a clock time, from there on (the rows before it dropped first); with a
    time before the end, up to the end.  What is left out is said in the
    first played snapshot's notices.  ValueError: a bad --at, or one outside
    the recording; RecordingError: a bad recording."""
    label = "stdin" if str(path) == "-" else str(path)
    relative = at is not None and _RELATIVE.match(at.strip())
    kept: deque[tuple[Snapshot, int]] = deque()
    rows = backlog = 0  # rows kept; how many of the kept snapshots come before --at
    started = at is None  # whether --at is reached
    first = last = None
    when = None
    dropped = 0
    stopped_at = None
    for snap in iter_recording(path):
        if first is None:
            first = snap
            if at is not None and not relative:
                when = _clock_moment(at, snap)
        last = snap
        if not started and when is not None and snap.time >= when:
            started = True
        n = snapshot_rows(snap)
        kept.append((snap, n))
        rows += n
        if not started:
            backlog += 1
        while rows > max_rows and len(kept) > 1:
            if started and not backlog:  # the played part alone fills the budget: the rest is not read
                kept.pop()
                rows -= n
                stopped_at = snap
                break
            _, m = kept.popleft()
            rows -= m
            dropped += 1
            backlog -= 1 if backlog else 0
        if stopped_at is not None:
            break
    snapshots = [s for s, _ in kept]
    if at is None:
        before, played = [], snapshots
    elif relative:
        before, played = split_at(snapshots, at)
    else:
        if not started or when < first.time - first.interval_s:
            span = f"{_clock(first.time - first.interval_s)} to {_clock(last.time)}"
            raise ValueError(f"--at {at!r}: the recording covers {span}")
        before, played = snapshots[:backlog], snapshots[backlog:]
    notes = []
    if dropped:
        notes.append(f"replaying {label}: the {dropped} intervals before {_clock(snapshots[0].time)} are left out: more "
                     f"than the {max_rows:,} rows kept in memory")
    if stopped_at is not None:
        notes.append(f"replaying {label} up to {_clock(played[-1].time)}: the rest is left out, more than the "
                     f"{max_rows:,} rows kept in memory (--at TIME replays from a later time)")
    if notes:
        played[0] = played[0].replace(notices=played[0].notices + tuple(notes))
    return before, played


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
        return cls(load(path)[1], label=Path(path).name, speed=speed)

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
        self._alerts.extend(sorted((a for part in sets.STREAMED for a in getattr(snap, part)), key=lambda a: a.time))
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

    def set_option(self, name: str, value) -> bool:
        """A recording was read with the options it was made with."""
        return False

    def close(self) -> None:
        pass
