"""UDP flows (bpf/udp.c): datagrams and payload bytes per process and
(local, remote) pair, both ways, from two cgroup_skb programs on the root of
the cgroup v2 hierarchy; received datagrams' owners from
sock:sock_recv_length."""

from __future__ import annotations

import ctypes
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import NamedTuple

from ebpftop import cdefs, filters
from ebpftop.aggregate import decode_c_string, family_name, format_addr
from ebpftop.render import byte_size
from ebpftop.sets.base import (
    CgroupSkb,
    Collector,
    CounterFamily,
    Headline,
    ProbeSet,
    Rows,
    by_label,
    per_s,
)

# Datagrams received by a socket nobody has read from yet wait this many
# polls for an owner before they are reported with the owner unknown (the
# receiver may simply read them after the poll).
UDP_OWNER_WAIT_POLLS = 1


class UdpFlow(NamedTuple):
    """Datagrams and payload bytes of one process on one (local, remote) pair
    in the interval, both ways."""

    pid: int  # 0 when nobody was seen owning the receiving socket (see bpf/udp.c)
    comm: str
    family: str  # "ipv4" or "ipv6"
    laddr: str
    lport: int
    raddr: str
    rport: int
    tx_datagrams: int = 0
    tx_bytes: int = 0
    rx_datagrams: int = 0
    rx_bytes: int = 0
    cgroup: int = 0  # cgroup v2 id (0: unknown); Snapshot.containers says what it is

    def to_dict(self) -> dict:
        return self._asdict()

    @classmethod
    def from_dict(cls, d: dict) -> UdpFlow:
        return cls(
            pid=int(d["pid"]),
            comm=str(d["comm"]),
            family=str(d["family"]),
            laddr=str(d["laddr"]),
            lport=int(d["lport"]),
            raddr=str(d["raddr"]),
            rport=int(d["rport"]),
            tx_datagrams=int(d["tx_datagrams"]),
            tx_bytes=int(d["tx_bytes"]),
            rx_datagrams=int(d["rx_datagrams"]),
            rx_bytes=int(d["rx_bytes"]),
            cgroup=int(d.get("cgroup", 0)),
        )


