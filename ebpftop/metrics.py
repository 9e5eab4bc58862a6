"""Prometheus counters accumulated from per-interval snapshots.  Pure (no
prometheus_client here): the exporter turns a ``MetricsState`` into metric
families.

Counters are monotonic: each poll adds the interval's figures.  Cardinality is
bounded: each labelled metric tracks at most ``max_labels`` label values; a
value that does not fit is counted under ``other``.  When the set is full, a
new value that is busier this interval than the quietest tracked one takes its
place: the evicted series stops being exported (Prometheus marks it stale) and
its later counts go to ``other`` -- no exported counter ever goes down.
File paths are never labels."""

from __future__ import annotations

from dataclasses import dataclass, field

from ebpftop.model import Histogram, Snapshot

OTHER = "other"

# Histogram bounds in seconds: powers of 4 of ns from 1.024 us to 1.07 s, each
# the upper end of a log2 bucket of the kernel's histogram (so no bucket is
# split), plus +Inf.
LATENCY_BOUNDS_NS = tuple(1 << k for k in range(10, 31, 2))


@dataclass
class BoundedCounter:
    """label tuple -> monotonic count, for at most ``max_labels`` label tuples."""

    max_labels: int
    arity: int = 1  # labels per series
    values: dict = field(default_factory=dict)
    other: float = 0
    evicted: int = 0  # label values dropped to keep the bound
    evicted_total: float = 0  # what those had counted (no longer exported)

    def add_interval(self, increments: dict) -> None:
        # busiest first, so the cap keeps the heaviest new values
        quiet = {k: increments.get(k, 0) for k in self.values}
        for key, inc in sorted(increments.items(), key=lambda kv: -kv[1]):
            if inc <= 0:
                continue
            if key in self.values:
                self.values[key] += inc
            elif len(self.values) < self.max_labels:
                self.values[key] = inc
                quiet[key] = inc
            else:
                victim = min(quiet, key=lambda k: quiet[k]) if quiet else None
                if victim is not None and quiet[victim] < inc:
                    self.evicted_total += self.values.pop(victim)
                    del quiet[victim]
                    self.evicted += 1
                    self.values[key] = inc
                    quiet[key] = inc
                else:
                    self.other += inc

    def samples(self) -> list[tuple[tuple, float]]:
        out = sorted(self.values.items())
        if self.other:
            out.append(((OTHER,) * self.arity, self.other))
        return out


@dataclass
class LatencyHistogram:
    """Cumulative Prometheus buckets (le, in ns) and the exact sum."""

    buckets: list = field(default_factory=lambda: [0] * (len(LATENCY_BOUNDS_NS) + 1))
    sum_ns: int = 0

    def add(self, h: Histogram) -> None:
        for b in h.buckets:
            # the first bound at or above the bucket's upper end holds all of it
            i = next((i for i, bound in enumerate(LATENCY_BOUNDS_NS) if b.high_ns <= bound), len(LATENCY_BOUNDS_NS))
            self.buckets[i] += b.count
        self.sum_ns += h.sum_ns

    def cumulative(self) -> list[tuple[str, float]]:
        out, running = [], 0
        for bound, n in zip(LATENCY_BOUNDS_NS, self.buckets):
            running += n
            out.append((repr(bound / 1e9), running))
        running += self.buckets[-1]
        out.append(("+Inf", running))
        return out


