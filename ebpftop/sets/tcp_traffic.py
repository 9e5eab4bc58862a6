"""TCP traffic (bpf/tcp_traffic.c): per connection the bytes each way,
retransmitted segments and resets; a connection that closes is reported once
more with its totals and lifetime (tcplife)."""

from __future__ import annotations

import contextlib
import ctypes
from collections import defaultdict
from collections.abc import Iterable
from typing import NamedTuple

from ebpftop import cdefs, filters
from ebpftop.aggregate import decode_c_string, family_name, format_addr
from ebpftop.model import iso_time, parse_iso_time
from ebpftop.render import byte_size
from ebpftop.sets.base import (
    Collector,
    Count,
    CounterFamily,
    Figure,
    Headline,
    ProbeSet,
    Rows,
    as_int,
    by_label,
    container_labels,
    event_of,
    per_s,
    wall_time,
)
from ebpftop.sets.tcp import DIRECTIONS, INET_SOCK_SET_STATE_FIELDS, renamed

MAX_CLOSED_CONNECTIONS = 2000  # tcplife rows kept for the Network tab
# A closed TCP connection is reported once it has been closed this long: an
# abortive close sends its reset just after the state change.
TCP_CLOSED_SETTLE_NS = 20_000_000


class TcpSession(NamedTuple):
    """One TCP connection's traffic: bytes in the interval and since it
    opened, retransmitted segments and resets."""

    pid: int  # 0 when no owner was seen (accepted, never read from or written to)
    comm: str
    family: str  # "ipv4" or "ipv6"
    saddr: str  # local
    sport: int
    daddr: str  # remote
    dport: int
    direction: str  # "connect" or "accept"
    state: str  # ESTABLISHED, CLOSE_WAIT, ... (CLOSE once closed)
    opened: float  # wall-clock seconds: connect(), or the accepted connection's handshake
    closed: float | None  # when it closed; None while open
    tx_bytes: int  # sent in the interval
    rx_bytes: int  # received in the interval
    tx_total: int
    rx_total: int
    retransmits: int = 0  # segments, since it opened
    resets_sent: int = 0
    resets_received: int = 0
    cgroup: int = 0  # cgroup v2 id (0: unknown); Snapshot.containers says what it is

    def duration_s(self, now: float) -> float:
        return max(0.0, (self.closed if self.closed is not None else now) - self.opened)

    def to_dict(self) -> dict:
        d = self._asdict()
        d["opened"] = iso_time(self.opened)
        d["closed"] = None if self.closed is None else iso_time(self.closed)
        if self.closed is not None:
            d["duration_s"] = round(self.closed - self.opened, 6)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TcpSession:
        return cls(
            pid=int(d["pid"]), comm=str(d["comm"]), family=str(d["family"]),
            saddr=str(d["saddr"]), sport=int(d["sport"]), daddr=str(d["daddr"]), dport=int(d["dport"]),
            direction=str(d["direction"]), state=str(d["state"]),
            opened=parse_iso_time(d["opened"]),
            closed=None if d.get("closed") is None else parse_iso_time(d["closed"]),
            tx_bytes=int(d["tx_bytes"]), rx_bytes=int(d["rx_bytes"]),
            tx_total=int(d["tx_total"]), rx_total=int(d["rx_total"]),
            retransmits=int(d.get("retransmits", 0)), resets_sent=int(d.get("resets_sent", 0)),
            resets_received=int(d.get("resets_received", 0)), cgroup=int(d.get("cgroup", 0)),
        )


class TcpProcessTraffic(NamedTuple):
    """TCP bytes of one process over its connections (open or closed in the interval)."""

    comm: str
    pid: int
    connections: int
    tx_bytes: int
    rx_bytes: int
    tx_total: int
    rx_total: int
    retransmits: int
    resets: int
    cgroup: int = 0  # cgroup v2 id (0: unknown); Snapshot.containers says what it is

    def to_dict(self) -> dict:
        return self._asdict()


class TcpConnStruct(ctypes.Structure):
    """struct tcp_conn of bpf/tcp_traffic.c (BCC cannot infer it when nested)."""

    _fields_ = [
        ("opened_ns", ctypes.c_uint64),
        ("closed_ns", ctypes.c_uint64),
        ("tx_bytes", ctypes.c_uint64),
        ("rx_bytes", ctypes.c_uint64),
        ("cgroup", ctypes.c_uint64),
        ("retransmits", ctypes.c_uint32),
        ("resets_sent", ctypes.c_uint32),
        ("resets_received", ctypes.c_uint32),
        ("pid", ctypes.c_uint32),
        ("family", ctypes.c_uint16),
        ("sport", ctypes.c_uint16),
        ("dport", ctypes.c_uint16),
        ("direction", ctypes.c_uint8),
        ("state", ctypes.c_uint8),
        ("comm", ctypes.c_char * cdefs.COMM_LEN),
        ("saddr", ctypes.c_ubyte * 16),
        ("daddr", ctypes.c_ubyte * 16),
    ]


