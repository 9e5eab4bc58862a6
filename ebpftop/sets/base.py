"""What a probe set is, declared once, and the pieces every set's module is
made of.

A *probe set* is one bpf/NAME.c (its kernel side) and one
ebpftop/sets/NAME.py (its user side): the ``ProbeSet`` declaration (what the
C needs from the kernel, its map sizes and loss counters, how its programs
are attached), the *parts* it fills in a snapshot (each with its rows, JSON
form, filter and grouping by container), the ``Collector`` that turns its
maps into those parts at each poll, and what the rest of ebpftop shows of it
(metric families, timeline headlines, --trigger figures).  A *view* (a tab
of the TUI, ebpftop/panes/) shows parts; one tab may show several sets'.

Nothing here imports ``bcc`` or ``textual``: a collector is handed a
``Kernel`` (sources/kernel.py) that reads the maps, so every collector is
unit-tested on hand-built entries.
"""

from __future__ import annotations

import ctypes
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any, ClassVar, Protocol

from ebpftop import filters
from ebpftop.aggregate import add_to_histograms, decode_c_string, latency_of_groups
from ebpftop.model import Container, Histogram, Latency, ProcessLatency, Snapshot

# -- the parts a set adds to a snapshot ---------------------------------------


def container_dict(containers: Mapping[int, Container], cgroup: int) -> dict | None:
    c = containers.get(cgroup)
    return None if c is None else c.to_dict()


class Part:
    """One field a probe set fills in every snapshot (``snap.NAME``): its
    empty value, its JSON form (the key is NAME), how the one filter and
    the grouping by container treat it, and how many rows it holds."""

    name: str

    def empty(self):
        raise NotImplementedError

    def to_json(self, value, containers: Mapping[int, Container]):
        raise NotImplementedError

    def from_json(self, data):
        raise NotImplementedError

    def json_rows(self, data) -> list:
        """The rows of the JSON form that carry a cgroup and its container."""
        return []

    def filtered(self, value, flt: filters.Filter, containers: Mapping[int, Container]):
        return value

    def grouped(self, value, label: Callable[[Any], str]):
        """The value with its rows summed per container (label(row) names a
        row's container): what the TUI's g key shows."""
        return value

    def size(self, value) -> int:
        """Rows held: what the kept history's memory grows with."""
        return 0

    def cgroups(self, value) -> Iterable[int]:
        return ()

    def processes(self, value) -> Iterable[tuple[int, str, int]]:
        """(pid, comm, cgroup) of each process a row names: what an action
        on a row (act.py) can reach."""
        return ()


@dataclass(frozen=True)
class Rows(Part):
    """A tuple of rows (NamedTuples with to_dict/from_dict and a cgroup)."""

    name: str
    row: type
    # rows, Filter, containers -> the rows it matches; None: never filtered
    # (an open of a watched file is shown whoever made it)
    filter: Callable | None = filters.by_process
    # rows, label -> the rows summed per container; None: shown as they are (a log of events)
    group: Callable | None = None
    kept: int = 0  # the TUI keeps the last N rows over time (new connections, process events)
    newest_first: bool = True  # the order of the rows in a snapshot
    # the TUI gets its rows from the source as they come (Source.poll_alerts), not with their snapshot
    streamed: bool = False
    # row -> (key, amount): the TUI keeps each key's total since start (page faults per process)
    since_start: Callable[[Any], tuple] | None = None
    # rows a row stands for in memory (a syscall row holds a count per pid); None: 1
    row_size: Callable[[Any], int] | None = None

    def empty(self):
        return ()

    def to_json(self, value, containers):
        out = []
        for r in value:
            d = r.to_dict()
            d["container"] = container_dict(containers, r.cgroup)
            out.append(d)
        return out

    def from_json(self, data):
        if not isinstance(data, list):
            raise TypeError(f"{self.name} must be a list")
        return tuple(self.row.from_dict(x) for x in data)

    def json_rows(self, data) -> list:
        return data if isinstance(data, list) else []

    def filtered(self, value, flt, containers):
        return tuple(value) if self.filter is None else self.filter(value, flt, containers)

    def grouped(self, value, label):
        return tuple(value) if self.group is None else self.group(value, label)

    def size(self, value) -> int:
        if self.row_size is None:
            return len(value)
        return sum(map(self.row_size, value))

    def cgroups(self, value):
        return map(_CGROUP, value)

    def processes(self, value):
        for r in value:
            pid = getattr(r, "pid", 0)
            if pid:
                yield (pid, r.comm, r.cgroup)
            for other, _n in getattr(r, "by_pid", ()):  # a row per name, its pids in it (syscalls)
                yield (other, r.comm, r.cgroup)


