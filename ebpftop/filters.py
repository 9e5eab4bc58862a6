"""The one filter, applied in user space, and the only place rows are
filtered: snapshots (live, replay, --json, the TUI) and the history the TUI
keeps (recent connections, process events) go through the functions below,
so a new filter shows at once without a poll."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from ebpftop.model import HOST, Container, Latency, ProcessEvent, Snapshot, SyscallRow, TcpConnection, TcpSession


@dataclass(frozen=True)
class Filter:
    comm: str = ""  # case-insensitive substring of the process name; "" matches all
    pid: int | None = None
    port: int | None = None  # TCP connections and UDP flows whose local or remote port is this
    exact_comm: str | None = None  # drill-down on a process name: exactly this one
    # --container NAME, or a drill-down on a container: its name, pod/name,
    # pod, a prefix of its id, or "host" for rows of no container
    container: str | None = None

    @property
    def active(self) -> bool:
        return (bool(self.comm) or self.pid is not None or self.port is not None or self.exact_comm is not None
                or self.container is not None)

    def comm_matches(self, comm: str, container: Container | None = None) -> bool:
        """The name filter: a substring of the process name or of its container's name."""
        if self.exact_comm is not None and comm != self.exact_comm:
            return False
        if not self.comm:
            return True
        text = self.comm.casefold()
        return text in comm.casefold() or (container is not None and text in container.label.casefold())

    def container_matches(self, container: Container | None) -> bool:
        if self.container is None:
            return True
        if container is None:
            return self.container == HOST
        return container.matches(self.container)

    def pid_matches(self, pid: int) -> bool:
        return self.pid is None or pid == self.pid

    def port_matches(self, *ports: int) -> bool:
        return self.port is None or self.port in ports

    def matches(self, comm: str, pid: int, container: Container | None = None) -> bool:
        return self.comm_matches(comm, container) and self.pid_matches(pid) and self.container_matches(container)

    def row_matches(self, row, containers: Mapping[int, Container]) -> bool:
        """A row with comm, pid and cgroup fields."""
        return self.matches(row.comm, row.pid, containers.get(row.cgroup))


NONE: Mapping[int, Container] = {}


def connections(rows: Iterable[TcpConnection], f: Filter,
                containers: Mapping[int, Container] = NONE) -> tuple[TcpConnection, ...]:
    return _with_ports(rows, f, "sport", "dport", containers)


def process_events(rows: Iterable[ProcessEvent], f: Filter,
                   containers: Mapping[int, Container] = NONE) -> tuple[ProcessEvent, ...]:
    # a process's fork row names its parent: a pid scope keeps the rows of its children's births too
    return tuple(e for e in rows if f.comm_matches(e.comm, containers.get(e.cgroup))
                 and f.container_matches(containers.get(e.cgroup)) and (f.pid is None or f.pid in (e.pid, e.ppid)))


def tcp_sessions(rows: Iterable[TcpSession], f: Filter,
                 containers: Mapping[int, Container] = NONE) -> tuple[TcpSession, ...]:
    return _with_ports(rows, f, "sport", "dport", containers)


def _with_ports(rows, f: Filter, local: str, remote: str, containers: Mapping[int, Container]) -> tuple:
    return tuple(r for r in rows if f.row_matches(r, containers)
                 and f.port_matches(getattr(r, local), getattr(r, remote)))


def _syscalls(rows, f: Filter, containers: Mapping[int, Container]) -> tuple[SyscallRow, ...]:
    out = []
    for row in rows:
        c = containers.get(row.cgroup)
        if not (f.comm_matches(row.comm, c) and f.container_matches(c)):
            continue
        if f.pid is not None:
            by_pid = tuple(pc for pc in row.by_pid if pc[0] == f.pid)
            if not by_pid:
                continue
            row = row._replace(count=sum(n for _, n in by_pid), by_pid=by_pid)
        out.append(row)
    return tuple(out)


def latency(lat: Latency, f: Filter, containers: Mapping[int, Container] = NONE) -> Latency:
    return Latency(tuple(p for p in lat.by_process if f.row_matches(p, containers)), lat.sampled_1_in)


def apply(snapshot: Snapshot, f: Filter) -> Snapshot:
    """The snapshot with only the rows f matches.  Alerts are never filtered:
    an open of a watched file is shown whoever made it."""
    if not f.active:
        return snapshot
    cs = snapshot.containers
    return replace(
        snapshot,
        tcp=connections(snapshot.tcp, f, cs),
        tcp_connections=tcp_sessions(snapshot.tcp_connections, f, cs),
        tcp_closed=tcp_sessions(snapshot.tcp_closed, f, cs),
        udp=_with_ports(snapshot.udp, f, "lport", "rport", cs),
        syscalls=_syscalls(snapshot.syscalls, f, cs),
        read_latency=latency(snapshot.read_latency, f, cs),
        write_latency=latency(snapshot.write_latency, f, cs),
        file_opens=tuple(r for r in snapshot.file_opens if f.row_matches(r, cs)),
        processes=process_events(snapshot.processes, f, cs),
        page_faults=tuple(r for r in snapshot.page_faults if f.row_matches(r, cs)),
    )