class TcpEvictedStruct(ctypes.Structure):
    """struct tcp_conn_evicted of bpf/tcp_traffic.c."""

    _fields_ = [("sk", ctypes.c_uint64), ("conn", TcpConnStruct)]


def session_of(c, tx_bytes: int, rx_bytes: int) -> TcpSession:
    """A tcp_traffic.c struct tcp_conn, with the bytes of the interval."""
    return TcpSession(
        pid=c.pid,
        comm=decode_c_string(c.comm) if c.pid else "",
        family=family_name(c.family),
        saddr=format_addr(c.family, c.saddr),
        sport=c.sport,
        daddr=format_addr(c.family, c.daddr),
        dport=c.dport,
        direction=DIRECTIONS.get(c.direction, "?"),
        state=cdefs.TCP_STATES.get(c.state, str(c.state)),
        opened=wall_time(c.opened_ns),
        closed=wall_time(c.closed_ns) if c.closed_ns else None,
        tx_bytes=tx_bytes,
        rx_bytes=rx_bytes,
        tx_total=c.tx_bytes,
        rx_total=c.rx_bytes,
        retransmits=c.retransmits,
        resets_sent=c.resets_sent,
        resets_received=c.resets_received,
        cgroup=c.cgroup,
    )


class TcpTraffic:
    """tcp_traffic.c's per-connection totals into the interval's bytes.  A
    connection is known by its socket address and open time (an address is
    reused by a later socket)."""

    def __init__(self):
        self.seen: dict[tuple[int, int], tuple[int, int]] = {}  # (sk, opened_ns) -> (tx, rx) totals

    def step(self, entries: Iterable[tuple[int, object]], now_ns: int, evicted: Iterable[tuple[int, object]] = (),
             settle_ns: int = TCP_CLOSED_SETTLE_NS) -> tuple[list, list, list[int]]:
        """entries: (sk, struct tcp_conn) of the map; evicted: the same, of
        connections the kernel sent on because a new one took their socket
        (closed, not in the map).  Returns (open, closed, sks to delete), each
        connection as (conn, tx in the interval, rx in the interval).  A
        connection closed less than settle_ns ago stays open for one more
        poll."""
        open_, closed, delete = [], [], []
        seen = {}
        for sk, c in evicted:
            tx0, rx0 = self.seen.get((sk, c.opened_ns), (0, 0))
            closed.append((c, c.tx_bytes - tx0, c.rx_bytes - rx0))
        for sk, c in entries:
            key = (sk, c.opened_ns)
            tx0, rx0 = self.seen.get(key, (0, 0))
            row = (c, c.tx_bytes - tx0, c.rx_bytes - rx0)
            if c.closed_ns and now_ns - c.closed_ns >= settle_ns:
                closed.append(row)
                delete.append(sk)
            else:
                open_.append(row)
                seen[key] = (c.tx_bytes, c.rx_bytes)
        self.seen = seen
        return open_, closed, delete


def busiest_first(sessions: Iterable[TcpSession]) -> tuple[TcpSession, ...]:
    """TCP connections, the most bytes moved in the interval first, then the
    most since they opened."""
    return tuple(sorted(sessions, key=lambda s: (-(s.tx_bytes + s.rx_bytes), -(s.tx_total + s.rx_total),
                                                  s.comm, s.pid, s.sport)))


def by_process(sessions: Iterable[TcpSession]) -> tuple[TcpProcessTraffic, ...]:
    """The per-process view (like nethogs): bytes in the interval and since
    the connections opened, summed per (comm, pid, cgroup); busiest first."""
    sums: dict[tuple[str, int, int], list[int]] = defaultdict(lambda: [0] * 7)
    for s in sessions:
        t = sums[(s.comm, s.pid, s.cgroup)]
        t[0] += 1
        t[1] += s.tx_bytes
        t[2] += s.rx_bytes
        t[3] += s.tx_total
        t[4] += s.rx_total
        t[5] += s.retransmits
        t[6] += s.resets_sent + s.resets_received
    rows = [TcpProcessTraffic(c, p, *v, cgroup=cg) for (c, p, cg), v in sums.items()]
    rows.sort(key=lambda r: (-(r.tx_bytes + r.rx_bytes), -(r.tx_total + r.rx_total), r.comm, r.pid))
    return tuple(rows)


