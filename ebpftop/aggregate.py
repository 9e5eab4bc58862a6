"""Pure functions every probe set's user side uses on decoded map entries:
strings and addresses, the busiest-first order, the keyed log2 histograms,
and container labels (no BCC here, so they are unit-tested without a
kernel).  What belongs to one set lives in its module (ebpftop/sets/)."""

from __future__ import annotations

import functools
import socket
from collections import Counter
from collections.abc import Iterable
from operator import itemgetter

from ebpftop.model import HOST, LOG2_BOUNDS, Bucket, Histogram, Latency, ProcessLatency

AF_INET = 2
AF_INET6 = 10


@functools.lru_cache(maxsize=65536)
def decode_c_string(raw: bytes) -> str:
    """A NUL-terminated kernel string as text.  Bytes that are not UTF-8 are
    kept exactly, as lone surrogates (surrogateescape): text.visible() shows
    them as \\xNN, distinct from a name really spelled with a backslash, and
    JSON carries them as \\udcNN.  Cached: the same few thousand comms come
    back at every poll."""
    return bytes(raw).split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def format_addr(family: int, raw) -> str:
    """An address from a probe's 16-byte field (IPv4 in the first 4 bytes)."""
    if family == AF_INET:
        return _ntop(socket.AF_INET, bytes(raw[:4]))
    if family == AF_INET6:
        return _ntop(socket.AF_INET6, bytes(raw[:16]))
    return "?"


@functools.lru_cache(maxsize=65536)
def _ntop(af: int, packed: bytes) -> str:
    # inet_ntop: RFC 5952 text, and much faster than ipaddress (measured here:
    # 0.7 vs 13.5 us for IPv6, 0.6 vs 3.5 us for IPv4; a poll formats two
    # addresses per UDP flow).  Cached, as the same peers recur.
    return socket.inet_ntop(af, packed)


def family_name(family: int) -> str:
    return {AF_INET: "ipv4", AF_INET6: "ipv6"}.get(family, f"af{family}")


# Every entry ends with the cgroup id of the task that made it: a process
# name in two containers is two rows.

def busiest_first(rows: list, count_at: int, ties) -> tuple:
    """Rows by their count (field count_at), largest first; rows with equal
    counts by the key ties.  Sorted on the count alone first, where
    list.sort compares integers at C speed, and then only runs of equal
    counts by ties: one sort on a tuple key made per row took twice as long
    (11.6 against 5.1 ms for 25,000 rows of distinct counts; 17.3 against
    14.3 when all are equal)."""
    by_count = itemgetter(count_at)
    rows.sort(key=by_count, reverse=True)
    runs = Counter(map(by_count, rows))
    if len(runs) < len(rows):
        at = 0
        for _count, n in sorted(runs.items(), reverse=True):
            if n > 1:
                rows[at:at + n] = sorted(rows[at:at + n], key=ties)
            at += n
    return tuple(rows)


def latency(entries: Iterable[tuple[str, int, int, int, int, int]], sampled_1_in: int = 1) -> Latency:
    """(comm, pid, log2 slot, count, sum of ns, cgroup) entries into
    per-process histograms, the busiest first.  Sampled 1 call in N, the
    kernel has already counted each timed call as the N it stands for: the
    Latency only says they are estimates."""
    groups: dict = {}
    for comm, pid, slot, count, sum_ns, cgroup in entries:
        add_to_histograms(groups, (comm, pid, cgroup), slot, count, sum_ns)
    return latency_of_groups(groups, sampled_1_in)


def add_to_histograms(groups: dict, key: tuple, slot: int, count: int, sum_ns: int) -> None:
    """One map entry (a log2 slot's count and sum) into its process's
    histogram: groups[key] = [count, sum, {slot: count}, key]."""
    g = groups.get(key)
    if g is None:
        groups[key] = [count, sum_ns, {slot: count}, key]
    else:
        g[0] += count
        g[1] += sum_ns
        slots = g[2]
        slots[slot] = slots.get(slot, 0) + count


def latency_of_groups(groups: dict, sampled_1_in: int = 1, decode=None) -> Latency:
    """The Latency of add_to_histograms()' groups, keyed (comm, pid, cgroup):
    each process's histogram, the busiest first.  decode: how a comm as the
    map holds it (bytes) becomes its name; one call per process, not per
    entry (a poll can bring tens of thousands of entries: the bench's
    100,000-entry poll)."""
    rows = list(groups.values())
    if decode is not None:
        for g in rows:
            comm, pid, cg = g[3]
            g[3] = (decode(comm), pid, cg)
    new = tuple.__new__  # the named tuples without their Python-level __new__ (a third of the time)
    bounds = LOG2_BOUNDS
    procs = []
    for _count, total_ns, slots, (comm, pid, cg) in busiest_first(rows, 0, itemgetter(3)):
        buckets = tuple([new(Bucket, (*bounds[slot], c)) for slot, c in sorted(slots.items()) if c > 0])
        procs.append(new(ProcessLatency, (comm, pid, new(Histogram, (buckets, total_ns)), cg)))
    return Latency(tuple(procs), sampled_1_in)


# -- grouping by container (the TUI's g key) ---------------------------------

UNKNOWN_CONTAINER = "?"  # rows whose owner is unknown (cgroup 0)


def container_label(cgroup: int, containers) -> str:
    """What a row's cgroup is called: its container's label, "host", or "?"."""
    if not cgroup:
        return UNKNOWN_CONTAINER
    c = containers.get(cgroup)
    return HOST if c is None else c.label
