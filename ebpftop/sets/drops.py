"""Packet drops with the kernel's reason (bpf/drops.c): the host's drops per
reason, and per connection and process where the kernel names the socket
(rx_sk, Linux 6.11), joined to tcp_traffic's connections.  A drop before
the socket lookup (NETFILTER_DROP, NO_SOCKET...) has no owner the kernel
names: it is counted for the host only, never charged to whatever task
happened to run (bpf/drops.c says why)."""

from __future__ import annotations

import ctypes
import re
import sys
from collections.abc import Callable
from typing import NamedTuple

from ebpftop.aggregate import decode_c_string, format_addr
from ebpftop.capabilities import format_fields
from ebpftop.sets.base import (
    Collector,
    CounterFamily,
    Figure,
    Headline,
    HostRows,
    ProbeSet,
    Rows,
    as_int,
    by_label,
    per_s,
)
from ebpftop.sets.tcp_traffic import TcpConnStruct

REASON_SLOTS = 256  # reasons below this are counted apart; the rest (a subsystem's) in the last slot
SUBSYS_SHIFT = 16  # include/net/dropreason.h: SKB_DROP_REASON_SUBSYS_SHIFT
NOT_DROPS = ("NOT_DROPPED_YET", "CONSUMED", "SKB_CONSUMED")
_SYMBOLIC = re.compile(r"\{\s*(-?(?:0x[0-9a-fA-F]+|\d+))\s*,\s*\"([^\"]*)\"\s*\}")
ETHERTYPES = {0x0800: "ipv4", 0x86DD: "ipv6", 0x0806: "arp"}


def reason_names(format_text: str) -> dict[int, str]:
    """skb:kfree_skb's reason names on the running kernel, from the print
    fmt's __print_symbolic(REC->reason, { 2, "NOT_SPECIFIED" }, ...): the
    enum is renumbered between versions (NOT_SPECIFIED was 0 on 5.17, is 2
    on 6.18)."""
    start = format_text.find("__print_symbolic(REC->reason,")
    if start < 0:
        return {}
    depth, end = 0, len(format_text)
    for i in range(start + len("__print_symbolic"), len(format_text)):
        if format_text[i] == "(":
            depth += 1
        elif format_text[i] == ")":
            depth -= 1
            if depth == 0:
                end = i
                break
    return {int(v, 0): name for v, name in _SYMBOLIC.findall(format_text[start:end])}


def reason_name(reason: int, names: dict[int, str]) -> str:
    if reason in names:
        return names[reason]
    if reason == REASON_SLOTS - 1 or reason >> SUBSYS_SHIFT:
        return "OTHER_SUBSYSTEM" if reason == REASON_SLOTS - 1 else f"SUBSYS{reason >> SUBSYS_SHIFT}:{reason & 0xFFFF}"
    return "NO_REASON" if not names else str(reason)


def drop_constants(format_of: Callable[[str], str]) -> dict:
    text = format_of("skb/kfree_skb")
    fields = format_fields(text)
    out = {}
    if "reason" in fields:
        out["DROPS_HAVE_REASON"] = 1
        not_drops = [v for v, n in reason_names(text).items() if n in NOT_DROPS]
        if not_drops:
            out["DROPS_NOT_A_DROP"] = min(not_drops)
    if "rx_sk" in fields:
        out["DROPS_HAVE_RX_SK"] = 1
    return out


class Drop(NamedTuple):
    """Drops of packets delivered to one socket, for one reason, in the interval."""

    pid: int  # the connection's process; 0 when the socket is not a TCP connection ebpftop follows
    comm: str
    reason: str  # the kernel's name: SOCKET_FILTER, TCP_OLD_DATA, ...
    protocol: str  # ipv4, ipv6, or the ethertype
    laddr: str
    lport: int
    raddr: str
    rport: int
    count: int
    cgroup: int = 0

    def to_dict(self) -> dict:
        return self._asdict()

    @classmethod
    def from_dict(cls, d: dict) -> Drop:
        return cls(pid=int(d["pid"]), comm=str(d["comm"]), reason=str(d["reason"]), protocol=str(d["protocol"]),
                   laddr=str(d.get("laddr", "")), lport=int(d.get("lport", 0)), raddr=str(d.get("raddr", "")),
                   rport=int(d.get("rport", 0)), count=int(d["count"]), cgroup=int(d.get("cgroup", 0)))


class DropReason(NamedTuple):
    """The host's drops for one reason in the interval."""

    reason: str
    count: int