class TcpTrafficCollector(Collector):
    rings = {"tcp_evicted": "on_evicted"}

    def __init__(self, kernel, options):
        super().__init__(kernel, options)
        self.traffic = TcpTraffic()
        self._evicted: list = []  # (sk, struct tcp_conn) from the ring buffer
        self._resets_unowned_seen = 0

    def on_evicted(self, data, _size) -> None:
        e = event_of(TcpEvictedStruct, data)
        self._evicted.append((e.sk, e.conn))

    def collect(self, ctx) -> dict:
        table = self.kernel.table("tcp_conns")
        entries = [(k.value, v) for k, v in table.items()]
        evicted, self._evicted = self._evicted, []
        open_, closed, delete = self.traffic.step(entries, ctx.now_ns, evicted)
        for sk in delete:
            with contextlib.suppress(KeyError):
                del table[ctypes.c_ulonglong(sk)]
        unowned = sum(as_int(n) for n in self.kernel.table("tcp_resets_unowned")[ctypes.c_int(0)])
        unowned_now, self._resets_unowned_seen = unowned - self._resets_unowned_seen, unowned
        return {
            "tcp_connections": busiest_first([session_of(*r) for r in open_]),
            "tcp_closed": tuple(sorted((session_of(*r) for r in closed), key=lambda s: s.closed)),
            "tcp_resets_unowned": unowned_now,
        }


def _grown(s, state: dict, counters) -> dict:
    """(comm, direction) -> what the connections' counters (a function of a
    connection: ((direction, total), ...)) grew by since the last poll: a
    connection's retransmits and resets are totals over its life, a metric
    counts per interval.  A closed one adds what it had left; state (the
    family's own) remembers the open ones."""
    out: dict = {}
    seen = {}
    before = state.get("seen", {})
    for c in s.tcp_connections + s.tcp_closed:
        key = (c.opened, c.saddr, c.sport, c.daddr, c.dport)
        totals = counters(c)
        for (direction, n), n0 in zip(totals, before.get(key, (0,) * len(totals))):
            if n - n0:
                out[(c.comm, direction)] = out.get((c.comm, direction), 0) + n - n0
        if c.closed is None:
            seen[key] = tuple(n for _, n in totals)
    state["seen"] = seen
    return out


def _sessions(s):
    return s.tcp_connections + s.tcp_closed


def _bytes(s) -> int:
    return sum(c.tx_bytes + c.rx_bytes for c in _sessions(s))


SET = ProbeSet(
    name="tcp_traffic", c_file="tcp_traffic.c",
    title="TCP bytes, retransmits and resets per connection, and closed connections",
    parts=(
        Rows("tcp_connections", TcpSession, filter=filters.with_ports("sport", "dport"), group=renamed),
        Rows("tcp_closed", TcpSession, filter=filters.with_ports("sport", "dport"), group=renamed,
             kept=MAX_CLOSED_CONNECTIONS, newest_first=False),
        Count("tcp_resets_unowned"),  # resets sent for no socket (to a closed port) in the interval
    ),
    collector=TcpTrafficCollector,
    tracepoints=("sock/inet_sock_set_state",),
    fields={"sock/inet_sock_set_state": INET_SOCK_SET_STATE_FIELDS,
            "sock/sock_send_length": ("sk", "protocol", "ret"),
            "sock/sock_recv_length": ("sk", "protocol", "ret", "flags")},
    # 256 KiB: about 2,000 closed connections whose sockets were reused between two reads
    map_sizes={"TCP_TRAFFIC_MAP_SIZE": 16384, "TCP_EVICTED_RINGBUF_PAGES": 64},
    shared_hooks=("sock/inet_sock_set_state", "sock/sock_send_length", "sock/sock_recv_length"),
    layouts={"tcp_conn": TcpConnStruct, "tcp_conn_evicted": TcpEvictedStruct},
    counters=(
        CounterFamily("ebpftop_tcp_bytes", "TCP bytes sent and received by process name (what sendmsg/recvmsg "
                      "moved).", ("comm", "direction"),
                      lambda s, _: by_label(p for c in _sessions(s) for p in (((c.comm, "sent"), c.tx_bytes),
                                                                            ((c.comm, "received"), c.rx_bytes)))),
        CounterFamily("ebpftop_tcp_retransmits", "Retransmitted TCP segments by process name (direction: sent).",
                      ("comm", "direction"), lambda s, state: _grown(s, state, lambda c: (("sent", c.retransmits),))),
        CounterFamily("ebpftop_tcp_resets", "TCP resets by process name and direction (sent, received).",
                      ("comm", "direction"),
                      lambda s, state: _grown(s, state, lambda c: (("sent", c.resets_sent),
                                                                   ("received", c.resets_received)))),
        CounterFamily("ebpftop_container_tcp_bytes", "TCP bytes sent and received by container.",
                      ("container", "direction"),
                      lambda s, _: by_label(p for c in _sessions(s) for p in (
                          ((container_labels(s, c.cgroup)[0], "sent"), c.tx_bytes),
                          ((container_labels(s, c.cgroup)[0], "received"), c.rx_bytes)))),
    ),
    headlines={"tcp_bytes": Headline("TCP bytes/s", lambda s: per_s(_bytes(s), s),
                                     lambda v: byte_size(round(v)) + "/s")},
    figures={"tcp_resets_unowned": Figure("resets sent for no socket in the interval",
                                          lambda s: float(s.tcp_resets_unowned))},
)
