"""The snapshot: everything one poll of the probes produced, frozen, and the
types every probe set shares.

A snapshot has a few fields of its own (the time, the interval, each probe
set's status, losses, the containers its rows are in, what ebpftop itself
did) and one *part* per field a probe set fills: ``snap.syscalls``,
``snap.read_latency``.  Which parts there are, and their rows, their JSON
form, their filter and their grouping by container, is declared by the
probe sets (ebpftop/sets/); a snapshot is made with ``sets.snapshot()``,
which gives every declared part its empty value.

Rows are NamedTuples (immutable, and several times cheaper to build than
frozen dataclasses: a poll makes one per map entry).

Data flows one way: BPF maps -> source.poll() -> Snapshot -> filter -> views.
A Snapshot is what the UI draws, what --json prints and what --record writes.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from dataclasses import FrozenInstanceError, dataclass
from typing import NamedTuple

STATUS_OK = "ok"
STATUS_STARTING = "starting"


class Container(NamedTuple):
    """What a cgroup is, when it is not the host's: a container, a pod's
    container, a systemd service or a user session (containers.py)."""

    kind: str  # docker, kubernetes, containerd, cri-o, podman, lxc, service, session
    id: str  # the runtime's container id, or the unit's name
    name: str  # the runtime's name for it, else a short id; the unit for a service
    pod: str = ""  # Kubernetes only
    namespace: str = ""  # Kubernetes only

    @property
    def label(self) -> str:
        """What the CONTAINER column shows: the name, pod/container for Kubernetes."""
        return f"{self.pod}/{self.name}" if self.pod else self.name

    def matches(self, name: str) -> bool:
        """--container NAME: its name, pod/container, pod, or a prefix of its id (4 characters at least)."""
        return name in (self.name, self.label, self.pod) or (len(name) >= 4 and self.id.startswith(name))

    def to_dict(self) -> dict:
        return {"kind": self.kind, "id": self.id, "name": self.name, "pod": self.pod, "namespace": self.namespace}

    @classmethod
    def from_dict(cls, d: dict) -> Container:
        return cls(kind=str(d["kind"]), id=str(d["id"]), name=str(d["name"]), pod=str(d.get("pod") or ""),
                   namespace=str(d.get("namespace") or ""))


HOST = "host"  # what --container and the CONTAINER column call rows of no container




class Bucket(NamedTuple):
    """A log2 bucket: durations d with low_ns <= d < high_ns."""

    low_ns: int
    high_ns: int
    count: int


class Histogram(NamedTuple):
    buckets: tuple[Bucket, ...]  # ascending, only non-empty buckets
    sum_ns: int = 0  # exact sum of the durations counted

    @property
    def mean_ns(self) -> int | None:
        n = self.count
        return round(self.sum_ns / n) if n else None

    @property
    def count(self) -> int:
        return sum(b.count for b in self.buckets)

    def percentile(self, p: float) -> int | None:
        """The p-th percentile (0 < p < 100), interpolated linearly inside its
        log2 bucket: exact to within that bucket's width.  None when empty."""
        total = self.count
        if total == 0:
            return None
        rank = p / 100.0 * total
        seen = 0
        for b in self.buckets:
            if seen + b.count >= rank:
                frac = (rank - seen) / b.count
                return int(round(b.low_ns + frac * (b.high_ns - b.low_ns)))
            seen += b.count
        return self.buckets[-1].high_ns

    @staticmethod
    def merge(histograms) -> Histogram:
        counts: dict[tuple[int, int], int] = {}
        total = 0
        for h in histograms:
            total += h.sum_ns
            for b in h.buckets:
                counts[(b.low_ns, b.high_ns)] = counts.get((b.low_ns, b.high_ns), 0) + b.count
        return Histogram(tuple(Bucket(lo, hi, n) for (lo, hi), n in sorted(counts.items()) if n), total)

    @staticmethod
    def from_log2_slots(slots: dict[int, int], sum_ns: int = 0) -> Histogram:
        """From BCC's bpf_log2l() slots: slot k >= 1 holds [2^(k-1), 2^k), slot 0 holds 0."""
        buckets = []
        for slot in sorted(slots):
            n = slots[slot]
            if n <= 0:
                continue
            low, high = LOG2_BOUNDS[slot]
            buckets.append(Bucket(low, high, n))
        return Histogram(tuple(buckets), sum_ns)

    def to_dict(self) -> dict:
        return {
            "count": self.count,
            "p50_ns": self.percentile(50),
            "p90_ns": self.percentile(90),
            "p99_ns": self.percentile(99),
            "sum_ns": self.sum_ns,
            "buckets": [{"low_ns": b.low_ns, "high_ns": b.high_ns, "count": b.count} for b in self.buckets],
        }

    @classmethod
    def from_dict(cls, d: dict) -> Histogram:
        return cls(
            tuple(Bucket(int(b["low_ns"]), int(b["high_ns"]), int(b["count"])) for b in d["buckets"]),
            int(d.get("sum_ns", 0)),
        )