_CGROUP = attrgetter("cgroup")


@dataclass(frozen=True)
class Histograms(Part):
    """One series of a keyed log2 histogram family: a Latency, a histogram
    per process, from one drain of a HIST_MAP (bpf/ebpftop.h, hist_rows)."""

    name: str
    series: int = 0  # its value of struct hist_key.series in the map

    def empty(self):
        return Latency(())

    def to_json(self, value, containers):
        d = value.to_dict()
        for row in d["by_process"]:
            row["container"] = container_dict(containers, row.get("cgroup", 0))
        return d

    def from_json(self, data):
        if not isinstance(data, dict):
            raise TypeError(f"{self.name} must be an object")
        return Latency.from_dict(data)

    def json_rows(self, data) -> list:
        return data.get("by_process", []) if isinstance(data, dict) else []

    def filtered(self, value, flt, containers):
        return Latency(filters.by_process(value.by_process, flt, containers), value.sampled_1_in)

    def grouped(self, value, label):
        groups: dict[str, list] = {}
        for p in value.by_process:
            groups.setdefault(label(p), []).append(p)
        procs = [ProcessLatency(name, 0, Histogram.merge(p.histogram for p in ps), cgroup=ps[0].cgroup)
                 for name, ps in groups.items()]
        procs.sort(key=lambda p: (-p.histogram.count, p.comm))
        return Latency(tuple(procs), value.sampled_1_in)

    def size(self, value) -> int:
        return len(value.by_process)

    def cgroups(self, value):
        return map(_CGROUP, value.by_process)

    def processes(self, value):
        return ((p.pid, p.comm, p.cgroup) for p in value.by_process if p.pid)


# a field's annotation (a type, its name, or a forward reference to it) -> what its JSON value is made
_KINDS = {"int": int, int: int, "float": float, float: float}


@dataclass(frozen=True)
class HostRows(Part):
    """Rows of the host, of no process (each CPU's busy time, say): never
    filtered by process or grouped by container.  row: a NamedTuple of
    numbers and strings (its JSON form is its fields)."""

    name: str
    row: type

    def empty(self):
        return ()

    def to_json(self, value, containers):
        return [r._asdict() for r in value]

    def from_json(self, data):
        if not isinstance(data, list):
            raise TypeError(f"{self.name} must be a list")
        kinds = {name: _KINDS.get(getattr(t, "__forward_arg__", t), str) for name, t in self.row.__annotations__.items()}
        return tuple(self.row(**{k: kinds[k](d[k]) for k in self.row._fields if k in d}) for d in data)

    def size(self, value) -> int:
        return len(value)


@dataclass(frozen=True)
class Count(Part):
    """A number of the interval that belongs to no row."""

    name: str

    def empty(self):
        return 0

    def to_json(self, value, containers):
        return value

    def from_json(self, data):
        return int(data)


# -- how a set's programs are attached ----------------------------------------
# Programs written as TRACEPOINT_PROBE / RAW_TRACEPOINT_PROBE are attached by
# BCC as they load.  These are the others, each attached and detached by
# sources/attach.py.


@dataclass(frozen=True)
class CgroupSkb:
    """cgroup_skb programs linked to the cgroup v2 root (every process on the
    machine is under it), linked and unlinked together."""

    programs: tuple[tuple[str, str], ...]  # (program, "egress" or "ingress")

    def names(self, caps) -> tuple[str, ...]:
        return tuple(p for p, _ in self.programs)


@dataclass(frozen=True)
class PerfEvent:
    """A program on a perf event, opened on every online CPU for every task:
    counting (period: every Nth event) or sampling (frequency in Hz)."""

    program: str
    event_type: int  # PERF_TYPE_*
    config: int  # PERF_COUNT_*
    hook_name: str  # what the Probes tab calls it
    period: int = 0
    frequency: int = 0
    user_only: bool = False  # events in user mode only
    frequency_option: str = ""  # the option (Collector.options) that sets the frequency instead, if given
    when: Callable[[Any], bool] = lambda caps: True  # on this machine's capabilities

    def names(self, caps) -> tuple[str, ...]:
        return (self.program,) if self.when(caps) else ()


PERF_TYPE_SOFTWARE = 1
PERF_COUNT_SW_CPU_CLOCK = 0
PERF_COUNT_SW_PAGE_FAULTS = 2

# -- what the rest of ebpftop shows of a set ----------------------------------


@dataclass(frozen=True)
class Headline:
    """A figure of a snapshot shown over time (the views' timeline strip)."""

    label: str
    value: Callable[[Snapshot], float]
    text: Callable[[float], str]
    detail: Callable[[Snapshot], str] | None = None  # more of the shown interval: opens' failures, latency's p50


