"""Pure functions from decoded map entries to snapshot rows (no BCC here, so
they are unit-tested without a kernel)."""

from __future__ import annotations

import functools
import socket
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import replace
from operator import itemgetter

from ebpftop import cdefs
from ebpftop.model import (
    HOST,
    LOG2_BOUNDS,
    Bucket,
    FileOpenRow,
    Histogram,
    Latency,
    PageFaultRow,
    ProcessLatency,
    Snapshot,
    SyscallRow,
    TcpProcessTraffic,
    TcpSession,
    UdpFlow,
)

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

def _busiest_first(rows: list, count_at: int, ties) -> tuple:
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


def syscall_rows(entries: Iterable[tuple[str, int, int, int]]) -> tuple[SyscallRow, ...]:
    """(comm, pid, count, cgroup) entries -- several per pair are summed --
    into one row per comm and cgroup, largest count first."""
    per_comm: dict[tuple[str, int], dict[int, int]] = {}
    for comm, pid, count, cgroup in entries:
        pids = per_comm.get((comm, cgroup))
        if pids is None:
            per_comm[(comm, cgroup)] = {pid: count}
        else:
            pids[pid] = pids.get(pid, 0) + count
    new = tuple.__new__  # SyscallRow(...) without its Python-level __new__
    by_count = itemgetter(1)
    rows = []
    for (comm, cgroup), pids in per_comm.items():
        if len(pids) == 1:
            by_pid = tuple(pids.items())
        else:
            by_pid = sorted(pids.items())  # by pid, then (stable) by count: largest first, ties by pid
            by_pid.sort(key=by_count, reverse=True)
            by_pid = tuple(by_pid)
        rows.append(new(SyscallRow, (comm, sum(pids.values()), by_pid, cgroup)))
    return _busiest_first(rows, 1, itemgetter(0, 3))


def page_fault_rows(entries: Iterable[tuple[str, int, int, int]]) -> tuple[PageFaultRow, ...]:
    """(comm, pid, count, cgroup) entries into one row per process and cgroup."""
    totals: dict[tuple[str, int, int], int] = {}
    get = totals.get
    for comm, pid, count, cgroup in entries:
        key = (comm, pid, cgroup)
        totals[key] = get(key, 0) + count
    new = tuple.__new__  # PageFaultRow(...) without its Python-level __new__
    return _busiest_first([new(PageFaultRow, (c, p, n, cg)) for (c, p, cg), n in totals.items()],
                          2, itemgetter(0, 1, 3))


def latency(entries: Iterable[tuple[str, int, int, int, int, int]], sampled_1_in: int = 1) -> Latency:
    """(comm, pid, log2 slot, count, sum of ns, cgroup) entries into
    per-process histograms, the busiest first; sampled 1 call in N, counts
    and sums are scaled up by N (the Latency says they are estimates).
    One pass, with each process's total kept as it goes: a poll can bring
    tens of thousands of entries (the bench's 100,000-entry poll)."""
    groups: dict[tuple[str, int, int], list] = {}
    for comm, pid, slot, count, sum_ns, cgroup in entries:
        key = (comm, pid, cgroup)
        g = groups.get(key)
        if g is None:
            groups[key] = [count, sum_ns, {slot: count}, key]
        else:
            g[0] += count
            g[1] += sum_ns
            slots = g[2]
            slots[slot] = slots.get(slot, 0) + count
    n = sampled_1_in
    new = tuple.__new__  # the named tuples without their Python-level __new__ (a third of the time)
    bounds = LOG2_BOUNDS
    procs = []
    for _count, total_ns, slots, (comm, pid, cg) in _busiest_first(list(groups.values()), 0, itemgetter(3)):
        buckets = tuple([new(Bucket, (*bounds[slot], c * n)) for slot, c in sorted(slots.items()) if c > 0])
        procs.append(new(ProcessLatency, (comm, pid, new(Histogram, (buckets, total_ns * n)), cg)))
    return Latency(tuple(procs), sampled_1_in)


def file_open_rows(
    entries: Iterable[tuple[str, int, str, int, int, int, int]],
) -> tuple[FileOpenRow, ...]:
    """(comm, pid, path, flag, count, errors, cgroup) entries into rows, most
    opened first.  The flag (cdefs.PATH_CUT, PATH_UNREADABLE) says what was read."""
    totals: dict[tuple[str, int, str, bool, int], list[int]] = {}
    get = totals.get
    unreadable, cut = cdefs.PATH_UNREADABLE, cdefs.PATH_CUT
    for comm, pid, path, flag, count, errors, cgroup in entries:
        if flag == unreadable:
            path = "<unreadable>"
        key = (comm, pid, path, flag == cut, cgroup)
        t = get(key)
        if t is None:
            totals[key] = [count, errors]
        else:
            t[0] += count
            t[1] += errors
    new = tuple.__new__  # FileOpenRow(...) without its Python-level __new__
    rows = [new(FileOpenRow, (c, p, path, n, e, trunc, cg)) for (c, p, path, trunc, cg), (n, e) in totals.items()]
    return _busiest_first(rows, 3, itemgetter(2, 0, 1))