EMPTY_HISTOGRAM = Histogram(())

# bpf_log2l() slot k >= 1 holds [2^(k-1), 2^k); slot 0 holds 0
LOG2_BOUNDS = tuple((0, 1) if k == 0 else (1 << (k - 1), 1 << k) for k in range(65))


class ProcessLatency(NamedTuple):
    comm: str
    pid: int
    histogram: Histogram
    cgroup: int = 0  # cgroup v2 id (0: unknown); Snapshot.containers says what it is


@dataclass(frozen=True)
class Latency:
    by_process: tuple[ProcessLatency, ...]
    # > 1: the probes sampled 1 call in N (--max-cpu shed load): every count
    # and sum is the sample's times N, an estimate; percentiles are unbiased
    sampled_1_in: int = 1

    @property
    def estimated(self) -> bool:
        return self.sampled_1_in > 1

    @property
    def total(self) -> Histogram:
        return Histogram.merge(p.histogram for p in self.by_process)

    def by_name(self) -> list[tuple[str, int, Histogram]]:
        """(comm, cgroup, histogram) per process name in each cgroup: a name
        in two containers is two rows."""
        groups: dict[tuple[str, int], list[Histogram]] = {}
        for p in self.by_process:
            groups.setdefault((p.comm, p.cgroup), []).append(p.histogram)
        return [(comm, cg, Histogram.merge(hs)) for (comm, cg), hs in sorted(groups.items())]

    def by_comm(self) -> dict[str, Histogram]:
        groups: dict[str, list[Histogram]] = {}
        for p in self.by_process:
            groups.setdefault(p.comm, []).append(p.histogram)
        return {comm: Histogram.merge(hs) for comm, hs in sorted(groups.items())}

    def to_dict(self) -> dict:
        return {
            "sampled_1_in": self.sampled_1_in,
            "estimated": self.estimated,
            "total": self.total.to_dict(),
            "by_comm": {comm: h.to_dict() for comm, h in self.by_comm().items()},
            "by_process": [
                {"comm": p.comm, "pid": p.pid, "cgroup": p.cgroup, **p.histogram.to_dict()} for p in self.by_process
            ],
        }

    @classmethod
    def from_dict(cls, d: dict) -> Latency:
        return cls(
            tuple(
                ProcessLatency(str(p["comm"]), int(p["pid"]), Histogram.from_dict(p), int(p.get("cgroup", 0)))
                for p in d.get("by_process", [])
            ),
            int(d.get("sampled_1_in", 1)),
        )