def grouped(rows, label) -> tuple[Drop, ...]:
    """Per container and reason."""
    groups: dict[tuple[str, str], list] = {}
    for r in rows:
        g = groups.setdefault((label(r), r.reason), [0, r.cgroup])
        g[0] += r.count
    return tuple(sorted((Drop(0, name, reason, "", "", 0, "", 0, n, cgroup=cg)
                         for (name, reason), (n, cg) in groups.items()), key=lambda d: (-d.count, d.comm)))


class DropsCollector(Collector):
    def start(self) -> None:
        self.names = reason_names(self.kernel.format_of("skb/kfree_skb"))
        self.totals_seen = [0] * REASON_SLOTS
        try:  # the connections tcp_traffic follows, keyed by the same socket address as rx_sk
            self.conns = self.kernel.reader("tcp_conns")
        except KeyError:  # that set is not loaded: no drop has an owner
            self.conns = None

    def _owner(self, sk: int):
        """The TCP connection of socket sk (None if it is not one ebpftop
        follows).  Read before tcp_traffic's own poll forgets the ones that
        closed: this set's collector runs first (sets/__init__.py)."""
        raw = self.conns.get(sk.to_bytes(8, sys.byteorder)) if self.conns is not None else None
        return None if raw is None else TcpConnStruct.from_buffer_copy(raw)

    def collect(self, ctx) -> dict:
        rows = []
        for (sk, reason, protocol), (n,) in self.kernel.drain("drop_counts", ("sk", "reason", "protocol"), ("value",)):
            c = self._owner(sk)
            # as the host's totals name it: a subsystem's reason (past the slots) as theirs
            name = reason_name(min(reason, REASON_SLOTS - 1), self.names)
            proto = ETHERTYPES.get(protocol, f"{protocol:#06x}")
            if c is None:
                rows.append(Drop(0, "", name, proto, "", 0, "", 0, n))
            else:
                rows.append(Drop(c.pid, decode_c_string(c.comm) if c.pid else "", name, proto,
                                 format_addr(c.family, c.saddr), c.sport, format_addr(c.family, c.daddr), c.dport,
                                 n, c.cgroup))
        rows.sort(key=lambda d: (-d.count, d.reason, d.comm, d.pid))
        table = self.kernel.table("drop_reasons_total")
        totals = []
        for slot in range(REASON_SLOTS):
            total = sum(as_int(x) for x in table[ctypes.c_int(slot)])
            if total != self.totals_seen[slot]:
                totals.append(DropReason(reason_name(slot, self.names), total - self.totals_seen[slot]))
                self.totals_seen[slot] = total
        totals.sort(key=lambda t: (-t.count, t.reason))
        return {"drops": tuple(rows), "drop_reasons": tuple(totals)}


def _total(s) -> int:
    return sum(t.count for t in s.drop_reasons)


SET = ProbeSet(
    name="drops", c_file="drops.c", title="packet drops with the kernel's reason (skb:kfree_skb)",
    parts=(
        Rows("drops", Drop, group=grouped),
        HostRows("drop_reasons", DropReason),
    ),
    collector=DropsCollector,
    tracepoints=("skb/kfree_skb",),
    fields={"skb/kfree_skb": ("protocol",)},
    map_sizes={"DROPS_MAP_SIZE": 4096},
    constants={"DROP_REASON_SLOTS": REASON_SLOTS},
    kernel_constants=drop_constants,
    counters=(
        CounterFamily("ebpftop_packet_drops", "Packets the kernel dropped, by reason (skb:kfree_skb).", ("reason",),
                      lambda s, _: by_label(((t.reason,), t.count) for t in s.drop_reasons)),
        CounterFamily("ebpftop_socket_drops", "Packets dropped after they reached a socket, by process name and "
                      "reason.", ("comm", "reason"),
                      lambda s, _: by_label(((d.comm or "?", d.reason), d.count) for d in s.drops)),
    ),
    headlines={"drops": Headline("drops/s", lambda s: per_s(_total(s), s), lambda v: f"{v:,.0f}")},
    figures={"drops_per_s": Figure("packet drops per second", lambda s: per_s(_total(s), s))},
)


def unattributed(snap) -> tuple[Drop, ...]:
    """The host's drops no socket was named for, per reason: its totals less
    the per-socket rows (what the Network tab lists after them)."""
    on_sockets: dict[str, int] = {}
    for d in snap.drops:
        on_sockets[d.reason] = on_sockets.get(d.reason, 0) + d.count
    rest = [Drop(0, "", t.reason, "", "", 0, "", 0, t.count - on_sockets.get(t.reason, 0))
            for t in snap.drop_reasons if t.count > on_sockets.get(t.reason, 0)]
    return tuple(sorted(rest, key=lambda d: (-d.count, d.reason)))
