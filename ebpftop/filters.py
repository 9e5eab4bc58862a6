"""The one filter, applied in user space: ``Filter`` says what matches, and
the rules below apply it to rows.  Each part of a snapshot names its rule
(ebpftop/sets/); ``sets.filtered()`` applies them to a snapshot, and the
views apply the same rules to the rows the TUI keeps over time, so live,
replay, --json and the TUI filter alike, and a new filter shows at once
without a poll."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ebpftop.model import HOST, Container


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


# -- rules: rows, Filter, containers -> the rows it matches -------------------


def by_process(rows: Iterable, f: Filter, containers: Mapping[int, Container] = NONE) -> tuple:
    """Rows with comm, pid and cgroup: by name, pid and container."""
    if not f.active:
        return tuple(rows)
    return tuple(r for r in rows if f.row_matches(r, containers))


def with_ports(local: str, remote: str):
    """The rule of rows that are also matched by a port (--port): their
    fields local and remote."""

    def rule(rows: Iterable, f: Filter, containers: Mapping[int, Container] = NONE) -> tuple:
        if not f.active:
            return tuple(rows)
        return tuple(r for r in rows if f.row_matches(r, containers)
                     and f.port_matches(getattr(r, local), getattr(r, remote)))

    return rule


def by_process_or_parent(rows: Iterable, f: Filter, containers: Mapping[int, Container] = NONE) -> tuple:
    """Process events: a process's fork row names its parent, so a pid
    scope keeps the rows of its children's births too."""
    if not f.active:
        return tuple(rows)
    return tuple(e for e in rows if f.comm_matches(e.comm, containers.get(e.cgroup))
                 and f.container_matches(containers.get(e.cgroup)) and (f.pid is None or f.pid in (e.pid, e.ppid)))