class ProbeCost(NamedTuple):
    """One BPF program on the machine in the interval, ebpftop's or another
    tool's, from the kernel's run-time statistics (BPF_ENABLE_STATS)."""

    name: str  # ebpftop's: tracepoint__<category>__<event>, ...; another's: the kernel's name for it
    runs: int
    run_time_ns: int
    prog_id: int = 0
    prog_type: str = ""  # tracepoint, kprobe, cgroup_skb, ... ("" in recordings made before it was kept)
    ours: bool = True  # one of ebpftop's own
    holders: tuple = ()  # ((pid, comm), ...) holding it open; () for ebpftop's (and for a pinned one)
    hook_name: str = ""  # where it is attached, as its attachment says (sources/attach.py); "" for another's

    @property
    def owner(self) -> str:
        if self.ours:
            return "ebpftop"
        if len(self.holders) > 2:  # a program shared by a pool of processes: one name, and how many more
            pid, comm = self.holders[0]
            return f"{comm}[{pid}] +{len(self.holders) - 1} more"
        return ", ".join(f"{comm}[{pid}]" for pid, comm in self.holders) or "-"

    @property
    def hook(self) -> str:
        if self.hook_name:
            return self.hook_name
        if not self.ours:
            return f"{self.prog_type or '?'} {self.name}"
        if self.name.startswith("tracepoint__"):  # BCC's name of a classic tracepoint's program
            category, _, event = self.name[len("tracepoint__"):].partition("__")
            return f"{category}:{event}"
        return self.name

    @property
    def avg_ns(self) -> float | None:
        return self.run_time_ns / self.runs if self.runs else None

    def cpu_pct(self, interval_s: float) -> float:
        """Share of one CPU spent in this program over the interval."""
        return self.run_time_ns / (interval_s * 1e9) * 100 if interval_s else 0.0

    def to_dict(self, interval_s: float) -> dict:
        return {
            "name": self.name,
            "hook": self.hook,
            "runs": self.runs,
            "run_time_ns": self.run_time_ns,
            "avg_ns": None if self.avg_ns is None else round(self.avg_ns, 1),
            "cpu_pct": round(self.cpu_pct(interval_s), 4),
            "prog_id": self.prog_id,
            "prog_type": self.prog_type,
            "ours": self.ours,
            "holders": [{"pid": pid, "comm": comm} for pid, comm in self.holders],
        }

    @classmethod
    def from_dict(cls, d: dict) -> ProbeCost:
        return cls(name=str(d["name"]), runs=int(d["runs"]), run_time_ns=int(d["run_time_ns"]),
                   prog_id=int(d.get("prog_id", 0)), prog_type=str(d.get("prog_type", "")),
                   ours=bool(d.get("ours", True)),
                   holders=tuple((int(h["pid"]), str(h["comm"])) for h in d.get("holders", [])),
                   hook_name=str(d.get("hook", "")))


class Budget(NamedTuple):
    """--max-cpu in the interval: what ebpftop cost (percent of one CPU) and
    what it gave up to stay under the budget (budget.py)."""

    max_cpu_pct: float
    load_pct: float  # kernel_pct (or 0 when unknown) + own_pct
    kernel_pct: float | None  # ebpftop's BPF programs' run time; None without run-time statistics
    own_pct: float  # ebpftop's own process
    latency_sampled_1_in: int = 1  # > 1: latency counts are estimates: 1 call in N timed, counted as N by the kernel
    detached: tuple[str, ...] = ()  # probe sets detached to shed load

    @property
    def degraded(self) -> bool:
        return self.latency_sampled_1_in > 1 or bool(self.detached)

    def describe(self) -> str:
        parts = []
        if self.latency_sampled_1_in > 1:
            parts.append(f"latency sampled 1 in {self.latency_sampled_1_in}")
        if self.detached:
            parts.append("detached: " + ", ".join(self.detached))
        return "; ".join(parts)

    def to_dict(self) -> dict:
        return {"max_cpu_pct": self.max_cpu_pct, "load_pct": round(self.load_pct, 3),
                "kernel_pct": None if self.kernel_pct is None else round(self.kernel_pct, 3),
                "own_pct": round(self.own_pct, 3), "degraded": self.degraded,
                "latency_sampled_1_in": self.latency_sampled_1_in, "detached": list(self.detached)}

    @classmethod
    def from_dict(cls, d: dict) -> Budget:
        kernel = d.get("kernel_pct")
        return cls(max_cpu_pct=float(d["max_cpu_pct"]), load_pct=float(d["load_pct"]),
                   kernel_pct=None if kernel is None else float(kernel), own_pct=float(d["own_pct"]),
                   latency_sampled_1_in=int(d.get("latency_sampled_1_in", 1)),
                   detached=tuple(str(x) for x in d.get("detached", [])))