@dataclass(frozen=True)
class Figure:
    """A figure a --trigger can test (triggers.py)."""

    what: str
    value: Callable[[Snapshot], float]
    is_duration: bool = False  # in ns; the trigger's value takes a unit


@dataclass(frozen=True)
class CounterFamily:
    """A Prometheus counter: each interval adds increments(snapshot, state)
    (label values tuple -> amount; state is the family's own dict, kept
    between polls).  Label values are bounded (--max-label-values)."""

    name: str
    doc: str
    labels: tuple[str, ...]
    increments: Callable[[Snapshot, dict], dict]


@dataclass(frozen=True)
class HistogramFamily:
    """A Prometheus histogram of latencies: histograms(snapshot) -> label
    values tuple -> the interval's Histogram (() for one without labels)."""

    name: str
    doc: str
    labels: tuple[str, ...]
    histograms: Callable[[Snapshot], dict]


# -- the user side at run time ------------------------------------------------


class Kernel(Protocol):
    """What a collector may ask of the loaded programs (sources/kernel.py)."""

    caps: Any  # capabilities.Capabilities

    def drain(self, name: str, key_fields: tuple[str, ...] | None, value_fields: tuple[str, ...],
              delete: bool = True) -> list:
        """Every entry of hash map NAME taken out of it (or, delete=False,
        read and left), as tuples of the fields asked for (a scalar's is
        "value"); the values alone when key_fields is None."""

    def drain_percpu(self, name: str, key_fields: tuple[str, ...], value_fields: tuple[str, ...]) -> list:
        """Every entry of per-CPU hash map NAME taken out of it, as (key
        fields, value fields) with each value field summed over the CPUs
        (an array field element by element, as a list)."""

    def table(self, name: str):
        """BCC's object for map NAME (for the few maps read entry by entry)."""

    def reader(self, name: str):
        """Single lookups by key bytes in map NAME: .get(key) -> value bytes or None."""

    def format_of(self, tracepoint: str) -> str:
        """The format file's text of tracepoint 'group/event' ("" if none)."""

    def symbolizer(self):
        """Names of code addresses: .user(tgid, addr) and .kernel(addr) -> str
        (cached and bounded; a process gone keeps its addresses, marked);
        .kernel_symbols is False when the kernel hides its addresses."""


@dataclass(frozen=True)
class PollContext:
    now_ns: int  # CLOCK_MONOTONIC, as bpf_ktime_get_ns()
    sampled_1_in: int = 1  # --max-cpu: the set's probes sampled 1 in N in the interval being read


class Collector:
    """A probe set's user side while it runs: state between polls, and its
    maps read into its parts at each poll.  ``rings`` names its ring
    buffers and the method each event goes to (called with a pointer to the
    event and its size)."""

    rings: ClassVar[dict[str, str]] = {}

    def __init__(self, kernel: Kernel, options: Mapping[str, Any]):
        self.kernel = kernel
        self.options = options

    def start(self) -> None:
        """Once loaded, before the first poll (fill a map the C reads)."""

    def collect(self, ctx: PollContext) -> dict:
        """The parts of the interval: part name -> value."""
        raise NotImplementedError

    def discard(self, ctx: PollContext) -> None:
        """Detached under --max-cpu: a program it shares with a set still
        attached may go on counting for it, so its maps are emptied."""
        self.collect(ctx)

    def take_alerts(self) -> list:
        """Alerts since the last call (the TUI asks every half second)."""
        return []

    def set_option(self, name: str, value) -> bool:
        """An option changed while running (a view's key); True if taken."""
        return False


# -- the declaration ----------------------------------------------------------


