"""New TCP connections (bpf/tcp.c): one row per connection made or accepted,
its owner taken in process context (connect(), accept())."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import NamedTuple

from ebpftop import cdefs, filters
from ebpftop.aggregate import decode_c_string, family_name, format_addr
from ebpftop.model import iso_time, parse_iso_time
from ebpftop.render import count
from ebpftop.sets.base import Collector, CounterFamily, Figure, Headline, ProbeSet, Rows, by_label, wall_time

# What bpf/sock_hooks.c reads of sock:inet_sock_set_state, for every set it calls.
INET_SOCK_SET_STATE_FIELDS = ("oldstate", "newstate", "protocol", "family", "sport", "dport",
                              "saddr", "daddr", "saddr_v6", "daddr_v6", "skaddr")
DIRECTIONS = {cdefs.DIRECTION_CONNECT: "connect", cdefs.DIRECTION_ACCEPT: "accept"}
MAX_CONNECTIONS = 2000  # newest kept for the Network tab; older ones scroll away

# An accepted connection that no accept() claimed within this long is reported
# with its owner unknown (the server called accept() without an address buffer).
UNCLAIMED_ACCEPT_AFTER_NS = 2_000_000_000


class TcpConnection(NamedTuple):
    time: float  # wall-clock seconds since the epoch
    pid: int  # 0 when the owner is unknown (see bpf/tcp.c)
    comm: str
    family: str  # "ipv4" or "ipv6"
    saddr: str  # local address
    sport: int
    daddr: str  # remote address
    dport: int
    direction: str  # "connect" or "accept"
    cgroup: int = 0  # cgroup v2 id (0: unknown); Snapshot.containers says what it is

    def to_dict(self) -> dict:
        return {
            "pid": self.pid,
            "comm": self.comm,
            "family": self.family,
            "saddr": self.saddr,
            "sport": self.sport,
            "daddr": self.daddr,
            "dport": self.dport,
            "direction": self.direction,
            "time": iso_time(self.time),
            "cgroup": self.cgroup,
        }

    @classmethod
    def from_dict(cls, d: dict) -> TcpConnection:
        return cls(
            time=parse_iso_time(d["time"]),
            pid=int(d["pid"]),
            comm=str(d["comm"]),
            family=str(d["family"]),
            saddr=str(d["saddr"]),
            sport=int(d["sport"]),
            daddr=str(d["daddr"]),
            dport=int(d["dport"]),
            direction=str(d["direction"]),
            cgroup=int(d.get("cgroup", 0)),
        )


def connection_of(e, ts_ns: int, direction: int, owner_known: bool) -> TcpConnection:
    """A tcp.c tcp_event (or an unclaimed pending_accept: owner unknown)."""
    return TcpConnection(
        time=wall_time(ts_ns),
        pid=e.pid if owner_known else 0,
        comm=decode_c_string(e.comm) if owner_known else "",
        family=family_name(e.family),
        saddr=format_addr(e.family, e.saddr),
        sport=e.sport,
        daddr=format_addr(e.family, e.daddr),
        dport=e.dport,
        direction=DIRECTIONS.get(direction, "?"),
        cgroup=e.cgroup if owner_known else 0,
    )


def unclaimed_accepts(pending: Iterable[tuple], now_ns: int, take: Callable[[object], bool],
                      after_ns: int = UNCLAIMED_ACCEPT_AFTER_NS) -> list:
    """The pending accepts (key, value with ts_ns) older than after_ns that
    take(key) could still remove (False: an accept() claimed it meanwhile)."""
    return [v for k, v in pending if now_ns - v.ts_ns >= after_ns and take(k)]


def renamed(rows, label) -> tuple:
    """Rows that are not summed (a connection is one): named by their container."""
    return tuple(r._replace(comm=label(r), pid=0) for r in rows)


class TcpCollector(Collector):
    rings = {"tcp_events": "on_event"}

    def __init__(self, kernel, options):
        super().__init__(kernel, options)
        self._pending: list[TcpConnection] = []

    def on_event(self, data, _size) -> None:
        e = self.kernel.table("tcp_events").event(data)
        self._pending.append(connection_of(e, e.ts_ns, e.direction, bool(e.owner_known)))

    def collect(self, ctx) -> dict:
        table = self.kernel.table("tcp_pending_accept")

        def take(key) -> bool:
            try:
                del table[key]  # an accept() may have claimed it meanwhile
                return True
            except KeyError:
                return False

        unclaimed = unclaimed_accepts(list(table.items()), time.monotonic_ns(), take)
        tcp = self._pending + [connection_of(v, v.ts_ns, cdefs.DIRECTION_ACCEPT, False) for v in unclaimed]
        self._pending = []
        tcp.sort(key=lambda c: c.time, reverse=True)
        return {"tcp": tuple(tcp)}


def _by_service_port(s) -> dict:
    # the service's port: the local one of an accept, the remote one of a connect
    return by_label(((c.direction, str(c.sport if c.direction == "accept" else c.dport)), 1) for c in s.tcp)


SET = ProbeSet(
    name="tcp", c_file="tcp.c", title="new TCP connections",
    parts=(Rows("tcp", TcpConnection, filter=filters.with_ports("sport", "dport"), group=renamed,
                kept=MAX_CONNECTIONS),),
    collector=TcpCollector,
    tracepoints=("sock/inet_sock_set_state", "syscalls/sys_enter_accept4", "syscalls/sys_exit_accept4"),
    fields={"sock/inet_sock_set_state": INET_SOCK_SET_STATE_FIELDS,
            "syscalls/sys_enter_accept4": ("upeer_sockaddr",), "syscalls/sys_exit_accept4": ("ret",)},
    map_sizes={"TCP_MAP_SIZE": 8192, "TCP_RINGBUF_PAGES": 64},  # 256 KiB: about 2,900 events
    shared_hooks=("sock/inet_sock_set_state", "raw_syscalls/sys_enter"),
    counters=(CounterFamily("ebpftop_tcp_connections", "New TCP connections by direction and service port.",
                            ("direction", "port"), lambda s, _: _by_service_port(s)),),
    headlines={"tcp_new": Headline("new TCP connections", lambda s: float(len(s.tcp)), lambda v: count(round(v)))},
    figures={"tcp_new": Figure("new TCP connections in the interval", lambda s: float(len(s.tcp)))},
)
