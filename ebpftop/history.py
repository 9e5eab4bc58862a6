"""What the views show beyond one interval: the snapshots kept for rewinding,
the rows of the parts declared ``kept`` (new connections, process events,
closed connections, alerts) with their counts since start, the totals since
start of the parts declared ``since_start`` (page faults per process), and
losses.  Pure; fed one snapshot at a time."""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field

from ebpftop import snapshots
from ebpftop.model import Snapshot
from ebpftop.sets import PARTS, STREAMED

MAX_CONTAINERS = 4096  # cgroup id -> container, for the rows kept above
MAX_SINCE_START = 65536  # keys counted since start per part: the least recently seen go first (pids come and go)
# Snapshots kept for rewinding the TUI: the last hour, and at most this many
# rows over all of them (a busy host's snapshots are large: the oldest go
# first when the rows would pass it).
HISTORY_S = 3600.0
MAX_KEPT_ROWS = 400_000  # about 110 MiB at the ~290 bytes a row of tests/bench/history_memory.py

KEPT = {name: part for name, part in PARTS.items() if getattr(part, "kept", 0)}
SINCE_START = {name: part for name, part in PARTS.items() if getattr(part, "since_start", None)}


def snapshot_rows(snap: Snapshot) -> int:
    """How many rows a snapshot holds (what its memory grows with), as each
    part counts them: a syscall row's pids count as rows too (Rows.row_size),
    as a fork storm makes one row of 10,000 pids an interval, 1 MiB (600
    such intervals took 616 MiB while counted as 12,600 rows:
    tests/bench/history_memory.py --fork-storm)."""
    return snapshots.size(snap)


@dataclass
class History:
    logs: dict = field(default_factory=lambda: {name: deque(maxlen=p.kept) for name, p in KEPT.items()})  # newest first
    totals: dict = field(default_factory=lambda: dict.fromkeys(KEPT, 0))  # rows of each kept part since start
    since_start: dict = field(default_factory=lambda: {name: OrderedDict() for name in SINCE_START})
    lost_total: dict = field(default_factory=dict)
    skipped_total: dict = field(default_factory=dict)
    polls: int = 0
    containers: OrderedDict = field(default_factory=OrderedDict)  # cgroup id -> Container, of every snapshot so far (bounded)
    snapshots: deque = field(default_factory=deque)  # (snapshot, its rows), oldest first: what the TUI rewinds through
    kept_rows: int = 0
    history_s: float = HISTORY_S
    max_kept_rows: int = MAX_KEPT_ROWS

    def keep(self, snap: Snapshot) -> None:
        """Keep a snapshot for rewinding; drop the oldest beyond the time
        window or the row budget (the newest is always kept)."""
        rows = snapshot_rows(snap)
        self.snapshots.append((snap, rows))
        self.kept_rows += rows
        while len(self.snapshots) > 1 and (self.kept_rows > self.max_kept_rows
                                           or snap.time - self.snapshots[0][0].time > self.history_s):
            _, n = self.snapshots.popleft()
            self.kept_rows -= n

    def kept_times(self) -> list[float]:
        return [s.time for s, _ in self.snapshots]

    def log(self, part: str, until: float | None = None, time_field: str = "time") -> tuple:
        """The kept rows of a part, newest first, as they were at time until
        (None: now)."""
        rows = self.logs[part]
        if until is None:
            return tuple(rows)
        return tuple(r for r in rows if (getattr(r, time_field) or 0) <= until)

    def totals_at(self, t: float | None) -> dict[str, int]:
        """The rows of each kept part since start as they were at the kept
        snapshot of time t (None: now): the later kept snapshots' taken off."""
        out = dict(self.totals)
        if t is not None:
            for snap, _ in reversed(self.snapshots):
                if snap.time <= t:
                    break
                for name in out:
                    out[name] -= len(getattr(snap, name))
        return out

    def since_start_at(self, part: str, t: float | None = None) -> dict:
        """key -> its total since start of a since_start part, at the
        snapshot of time t (None: now; the later kept snapshots' taken off)."""
        out = dict(self.since_start[part])
        if t is not None:
            key_of = PARTS[part].since_start
            for snap, _ in reversed(self.snapshots):
                if snap.time <= t:
                    break
                for r in getattr(snap, part):
                    key, n = key_of(r)
                    out[key] = out.get(key, 0) - n
        return out

    def add_streamed(self, part: str, rows) -> None:
        """Rows the source hands over as they come (alerts: Source.poll_alerts
        is their one route into the TUI), oldest first."""
        log = self.logs[part]
        for r in rows:
            log.appendleft(r)
        self.totals[part] += len(rows)

    # Alerts are the Source's own stream (Source.poll_alerts): the status
    # line counts them whatever tab is shown.
    def add_alerts(self, alerts) -> None:
        """Alerts of any kind, each to its part (its PART)."""
        by_part: dict[str, list] = {}
        for a in alerts:
            by_part.setdefault(a.PART, []).append(a)
        for part, rows in by_part.items():
            self.add_streamed(part, rows)

    @property
    def alerts_total(self) -> int:
        return sum(self.totals[p] for p in STREAMED)

    def add(self, snap: Snapshot) -> None:
        """One interval's rows (those of streamed parts come through add_streamed)."""
        self.polls += 1
        self.keep(snap)
        for name, part in KEPT.items():
            if part.streamed:
                continue
            rows = getattr(snap, name)
            log = self.logs[name]
            for r in (reversed(rows) if part.newest_first else rows):  # the log is newest first
                log.appendleft(r)
            self.totals[name] += len(rows)
        for name, totals in self.since_start.items():
            key_of = PARTS[name].since_start
            for r in getattr(snap, name):
                key, n = key_of(r)
                totals[key] = totals.get(key, 0) + n
                totals.move_to_end(key)  # the most recently seen last
            while len(totals) > MAX_SINCE_START:
                totals.popitem(last=False)
        for cgroup, c in snap.containers.items():
            self.containers[cgroup] = c
            self.containers.move_to_end(cgroup)  # newest last: the oldest go first
        while len(self.containers) > MAX_CONTAINERS:
            self.containers.popitem(last=False)
        for name, n in snap.lost.items():
            self.lost_total[name] = self.lost_total.get(name, 0) + n
        for name, n in snap.skipped.items():
            self.skipped_total[name] = self.skipped_total.get(name, 0) + n