@dataclass
class MetricsState:
    max_labels: int = 100
    polls: int = 0
    syscalls: BoundedCounter = None
    page_faults: BoundedCounter = None
    file_opens: BoundedCounter = None
    file_open_errors: BoundedCounter = None
    tcp: BoundedCounter = None  # (direction, port)
    alerts: BoundedCounter = None  # (comm, result): opens of watched files
    udp_datagrams: BoundedCounter = None  # (comm, direction)
    udp_bytes: BoundedCounter = None  # (comm, direction)
    tcp_bytes: BoundedCounter = None  # (comm, direction): what sendmsg/recvmsg moved
    tcp_retransmits: BoundedCounter = None  # (comm, direction="sent"): retransmitted segments
    tcp_resets: BoundedCounter = None  # (comm, direction)
    # per container (its label; "host"; "unknown" for rows of no known owner)
    container_syscalls: BoundedCounter = None  # (container, kind)
    container_page_faults: BoundedCounter = None  # (container, kind)
    container_file_opens: BoundedCounter = None  # (container, kind)
    container_tcp_bytes: BoundedCounter = None  # (container, direction)
    read_latency: LatencyHistogram = field(default_factory=LatencyHistogram)
    read_latency_by_comm: dict = field(default_factory=dict)
    write_latency: LatencyHistogram = field(default_factory=LatencyHistogram)
    lost: dict = field(default_factory=dict)
    status: dict = field(default_factory=dict)
    budget: object = None  # model.Budget of the last poll, with --max-cpu
    _tcp_seen: dict = field(default_factory=dict)  # open connection -> its counts at the last poll

    def __post_init__(self):
        two_labels = ("tcp", "alerts", "udp_datagrams", "udp_bytes", "tcp_bytes", "tcp_retransmits", "tcp_resets",
                      "container_syscalls", "container_page_faults", "container_file_opens", "container_tcp_bytes")
        for name in ("syscalls", "page_faults", "file_opens", "file_open_errors", *two_labels):
            if getattr(self, name) is None:
                setattr(self, name, BoundedCounter(self.max_labels, arity=2 if name in two_labels else 1))

    def add(self, snap: Snapshot) -> None:
        self.polls += 1
        self.syscalls.add_interval(_by_comm((r.comm, r.count) for r in snap.syscalls))
        self.page_faults.add_interval(_by_comm((r.comm, r.count) for r in snap.page_faults))
        self.file_opens.add_interval(_by_comm((r.comm, r.count) for r in snap.file_opens))
        self.file_open_errors.add_interval(_by_comm((r.comm, r.errors) for r in snap.file_opens))
        tcp: dict = {}
        for c in snap.tcp:
            # the service's port: the local one of an accept, the remote one of a connect
            port = c.sport if c.direction == "accept" else c.dport
            tcp[(c.direction, str(port))] = tcp.get((c.direction, str(port)), 0) + 1
        self.tcp.add_interval(tcp)
        alerts: dict = {}
        for a in snap.alerts:
            alerts[(a.comm, a.result)] = alerts.get((a.comm, a.result), 0) + 1
        self.alerts.add_interval(alerts)
        datagrams: dict = {}
        nbytes: dict = {}
        for f in snap.udp:
            for direction, n, b in (("sent", f.tx_datagrams, f.tx_bytes), ("received", f.rx_datagrams, f.rx_bytes)):
                if n:
                    datagrams[(f.comm, direction)] = datagrams.get((f.comm, direction), 0) + n
                    nbytes[(f.comm, direction)] = nbytes.get((f.comm, direction), 0) + b
        self.udp_datagrams.add_interval(datagrams)
        self.udp_bytes.add_interval(nbytes)
        self._add_tcp_traffic(snap)
        self._add_containers(snap)
        self.read_latency.add(snap.read_latency.total)
        self.write_latency.add(snap.write_latency.total)
        # per-comm histograms share the syscall counter's bound on names
        by_comm = snap.read_latency.by_comm()
        for comm, h in by_comm.items():
            key = comm if (comm,) in self.syscalls.values else OTHER
            self.read_latency_by_comm.setdefault(key, LatencyHistogram()).add(h)
        for comm in [c for c in self.read_latency_by_comm if c != OTHER and (c,) not in self.syscalls.values]:
            del self.read_latency_by_comm[comm]  # evicted from the bounded set: stop exporting it
        for pane, n in snap.lost.items():
            self.lost[pane] = self.lost.get(pane, 0) + n
        self.status = dict(snap.status)
        self.budget = snap.budget

    def _add_tcp_traffic(self, snap: Snapshot) -> None:
        """Bytes of the interval; retransmits and resets are per-connection
        totals, so a connection adds what grew since the last poll, and a
        closed one what it had left."""
        nbytes: dict = {}
        retransmits: dict = {}
        resets: dict = {}
        seen = {}
        for c in snap.tcp_connections + snap.tcp_closed:
            _add_pair(nbytes, (c.comm, "sent"), c.tx_bytes)
            _add_pair(nbytes, (c.comm, "received"), c.rx_bytes)
            key = (c.opened, c.saddr, c.sport, c.daddr, c.dport)
            r0, s0, g0 = self._tcp_seen.get(key, (0, 0, 0))
            _add_pair(retransmits, (c.comm, "sent"), c.retransmits - r0)
            _add_pair(resets, (c.comm, "sent"), c.resets_sent - s0)
            _add_pair(resets, (c.comm, "received"), c.resets_received - g0)
            if c.closed is None:
                seen[key] = (c.retransmits, c.resets_sent, c.resets_received)
        self._tcp_seen = seen
        self.tcp_bytes.add_interval(nbytes)
        self.tcp_retransmits.add_interval(retransmits)
        self.tcp_resets.add_interval(resets)


    def _add_containers(self, snap: Snapshot) -> None:
        def who(cgroup: int) -> tuple[str, str]:
            c = snap.containers.get(cgroup)
            if c is not None:
                return c.label, c.kind
            return ("host", "host") if cgroup else ("unknown", "unknown")

        for counter, rows in ((self.container_syscalls, snap.syscalls), (self.container_page_faults, snap.page_faults),
                              (self.container_file_opens, snap.file_opens)):
            counts: dict = {}
            for r in rows:
                _add_pair(counts, who(r.cgroup), r.count)
            counter.add_interval(counts)
        nbytes: dict = {}
        for c in snap.tcp_connections + snap.tcp_closed:
            label = who(c.cgroup)[0]
            _add_pair(nbytes, (label, "sent"), c.tx_bytes)
            _add_pair(nbytes, (label, "received"), c.rx_bytes)
        self.container_tcp_bytes.add_interval(nbytes)


def _add_pair(d: dict, key: tuple, n: int) -> None:
    if n:
        d[key] = d.get(key, 0) + n


def _by_comm(pairs) -> dict:
    out: dict = {}
    for comm, n in pairs:
        out[(comm,)] = out.get((comm,), 0) + n
    return out
