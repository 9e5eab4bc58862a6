"""What the panes show beyond one interval: the recent TCP connections and the
totals since start.  Pure; fed one snapshot at a time."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from ebpftop.model import Snapshot

MAX_CONNECTIONS = 2000  # newest kept for the TCP pane; older ones scroll away
MAX_ALERTS = 1000
MAX_PROCESS_EVENTS = 2000
MAX_CLOSED_CONNECTIONS = 2000  # tcplife rows kept for the Network pane
MAX_CONTAINERS = 4096  # cgroup id -> container, for the rows kept above


@dataclass
class History:
    connections: deque = field(default_factory=lambda: deque(maxlen=MAX_CONNECTIONS))
    connections_total: int = 0
    faults_total: dict = field(default_factory=dict)  # (comm, pid) -> faults since start
    lost_total: dict = field(default_factory=dict)
    polls: int = 0
    alerts: deque = field(default_factory=lambda: deque(maxlen=MAX_ALERTS))  # newest first
    processes: deque = field(default_factory=lambda: deque(maxlen=MAX_PROCESS_EVENTS))  # newest first
    tcp_closed: deque = field(default_factory=lambda: deque(maxlen=MAX_CLOSED_CONNECTIONS))  # newest first
    tcp_closed_total: int = 0
    alerts_total: int = 0
    containers: dict = field(default_factory=dict)  # cgroup id -> Container, of every snapshot so far (bounded)

    def add_alerts(self, alerts) -> None:
        """Alerts, oldest first."""
        for a in alerts:
            self.alerts.appendleft(a)
        self.alerts_total += len(alerts)

    def add(self, snap: Snapshot) -> None:
        """One interval's rows; its alerts come through add_alerts (the
        source's poll_alerts is their one route into the TUI)."""
        self.polls += 1
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
        for cgroup, c in snap.containers.items():
            self.containers.pop(cgroup, None)
            self.containers[cgroup] = c  # newest last: the oldest go first
        while len(self.containers) > MAX_CONTAINERS:
            del self.containers[next(iter(self.containers))]
        for pane, n in snap.lost.items():
            self.lost_total[pane] = self.lost_total.get(pane, 0) + n