def udp_flows(entries) -> tuple[UdpFlow, ...]:
    """(pid, comm, family, local addr, local port, remote addr, remote port,
    direction, datagrams, bytes, cgroup) entries -- sent and received apart,
    several sockets of a process summed -- into one row per process and flow,
    most bytes first."""
    totals: dict[tuple, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for pid, comm, family, laddr, lport, raddr, rport, direction, datagrams, nbytes, cgroup in entries:
        t = totals[(pid, comm, family, laddr, lport, raddr, rport, cgroup)]
        i = 0 if direction == cdefs.DIR_SENT else 2
        t[i] += datagrams
        t[i + 1] += nbytes
    rows = [UdpFlow(*k[:7], *v, cgroup=k[7]) for k, v in totals.items()]
    rows.sort(key=lambda f: (-(f.tx_bytes + f.rx_bytes), f.comm, f.pid, f.lport, f.rport))
    return tuple(rows)


def grouped(rows, label) -> tuple[UdpFlow, ...]:
    totals: dict[tuple, list[int]] = {}
    for f in rows:
        t = totals.setdefault((label(f), f.family, f.laddr, f.lport, f.raddr, f.rport), [0, 0, 0, 0, f.cgroup])
        t[0] += f.tx_datagrams
        t[1] += f.tx_bytes
        t[2] += f.rx_datagrams
        t[3] += f.rx_bytes
    return tuple(sorted((UdpFlow(0, name, fam, la, lp, ra, rp, *v[:4], cgroup=v[4])
                         for (name, fam, la, lp, ra, rp), v in totals.items()),
                        key=lambda f: (-(f.tx_bytes + f.rx_bytes), f.comm, f.lport, f.rport)))


class UdpOwners:
    """Joins udp.c's received-datagram entries (keyed by socket cookie) to the
    socket's owner; entries whose owner is not known yet wait a poll."""

    def __init__(self, wait_polls: int = UDP_OWNER_WAIT_POLLS):
        self.wait_polls = wait_polls
        self.waiting: list[tuple] = []  # (polls waited, key, value)

    def entries(self, drained: Iterable[tuple], owner_of: Callable[[int], tuple[int, str, int] | None],
                can_wait: bool) -> list[tuple]:
        """drained: (key, value) of udp_flows; owner_of(cookie) -> (tgid,
        comm, cgroup) or None.  can_wait: whether an owner can still turn up (the
        kernel has sock:sock_recv_length).  Returns udp_flows()' entries."""
        resolved: dict[int, tuple[int, str, int] | None] = {}
        out = []
        todo = [(0, k, v) for k, v in drained] + self.waiting
        self.waiting = []
        for waited, k, v in todo:
            if k.dir == cdefs.DIR_SENT:
                pid, comm, cgroup = k.tgid, decode_c_string(k.comm), k.cgroup
            else:
                if k.cookie not in resolved:
                    resolved[k.cookie] = owner_of(k.cookie)
                owner = resolved[k.cookie]
                if owner is None and waited < self.wait_polls and can_wait:
                    self.waiting.append((waited + 1, k, v))
                    continue
                pid, comm, cgroup = owner or (0, "", 0)
            out.append((
                pid, comm, family_name(k.family),
                format_addr(k.family, k.laddr), k.lport,
                format_addr(k.family, k.raddr), k.rport,
                k.dir, v.datagrams, v.bytes, cgroup,
            ))
        return out


class FlowKey(NamedTuple):
    """The fields of struct udp_flow_key that UdpOwners reads."""

    cookie: int
    cgroup: int
    tgid: int
    lport: int
    rport: int
    family: int
    dir: int
    laddr: bytes
    raddr: bytes
    comm: bytes


class FlowValue(NamedTuple):
    datagrams: int
    bytes: int


class UdpCollector(Collector):
    """The interval's flows.  Sent datagrams carry their sender; received
    ones are matched to their socket's owner (bpf/udp.c) -- or wait a poll
    for it, then go out with the owner unknown."""

    def __init__(self, kernel, options):
        super().__init__(kernel, options)
        self.owners = UdpOwners()

    def collect(self, ctx) -> dict:
        owners = self.kernel.table("udp_owner")

        def owner_of(cookie: int):
            try:
                o = owners[ctypes.c_ulonglong(cookie)]
            except KeyError:
                return None
            return o.tgid, decode_c_string(o.comm), o.cgroup

        drained = [(FlowKey._make(k), FlowValue._make(v)) for k, v in self.kernel.drain(
            "udp_flows", FlowKey._fields, FlowValue._fields)]
        return {"udp": udp_flows(self.owners.entries(drained, owner_of, self.kernel.caps.sock_recv_length))}


def _bytes(s) -> int:
    return sum(f.tx_bytes + f.rx_bytes for f in s.udp)


def _per_direction(s, datagrams: bool) -> dict:
    if datagrams:
        pairs = ((((f.comm, "sent"), f.tx_datagrams), ((f.comm, "received"), f.rx_datagrams)) for f in s.udp)
    else:
        pairs = ((((f.comm, "sent"), f.tx_bytes), ((f.comm, "received"), f.rx_bytes)) for f in s.udp)
    return by_label(p for both in pairs for p in both)


SET = ProbeSet(
    name="udp", c_file="udp.c", title="UDP flows: datagrams and bytes per process and peer",
    parts=(Rows("udp", UdpFlow, filter=filters.with_ports("lport", "rport"), group=grouped),),
    collector=UdpCollector,
    tracepoints=(),  # cgroup programs; sock:sock_recv_length where the kernel has it (capabilities)
    map_sizes={"UDP_MAP_SIZE": 16384},
    shared_hooks=("sock/sock_recv_length",),
    needs_cgroup2=True,
    attach=(CgroupSkb((("udp_egress", "egress"), ("udp_ingress", "ingress"))),),
    counters=(
        CounterFamily("ebpftop_udp_datagrams", "UDP datagrams by process name and direction (sent, received).",
                      ("comm", "direction"), lambda s, _: _per_direction(s, datagrams=True)),
        CounterFamily("ebpftop_udp_bytes", "UDP payload bytes by process name and direction (sent, received).",
                      ("comm", "direction"), lambda s, _: _per_direction(s, datagrams=False)),
    ),
    headlines={"udp_bytes": Headline("UDP bytes/s", lambda s: per_s(_bytes(s), s),
                                     lambda v: byte_size(round(v)) + "/s")},
)