def udp_flows(
    entries: Iterable[tuple[int, str, str, str, int, str, int, int, int, int, int]],
) -> tuple[UdpFlow, ...]:
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


def busiest_first(sessions: Iterable[TcpSession]) -> tuple[TcpSession, ...]:
    """TCP connections, the most bytes moved in the interval first, then the
    most since they opened."""
    return tuple(sorted(sessions, key=lambda s: (-(s.tx_bytes + s.rx_bytes), -(s.tx_total + s.rx_total),
                                                  s.comm, s.pid, s.sport)))


def tcp_by_process(sessions: Iterable[TcpSession]) -> tuple[TcpProcessTraffic, ...]:
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


# -- grouping by container (the TUI's g key) ---------------------------------

UNKNOWN_CONTAINER = "?"  # rows whose owner is unknown (cgroup 0)


def container_label(cgroup: int, containers) -> str:
    """What a row's cgroup is called: its container's label, "host", or "?"."""
    if not cgroup:
        return UNKNOWN_CONTAINER
    c = containers.get(cgroup)
    return HOST if c is None else c.label


def by_container(snap: Snapshot) -> Snapshot:
    """The snapshot with every pane's rows summed per container instead of per
    process: the process name becomes the container's label and the pid 0.
    Each grouped row keeps the cgroup of one of its rows, so it still names
    its container.  Process events and alerts are left as they are (a log of
    events is not summed)."""
    cs = snap.containers

    def label(row) -> str:
        return container_label(row.cgroup, cs)

    sys_groups: dict[str, list] = {}
    for r in snap.syscalls:
        sys_groups.setdefault(label(r), []).append(r)
    syscalls = []
    for name, rows in sys_groups.items():
        pids: dict[int, int] = defaultdict(int)
        for r in rows:
            for pid, n in r.by_pid:
                pids[pid] += n
        by_pid = tuple(sorted(pids.items(), key=lambda pc: (-pc[1], pc[0])))
        syscalls.append(SyscallRow(name, sum(r.count for r in rows), by_pid, cgroup=rows[0].cgroup))
    syscalls.sort(key=lambda r: (-r.count, r.comm))

    faults: dict[str, list[int]] = {}
    for r in snap.page_faults:
        faults.setdefault(label(r), [0, r.cgroup])[0] += r.count
    page_faults = sorted((PageFaultRow(name, 0, n, cgroup=cg) for name, (n, cg) in faults.items()),
                         key=lambda r: (-r.count, r.comm))

    opens: dict[tuple[str, str, bool], list[int]] = {}
    for r in snap.file_opens:
        t = opens.setdefault((label(r), r.path, r.truncated), [0, 0, r.cgroup])
        t[0] += r.count
        t[1] += r.errors
    file_opens = sorted((FileOpenRow(name, 0, path, n, e, trunc, cgroup=cg)
                         for (name, path, trunc), (n, e, cg) in opens.items()),
                        key=lambda r: (-r.count, r.path, r.comm))

    def latency_of(lat: Latency) -> Latency:
        groups: dict[str, list] = {}
        for p in lat.by_process:
            groups.setdefault(label(p), []).append(p)
        procs = [ProcessLatency(name, 0, Histogram.merge(p.histogram for p in ps), cgroup=ps[0].cgroup)
                 for name, ps in groups.items()]
        procs.sort(key=lambda p: (-p.histogram.count, p.comm))
        return Latency(tuple(procs), lat.sampled_1_in)

    def renamed(rows) -> tuple:
        return tuple(r._replace(comm=label(r), pid=0) for r in rows)

    udp_totals: dict[tuple, list[int]] = {}
    for f in snap.udp:
        t = udp_totals.setdefault((label(f), f.family, f.laddr, f.lport, f.raddr, f.rport), [0, 0, 0, 0, f.cgroup])
        t[0] += f.tx_datagrams
        t[1] += f.tx_bytes
        t[2] += f.rx_datagrams
        t[3] += f.rx_bytes
    udp = sorted((UdpFlow(0, name, fam, la, lp, ra, rp, *v[:4], cgroup=v[4])
                  for (name, fam, la, lp, ra, rp), v in udp_totals.items()),
                 key=lambda f: (-(f.tx_bytes + f.rx_bytes), f.comm, f.lport, f.rport))
    return replace(
        snap,
        syscalls=tuple(syscalls),
        page_faults=tuple(page_faults),
        file_opens=tuple(file_opens),
        read_latency=latency_of(snap.read_latency),
        write_latency=latency_of(snap.write_latency),
        tcp=renamed(snap.tcp),
        tcp_connections=renamed(snap.tcp_connections),
        tcp_closed=renamed(snap.tcp_closed),
        udp=tuple(udp),
    )


def renamed_by_container(rows, containers) -> tuple:
    """Rows kept over time (the TUI's history) with the container's label as
    their name, as by_container() does for a snapshot's."""
    return tuple(r._replace(comm=container_label(r.cgroup, containers), pid=0) for r in rows)