class Snapshot:
    """One interval: the fields every snapshot has, and the probe sets'
    parts (read as attributes: ``snap.tcp``).  Immutable: ``replace()``
    makes a changed copy."""

    __slots__ = ("time", "interval_s", "parts", "probes", "probe_stats", "status", "lost", "skipped",
                 "capabilities", "containers", "notices", "budget", "starts")
    OWN = __slots__[:1] + __slots__[1:2] + __slots__[3:]  # every field but the parts

    time: float  # end of the interval, seconds since the epoch
    interval_s: float
    parts: Mapping  # part name -> its value (sets.PARTS says what each is)
    probes: tuple  # every BPF program's cost (ProbeCost), when the run-time statistics are on
    probe_stats: str  # "ok", "off", or why the statistics are not available
    status: dict  # probe set -> "ok", "starting" or the reason it is not running
    lost: dict  # probe set (or loss counter) -> events lost in this interval: a map full, a ring overrun
    # probe set -> runs of its programs the kernel skipped in this interval
    # (its recursion guard: another BPF program was running on that CPU);
    # each is an event not counted, but not for want of room in ebpftop
    skipped: dict
    # what the kernel and BCC offered and the fallbacks taken (capabilities.py);
    # its "notes" say, per probe set, what a fallback changes
    capabilities: dict
    containers: dict  # cgroup id -> what it is, for every row's cgroup that is not the host's
    notices: tuple  # what ebpftop itself did in the interval (a flight recording written)
    budget: Budget | None  # with --max-cpu: the interval's load and what was shed
    # pid -> its start time (clock ticks after boot) when the interval was
    # read, for each process a row names that was alive then: what an action
    # on a row checks the pid against (act.py).  Live only: not in the JSON
    # form, so a replay has none and acts on nothing.
    starts: dict

    def __init__(self, time: float, interval_s: float, parts: Mapping | None = None, *, probes: tuple = (),
                 probe_stats: str = "off", status: dict | None = None, lost: dict | None = None,
                 skipped: dict | None = None, capabilities: dict | None = None, containers: dict | None = None, notices: tuple = (),
                 budget: Budget | None = None, starts: dict | None = None):
        init = object.__setattr__
        init(self, "time", time)
        init(self, "interval_s", interval_s)
        init(self, "parts", dict(parts or {}))
        init(self, "probes", tuple(probes))
        init(self, "probe_stats", probe_stats)
        init(self, "status", dict(status or {}))
        init(self, "lost", dict(lost or {}))
        init(self, "skipped", dict(skipped or {}))
        init(self, "capabilities", dict(capabilities or {}))
        init(self, "containers", dict(containers or {}))
        init(self, "notices", tuple(notices))
        init(self, "budget", budget)
        init(self, "starts", dict(starts or {}))

    def __getattr__(self, name: str):
        # only reached for what is not a field: a part
        try:
            return object.__getattribute__(self, "parts")[name]
        except KeyError:
            raise AttributeError(f"a snapshot has no part {name!r} (made without snapshots.new()?)") from None

    def __setattr__(self, name, value):
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def replace(self, **changes) -> Snapshot:
        """A copy with these fields or parts changed."""
        own = {k: getattr(self, k) for k in self.OWN}
        parts = dict(self.parts)
        for k, v in changes.items():
            if k in own:
                own[k] = v
            elif k in parts:
                parts[k] = v
            else:
                raise TypeError(f"a snapshot has no field or part {k!r}")
        return Snapshot(parts=parts, **own)

    def __eq__(self, other) -> bool:
        if not isinstance(other, Snapshot):
            return NotImplemented
        return all(getattr(self, k) == getattr(other, k) for k in self.__slots__)

    __hash__ = None  # mutable dicts inside

    def __repr__(self) -> str:
        return f"Snapshot(time={self.time!r}, interval_s={self.interval_s!r}, parts={sorted(self.parts)})"

    def container_of(self, cgroup: int) -> Container | None:
        return self.containers.get(cgroup)


def iso_time(t: float) -> str:
    return _dt.datetime.fromtimestamp(t, _dt.timezone.utc).isoformat(timespec="milliseconds")


def parse_iso_time(s: str) -> float:
    return _dt.datetime.fromisoformat(s).timestamp()