@dataclass(frozen=True)
class ProbeSet:
    name: str
    c_file: str
    title: str  # what it traces, for --help and the README
    parts: tuple[Part, ...] = ()
    collector: type[Collector] | None = None
    tracepoints: tuple[str, ...] = ()  # without any of these it cannot run
    fields: dict = field(default_factory=dict)  # tracepoint -> the fields the C reads (args->FIELD)
    map_sizes: dict = field(default_factory=dict)  # -D name -> entries (what does not fit is lost)
    sizes_for: Callable[[Mapping], dict] | None = None  # options -> map sizes that depend on them
    lost_counters: tuple[str, ...] = ()  # its loss counters (LOST_<NAME> in C); default: its name
    shared_hooks: tuple[str, ...] = ()  # hooks it shares with other sets: one program each (sets.SHARED_HOOK_FILES)
    attach: tuple = ()  # its programs BCC does not attach (CgroupSkb, PerfEvent)
    needs_cgroup2: bool = False  # its programs attach to the cgroup v2 root
    sample_mask: str = ""  # an array map of one u32: 1-in-(mask+1) sampling, set under --max-cpu
    # C struct -> the ctypes class that decodes it: the loader checks the
    # layout as it compiles (sources/program.layout_checks)
    layouts: dict = field(default_factory=dict)
    # event of a shared hook file -> its C handler (sets.HANDLER_EVENTS: what each event passes)
    handlers: dict = field(default_factory=dict)
    # constants its C and its Python share (-D NAME=value while it is enabled), defined once, in its module
    constants: dict = field(default_factory=dict)
    # format_of(tracepoint) -> the format file's text: -D NAME=value its C takes from this kernel's
    # tracepoints (the bits of sched_switch's prev_state, say); ValueError if they are not there
    kernel_constants: Callable[[Callable[[str], str]], dict] | None = None
    counters: tuple[CounterFamily, ...] = ()
    histograms: tuple[HistogramFamily, ...] = ()
    headlines: dict = field(default_factory=dict)  # name -> Headline
    figures: dict = field(default_factory=dict)  # name -> Figure, for --trigger

    @property
    def loss_counters(self) -> tuple[str, ...]:
        return self.lost_counters or (self.name,)

    def attached_programs(self, caps) -> tuple[str, ...]:
        return tuple(p for a in self.attach for p in a.names(caps))


# -- small helpers the sets share ---------------------------------------------


def wall_time(ts_ns: int) -> float:
    """bpf_ktime_get_ns() (CLOCK_MONOTONIC) as wall-clock seconds."""
    return time.time() - (time.monotonic_ns() - ts_ns) / 1e9


def as_int(value) -> int:
    """A map value as an int: BCC < 0.28 returns ints from batch lookups,
    later versions ctypes objects (iovisor/bcc 82469ea6)."""
    return int(getattr(value, "value", value))


def event_of(struct_type, data):
    """A ring buffer's event (a pointer) as a ctypes struct, copied: the
    ring's memory is reused once the callback returns."""
    e = struct_type()
    ctypes.memmove(ctypes.addressof(e), data, ctypes.sizeof(struct_type))
    return e


def per_s(n: float, snap: Snapshot) -> float:
    return n / snap.interval_s if snap.interval_s else 0.0


def by_label(pairs: Iterable[tuple[tuple, float]]) -> dict:
    """(labels, amount) pairs summed per labels, zeros left out."""
    out: dict = {}
    for labels, n in pairs:
        if n:
            out[labels] = out.get(labels, 0) + n
    return out


def container_labels(snap: Snapshot, cgroup: int) -> tuple[str, str]:
    """A row's container for the per-container metrics: (its label, its
    kind); ("host", "host") on the host; ("unknown", "unknown") when the
    row's owner is unknown."""
    c = snap.containers.get(cgroup)
    if c is not None:
        return c.label, c.kind
    return ("host", "host") if cgroup else ("unknown", "unknown")


def thread_counts(kernel: Kernel, counts_map: str, folded_map: str) -> list[tuple]:
    """(comm, tgid, count, cgroup) of a per-thread counter map (struct
    thread_count, bpf/ebpftop.h) and its folded twin, the comm as the map
    holds it (bytes: decoded once per row made of it, not per entry).  The
    per-thread map is drained first: a fold between the two drains then
    lands in the folded map before it is read, never in neither."""
    entries = kernel.drain(counts_map, None, ("comm", "tgid", "count", "cgroup"))
    entries += [(comm, tgid, count, cgroup) for (comm, tgid, cgroup), (count,)
                in kernel.drain(folded_map, ("comm", "tgid", "cgroup"), ("value",))]
    return entries


HIST_FIELDS = (("series", "comm", "tgid", "cgroup", "slot"), ("count", "sum_ns"))  # of struct hist_key, hist_value


def hist_parts(kernel: Kernel, map_name: str, parts: tuple[Histograms, ...], sampled_1_in: int = 1) -> dict:
    """One drain of a HIST_MAP into a Latency per series (each part's):
    part name -> Latency; sampled 1 call in N (counts already weighted by
    the kernel), marked as estimates.
    Grouped on the map's own key fields, the comm decoded once per process."""
    groups: dict[int, dict] = {p.series: {} for p in parts}
    add = add_to_histograms
    for (series, comm, tgid, cgroup, slot), (n, sum_ns) in kernel.drain(map_name, *HIST_FIELDS):
        into = groups.get(series)
        if into is not None:
            add(into, (comm, tgid, cgroup), slot, n, sum_ns)
    return {p.name: latency_of_groups(groups[p.series], sampled_1_in, decode_c_string) for p in parts}
