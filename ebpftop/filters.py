"""The one filter, applied in user space, and the only place rows are
filtered: snapshots (live, replay, --json, the TUI) and the history the TUI
keeps (recent connections, process events) go through the functions below,
so a new filter shows at once without a poll."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from ebpftop.model import Latency, ProcessEvent, Snapshot, SyscallRow, TcpConnection, TcpSession


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

    def port_matches(self, *ports: int) -> bool:
        return self.port is None or self.port in ports

    def matches(self, comm: str, pid: int) -> bool:
        return self.comm_matches(comm) and self.pid_matches(pid)


def connections(rows: Iterable[TcpConnection], f: Filter) -> tuple[TcpConnection, ...]:
    return tuple(c for c in rows if f.matches(c.comm, c.pid) and f.port_matches(c.sport, c.dport))


def process_events(rows: Iterable[ProcessEvent], f: Filter) -> tuple[ProcessEvent, ...]:
    # a process's fork row names its parent: a pid scope keeps the rows of its children's births too
    return tuple(e for e in rows if f.comm_matches(e.comm) and (f.pid is None or f.pid in (e.pid, e.ppid)))


def tcp_sessions(rows: Iterable[TcpSession], f: Filter) -> tuple[TcpSession, ...]:
    return _with_ports(rows, f, "sport", "dport")


def _with_ports(rows, f: Filter, local: str, remote: str) -> tuple:
    return tuple(r for r in rows if f.matches(r.comm, r.pid)
                 and f.port_matches(getattr(r, local), getattr(r, remote)))


def _syscalls(rows, f: Filter) -> tuple[SyscallRow, ...]:
    out = []
    for row in rows:
        if not f.comm_matches(row.comm):
            continue
        if f.pid is not None:
            by_pid = tuple(pc for pc in row.by_pid if pc[0] == f.pid)
            if not by_pid:
                continue
            row = SyscallRow(comm=row.comm, count=sum(n for _, n in by_pid), by_pid=by_pid)
        out.append(row)
    return tuple(out)


def _latency(lat: Latency, f: Filter) -> Latency:
    return Latency(tuple(p for p in lat.by_process if f.matches(p.comm, p.pid)))


def apply(snapshot: Snapshot, f: Filter) -> Snapshot:
    """The snapshot with only the rows f matches.  Alerts are never filtered:
    an open of a watched file is shown whoever made it."""
    if not f.active:
        return snapshot
    return replace(
        snapshot,
        tcp=connections(snapshot.tcp, f),
        tcp_connections=tcp_sessions(snapshot.tcp_connections, f),
        tcp_closed=tcp_sessions(snapshot.tcp_closed, f),
        udp=_with_ports(snapshot.udp, f, "lport", "rport"),
        syscalls=_syscalls(snapshot.syscalls, f),
        read_latency=_latency(snapshot.read_latency, f),
        write_latency=_latency(snapshot.write_latency, f),
        file_opens=tuple(r for r in snapshot.file_opens if f.matches(r.comm, r.pid)),
        processes=process_events(snapshot.processes, f),
        page_faults=tuple(r for r in snapshot.page_faults if f.matches(r.comm, r.pid)),
    )
