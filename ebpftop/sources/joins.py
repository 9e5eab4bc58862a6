"""The stateful joins between polls: what one poll cannot decide alone.  No
``bcc``: each takes plain values and callables, and is unit-tested alone.

- UdpOwners: a received datagram's owner is known only once a task reads
  from its socket; it may wait a poll for that.
- unclaimed_accepts: accepted connections no accept() claimed in time.
- Deltas: per-interval differences of counters the kernel only adds to
  (loss counters, BPF run-time statistics, TCP byte totals).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from ebpftop import aggregate, cdefs

# An accepted connection that no accept() claimed within this long is reported
# with its owner unknown (the server called accept() without an address buffer).
UNCLAIMED_ACCEPT_AFTER_NS = 2_000_000_000

# Datagrams received by a socket nobody has read from yet wait this many
# polls for an owner before they are reported with the owner unknown (the
# receiver may simply read them after the poll).
UDP_OWNER_WAIT_POLLS = 1

# A closed TCP connection is reported once it has been closed this long: an
# abortive close sends its reset just after the state change.
TCP_CLOSED_SETTLE_NS = 20_000_000


class Deltas:
    """What each of a set of ever-growing counters added since the last call.
    A counter is an int or a tuple of ints (a program's run time and runs)."""

    def __init__(self, first: dict | None = None):
        self.seen: dict = dict(first or {})

    def step(self, now: dict) -> dict:
        out = {}
        for k, v in now.items():
            before = self.seen.get(k)
            if before is None:
                out[k] = v
            elif isinstance(v, tuple):
                out[k] = tuple(a - b for a, b in zip(v, before))
            else:
                out[k] = v - before
        self.seen = dict(now)
        return out


def charge_misses(lost: dict[str, int], misses: dict[str, int], owners: dict[str, tuple[str, ...]]) -> dict[str, int]:
    """lost (probe set -> events lost in the interval) plus the runs the
    kernel skipped (program -> misses in the interval), each charged to every
    set the program serves: a skipped run is an event not counted."""
    out = dict(lost)
    for prog, n in misses.items():
        for name in owners.get(prog, ()) if n else ():
            out[name] = out.get(name, 0) + n
    return out


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
        kernel has sock:sock_recv_length).  Returns aggregate.udp_flows'
        entries."""
        resolved: dict[int, tuple[int, str, int] | None] = {}
        out = []
        todo = [(0, k, v) for k, v in drained] + self.waiting
        self.waiting = []
        for waited, k, v in todo:
            if k.dir == cdefs.DIR_SENT:
                pid, comm, cgroup = k.tgid, aggregate.decode_c_string(k.comm), k.cgroup
            else:
                if k.cookie not in resolved:
                    resolved[k.cookie] = owner_of(k.cookie)
                owner = resolved[k.cookie]
                if owner is None and waited < self.wait_polls and can_wait:
                    self.waiting.append((waited + 1, k, v))
                    continue
                pid, comm, cgroup = owner or (0, "", 0)
            out.append((
                pid, comm, aggregate.family_name(k.family),
                aggregate.format_addr(k.family, k.laddr), k.lport,
                aggregate.format_addr(k.family, k.raddr), k.rport,
                k.dir, v.datagrams, v.bytes, cgroup,
            ))
        return out


def unclaimed_accepts(pending: Iterable[tuple], now_ns: int, take: Callable[[object], bool],
                      after_ns: int = UNCLAIMED_ACCEPT_AFTER_NS) -> list:
    """The pending accepts (key, value with ts_ns) older than after_ns that
    take(key) could still remove (False: an accept() claimed it meanwhile)."""
    return [v for k, v in pending if now_ns - v.ts_ns >= after_ns and take(k)]


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
