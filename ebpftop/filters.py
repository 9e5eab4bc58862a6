"""The one filter, applied to a snapshot in user space: shared by live data,
replay, --json and the TUI, so a new filter shows at once without a poll."""

from __future__ import annotations

from dataclasses import dataclass, replace

from ebpftop.model import Latency, Snapshot, SyscallRow


@dataclass(frozen=True)
class Filter:
    comm: str = ""  # case-insensitive substring of the process name; "" matches all
    pid: int | None = None
    port: int | None = None  # TCP connections and UDP flows whose local or remote port is this
    exact_comm: str | None = None  # drill-down on a process name: exactly this one

    @property
    def active(self) -> bool:
        return bool(self.comm) or self.pid is not None or self.port is not None or self.exact_comm is not None

    def comm_matches(self, comm: str) -> bool:
        if self.exact_comm is not None and comm != self.exact_comm:
            return False
        return not self.comm or self.comm.casefold() in comm.casefold()

    def pid_matches(self, pid: int) -> bool:
        return self.pid is None or pid == self.pid


def apply(snapshot: Snapshot, f: Filter) -> Snapshot:
    if not f.active:
        return snapshot
    tcp = tuple(
        c
        for c in snapshot.tcp
        if f.comm_matches(c.comm)
        and f.pid_matches(c.pid)
        and (f.port is None or f.port in (c.sport, c.dport))
    )
    udp = tuple(
        u
        for u in snapshot.udp
        if f.comm_matches(u.comm)
        and f.pid_matches(u.pid)
        and (f.port is None or f.port in (u.lport, u.rport))
    )
    syscalls = []
    for row in snapshot.syscalls:
        if not f.comm_matches(row.comm):
            continue
        if f.pid is not None:
            by_pid = tuple(pc for pc in row.by_pid if pc[0] == f.pid)
            if not by_pid:
                continue
            row = SyscallRow(comm=row.comm, count=sum(n for _, n in by_pid), by_pid=by_pid)
        syscalls.append(row)
    def latency(lat: Latency) -> Latency:
        return Latency(tuple(p for p in lat.by_process if f.comm_matches(p.comm) and f.pid_matches(p.pid)))

    opens = tuple(r for r in snapshot.file_opens if f.comm_matches(r.comm) and f.pid_matches(r.pid))
    # a process's fork row names its parent: a pid scope keeps the rows of its children's births too
    processes = tuple(
        e for e in snapshot.processes
        if f.comm_matches(e.comm) and (f.pid is None or f.pid in (e.pid, e.ppid))
    )
    faults = tuple(r for r in snapshot.page_faults if f.comm_matches(r.comm) and f.pid_matches(r.pid))
    return replace(
        snapshot,
        tcp=tcp,
        udp=udp,
        syscalls=tuple(syscalls),
        read_latency=latency(snapshot.read_latency),
        write_latency=latency(snapshot.write_latency),
        file_opens=opens,
        processes=processes,
        page_faults=faults,
    )
