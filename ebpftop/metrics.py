"""Prometheus counters and histograms accumulated from per-interval
snapshots, for the metric families each probe set declares.  Pure (no
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
from ebpftop.sets import PROBE_SETS

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
class BoundedHistograms:
    """label tuple -> LatencyHistogram, for at most ``max_labels`` label
    tuples; later ones are counted under ``other`` (a histogram's buckets
    never go down, so no series is evicted)."""

    max_labels: int
    arity: int = 0
    values: dict = field(default_factory=dict)

    def add_interval(self, histograms: dict) -> None:
        for key, h in histograms.items():
            if not h.buckets:
                continue
            if key not in self.values and len(self.values) >= max(self.max_labels, 1) and self.arity:
                key = (OTHER,) * self.arity
            self.values.setdefault(key, LatencyHistogram()).add(h)


@dataclass
class MetricsState:
    """Every probe set's metric families (sets/*.py: counters, histograms),
    accumulated over the polls."""

    max_labels: int = 100
    polls: int = 0
    counters: dict = field(default_factory=dict)  # family name -> BoundedCounter
    histograms: dict = field(default_factory=dict)  # family name -> BoundedHistograms
    lost: dict = field(default_factory=dict)
    skipped: dict = field(default_factory=dict)
    status: dict = field(default_factory=dict)
    budget: object = None  # model.Budget of the last poll, with --max-cpu
    _state: dict = field(default_factory=dict)  # family name -> its own state between polls

    def __post_init__(self):
        for p in PROBE_SETS:
            for c in p.counters:
                self.counters[c.name] = BoundedCounter(self.max_labels, arity=len(c.labels))
                self._state[c.name] = {}
            for h in p.histograms:
                self.histograms[h.name] = BoundedHistograms(self.max_labels, arity=len(h.labels))

    def add(self, snap: Snapshot) -> None:
        self.polls += 1
        for p in PROBE_SETS:
            for c in p.counters:
                self.counters[c.name].add_interval(c.increments(snap, self._state[c.name]))
            for h in p.histograms:
                self.histograms[h.name].add_interval(h.histograms(snap))
        for name, n in snap.lost.items():
            self.lost[name] = self.lost.get(name, 0) + n
        for name, n in snap.skipped.items():
            self.skipped[name] = self.skipped.get(name, 0) + n
        self.status = dict(snap.status)
        self.budget = snap.budget
