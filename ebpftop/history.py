"""What the panes show beyond one interval: the recent TCP connections and the
totals since start.  Pure; fed one snapshot at a time."""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field

from ebpftop.model import ROW_LISTS, Snapshot

MAX_CONNECTIONS = 2000  # newest kept for the TCP pane; older ones scroll away
MAX_ALERTS = 1000
MAX_PROCESS_EVENTS = 2000
MAX_CLOSED_CONNECTIONS = 2000  # tcplife rows kept for the Network pane
MAX_CONTAINERS = 4096  # cgroup id -> container, for the rows kept above
MAX_FAULT_TOTALS = 65536  # (comm, pid) since start: the least recently seen go first (pids come and go)
# Snapshots kept for rewinding the TUI: the last hour, and at most this many
# rows over all of them (a busy host's snapshots are large: the oldest go
# first when the rows would pass it).
HISTORY_S = 3600.0
MAX_KEPT_ROWS = 400_000  # about 110 MiB at the ~290 bytes a row of tests/bench/history_memory.py


def snapshot_rows(snap: Snapshot) -> int:
    """How many rows a snapshot holds (what its memory grows with).  A
    syscall row's pids count as rows too: a fork storm makes one row of
    10,000 pids an interval, 1 MiB (600 such intervals took 616 MiB while
    counted as 12,600 rows: tests/bench/history_memory.py --fork-storm)."""
    n = sum(len(getattr(snap, name)) for name in ROW_LISTS) + sum(len(r.by_pid) for r in snap.syscalls)
    return n + len(snap.read_latency.by_process) + len(snap.write_latency.by_process)


@dataclass
class History:
    connections: deque = field(default_factory=lambda: deque(maxlen=MAX_CONNECTIONS))
    connections_total: int = 0
    faults_total: OrderedDict = field(default_factory=OrderedDict)  # (comm, pid) -> faults since start
    lost_total: dict = field(default_factory=dict)
    polls: int = 0
    alerts: deque = field(default_factory=lambda: deque(maxlen=MAX_ALERTS))  # newest first
    processes: deque = field(default_factory=lambda: deque(maxlen=MAX_PROCESS_EVENTS))  # newest first
    tcp_closed: deque = field(default_factory=lambda: deque(maxlen=MAX_CLOSED_CONNECTIONS))  # newest first
    tcp_closed_total: int = 0
    alerts_total: int = 0
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

    def totals_at(self, t: float | None) -> dict[str, int]:
        """The counts since start (new and closed TCP connections, alerts) as
        they were at the kept snapshot of time t (None: now): the later kept
        snapshots' taken off."""
        out = {"connections": self.connections_total, "tcp_closed": self.tcp_closed_total,
               "alerts": self.alerts_total}
        if t is not None:
            for snap, _ in reversed(self.snapshots):
                if snap.time <= t:
                    break
                out["connections"] -= len(snap.tcp)
                out["tcp_closed"] -= len(snap.tcp_closed)
                out["alerts"] -= len(snap.alerts)
        return out

    def faults_total_at(self, t: float) -> dict:
        """faults_total as it was at the snapshot of time t (the later kept
        snapshots' faults taken off)."""
        out = dict(self.faults_total)
        for snap, _ in reversed(self.snapshots):
            if snap.time <= t:
                break
            for r in snap.page_faults:
                key = (r.comm, r.pid)
                out[key] = out.get(key, 0) - r.count
        return out

    def add_alerts(self, alerts) -> None:
        """Alerts, oldest first."""
        for a in alerts:
            self.alerts.appendleft(a)
        self.alerts_total += len(alerts)

    def add(self, snap: Snapshot) -> None:
        """One interval's rows; its alerts come through add_alerts (the
        source's poll_alerts is their one route into the TUI)."""
        self.polls += 1
        self.keep(snap)
        # snapshot rows are newest first; keep the deque newest first too
        for c in reversed(snap.tcp):
            self.connections.appendleft(c)
        self.connections_total += len(snap.tcp)
        for e in reversed(snap.processes):
            self.processes.appendleft(e)
        for c in snap.tcp_closed:  # oldest first in the snapshot
            self.tcp_closed.appendleft(c)
        self.tcp_closed_total += len(snap.tcp_closed)
        for r in snap.page_faults:
            key = (r.comm, r.pid)
            self.faults_total[key] = self.faults_total.get(key, 0) + r.count
            self.faults_total.move_to_end(key)  # the most recently seen last
        while len(self.faults_total) > MAX_FAULT_TOTALS:
            self.faults_total.popitem(last=False)
        for cgroup, c in snap.containers.items():
            self.containers[cgroup] = c
            self.containers.move_to_end(cgroup)  # newest last: the oldest go first
        while len(self.containers) > MAX_CONTAINERS:
            self.containers.popitem(last=False)
        for pane, n in snap.lost.items():
            self.lost_total[pane] = self.lost_total.get(pane, 0) + n

