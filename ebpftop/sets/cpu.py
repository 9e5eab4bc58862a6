"""CPU and the scheduler (bpf/cpu.c): each thread's time in the interval on
CPU, waiting for a CPU (runnable), blocked uninterruptibly (D, mostly disk
I/O) and sleeping, exact from sched_switch and the wakeups; its run-queue
waits as a log2 histogram per process (runqlat -P); its voluntary and
involuntary switches; and each CPU's busy time.

The kernel keeps one cumulative record per thread, never deleted while the
thread lives; user space reads them all at each poll and takes the
interval's part (cpu_carry.py), crediting the spans still open, so a thread
that runs, sleeps or waits across a poll is counted in each interval.
"""

from __future__ import annotations

import ctypes
import os
import re
import struct
import time
from collections.abc import Callable
from typing import NamedTuple

from ebpftop import cdefs
from ebpftop.aggregate import busiest_first, decode_c_string
from ebpftop.model import Bucket, Histogram, Latency, ProcessLatency
from ebpftop.render import duration
from ebpftop.sets import cpu_carry
from ebpftop.sets.base import (
    Collector,
    Count,
    CounterFamily,
    Figure,
    Headline,
    HistogramFamily,
    Histograms,
    HostRows,
    ProbeSet,
    Rows,
    as_int,
    by_label,
    container_labels,
    event_of,
)

# The thread states, in cpu_thread.ns[] order, and the C's other constants
CONSTANTS = {"CPU_ON": 0, "CPU_RUNNABLE": 1, "CPU_BLOCKED": 2, "CPU_SLEEPING": 3, "CPU_HIST_SLOTS": 40,
             "CPU_STAT_NO_WAKEUP": 0, "CPU_STAT_UNTRACED": 1, "CPU_STAT_NO_SWITCH_IN": 2,
             "CPU_STAT_BUSY": 3, "CPU_STAT_SLOTS": 4}
STATES = ("on_cpu", "runnable", "blocked", "sleeping")
HIST_SLOTS = CONSTANTS["CPU_HIST_SLOTS"]
GC_AFTER_NS = 10_000_000_000  # a record unchanged this long, of a thread gone: its last switch was missed
TGID_CACHE = 10_000
THREADS_PER_PROCESS = 32  # thread rows kept per process and interval; the rest summed in one
OTHER_THREADS = "[other threads]"


def prev_state_masks(format_of: Callable[[str], str]) -> dict:
    """From sched_switch's print fmt, the bits __print_flags names for
    prev_state: PREV_STATE_SLEEP_MASK all of them (a task with none is
    runnable, "R", or preempted in the kernel, "R+" = TASK_REPORT_MAX; most
    involuntary switches show 0: preemption on return to user goes through
    schedule()), PREV_STATE_BLOCKED "D", PREV_STATE_DEAD "X" and "Z" (its
    last switch).  Read from the kernel, not assumed: they moved between
    versions.  ValueError when the format names no S or D."""
    text = format_of("sched/sched_switch")
    flags = {name: int(bit, 16) for bit, name in re.findall(r'\{\s*(0x[0-9a-fA-F]+),\s*"(\w)"\s*\}', text)}
    if "D" not in flags or "S" not in flags:
        raise ValueError("the kernel's sched:sched_switch names no S or D state in its print fmt")
    mask = 0
    for bit in flags.values():
        mask |= bit
    return {"PREV_STATE_SLEEP_MASK": f"{mask:#x}", "PREV_STATE_BLOCKED": f"{flags['D']:#x}",
            "PREV_STATE_DEAD": f"{flags.get('X', 0) | flags.get('Z', 0):#x}"}


class CpuThread(NamedTuple):
    """One thread's interval: where its time went, in ns, and its switches."""

    tid: int
    pid: int  # its process (tgid)
    comm: str
    on_cpu_ns: int
    runnable_ns: int  # waiting for a CPU
    blocked_ns: int  # uninterruptible (D): mostly disk I/O
    sleeping_ns: int
    voluntary: int  # switched out having left the run queue (blocked, sleeping, exited)
    involuntary: int  # switched out while runnable (preempted)
    cgroup: int = 0  # cgroup v2 id (0: unknown); Snapshot.containers says what it is
    # of on_cpu_ns, what was charged by estimate: slices after a switch no
    # program saw (some VMs run threads no BPF program sees: bpf/cpu.c)
    estimated_ns: int = 0
    threads: int = 1  # threads the row stands for: more in a process's OTHER_THREADS row (tid 0)

    @property
    def wall_ns(self) -> int:
        return self.on_cpu_ns + self.runnable_ns + self.blocked_ns + self.sleeping_ns

    def to_dict(self) -> dict:
        return self._asdict()

    @classmethod
    def from_dict(cls, d: dict) -> CpuThread:
        return cls(tid=int(d["tid"]), pid=int(d["pid"]), comm=str(d["comm"]), on_cpu_ns=int(d["on_cpu_ns"]),
                   runnable_ns=int(d["runnable_ns"]), blocked_ns=int(d["blocked_ns"]),
                   sleeping_ns=int(d["sleeping_ns"]), voluntary=int(d["voluntary"]),
                   involuntary=int(d["involuntary"]), cgroup=int(d.get("cgroup", 0)),
                   estimated_ns=int(d.get("estimated_ns", 0)), threads=int(d.get("threads", 1)))


TIMES = ("on_cpu_ns", "runnable_ns", "blocked_ns", "sleeping_ns", "voluntary", "involuntary")


def bounded_threads(threads, per_process: int = THREADS_PER_PROCESS) -> list[CpuThread]:
    """Each process's per_process busiest threads, the rest summed in one
    row (tid 0, OTHER_THREADS, standing for N threads): a server that starts a thread per
    connection starts thousands in an interval, and the process row stays
    exact."""
    groups: dict[tuple[int, int], list] = {}
    for t in threads:
        groups.setdefault((t.pid, t.cgroup), []).append(t)
    out: list[CpuThread] = []
    for (pid, cgroup), ts in groups.items():
        if len(ts) <= per_process:
            out += ts
            continue
        # the main thread first (it names the process), then the busiest
        ts.sort(key=lambda t: (t.tid != pid, -(t.on_cpu_ns + t.runnable_ns + t.blocked_ns), t.tid))
        out += ts[:per_process]
        rest = ts[per_process:]
        n = sum(t.threads for t in rest)
        out.append(CpuThread(0, pid, OTHER_THREADS, *(sum(getattr(t, f) for t in rest) for f in TIMES),
                             cgroup=cgroup, estimated_ns=sum(t.estimated_ns for t in rest), threads=n))
    return out


class CpuBusy(NamedTuple):
    """One CPU in the interval."""

    cpu: int
    busy_ns: int  # not in its idle task
    idle_ns: int
    estimated_ns: int = 0  # after a switch no program saw: given to a thread by estimate


class CpuProcess(NamedTuple):
    """A process's threads summed (what the CPU view shows per process)."""

    pid: int
    comm: str  # its main thread's (tid == pid), else its busiest thread's
    threads: int
    on_cpu_ns: int
    runnable_ns: int
    blocked_ns: int
    sleeping_ns: int
    voluntary: int
    involuntary: int
    cgroup: int = 0
    estimated_ns: int = 0

    @property
    def wall_ns(self) -> int:
        return self.on_cpu_ns + self.runnable_ns + self.blocked_ns + self.sleeping_ns


def by_process(threads) -> tuple[CpuProcess, ...]:
    """Thread rows summed per (process, cgroup), the most on CPU first."""
    groups: dict[tuple[int, int], list] = {}
    for t in threads:
        groups.setdefault((t.pid, t.cgroup), []).append(t)
    rows = []
    for (pid, cgroup), ts in groups.items():
        named = [t for t in ts if t.tid] or ts  # an OTHER_THREADS row names no process
        main = next((t for t in named if t.tid == pid), max(named, key=lambda t: (t.on_cpu_ns, -t.tid)))
        rows.append(CpuProcess(pid, main.comm, sum(t.threads for t in ts), *(sum(getattr(t, f) for t in ts)
                                                                            for f in TIMES), cgroup=cgroup,
            estimated_ns=sum(t.estimated_ns for t in ts)))
    rows.sort(key=lambda r: (-r.on_cpu_ns, -r.runnable_ns, r.comm, r.pid))
    return tuple(rows)


def grouped(threads, label) -> tuple[CpuThread, ...]:
    """Per container: one row whose times are its threads' (pid and tid 0)."""
    groups: dict[str, list] = {}
    for t in threads:
        groups.setdefault(label(t), []).append(t)
    rows = [CpuThread(0, 0, name, *(sum(getattr(t, f) for t in ts) for f in TIMES), cgroup=ts[0].cgroup,
                      estimated_ns=sum(t.estimated_ns for t in ts), threads=sum(t.threads for t in ts))
            for name, ts in groups.items()]
    rows.sort(key=lambda r: (-r.on_cpu_ns, r.comm))
    return tuple(rows)


def runq_latency(processes: dict, decode_comm=lambda c: c) -> Latency:
    """cpu_carry.by_process()'s processes' waits: a log2 histogram each, the
    sum of the waits as its exact sum; the busiest first."""
    new = tuple.__new__
    procs = []
    for p in processes.values():
        buckets = tuple(new(Bucket, (1 << (k - 1) if k else 0, 1 << k if k else 1, n)) for k, n in enumerate(p.hist) if n)
        if buckets:
            procs.append((sum(p.hist), new(ProcessLatency, (decode_comm(p.comm), p.tgid,
                                                             new(Histogram, (buckets, p.wait_ns)), p.cgroup))))
    return Latency(tuple(pl for _, pl in sorted(procs, key=lambda x: (-x[0], x[1].comm, x[1].pid))))


def comm_from_proc(tid: int) -> str:
    """A thread's name, for one never switched out since ebpftop started
    (its record learns it then)."""
    try:
        with open(f"/proc/{tid}/comm", "rb") as f:
            return decode_c_string(f.read().rstrip(b"\n"))
    except OSError:
        return ""


def tgid_from_proc(tid: int) -> int:
    """A thread's process, for a thread not yet switched out since ebpftop
    started (its record learns it then): /proc/TID works for any thread id."""
    try:
        with open(f"/proc/{tid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"Tgid:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


class CpuThreadStruct(ctypes.Structure):
    """struct cpu_thread of bpf/cpu.c (the loader checks the layout as it compiles)."""

    _fields_ = [
        ("ns", ctypes.c_uint64 * 4),
        ("since", ctypes.c_uint64),
        ("birth", ctypes.c_uint64),
        ("cgroup", ctypes.c_uint64),
        ("state", ctypes.c_uint32),
        ("tgid", ctypes.c_uint32),
        ("voluntary", ctypes.c_uint32),
        ("involuntary", ctypes.c_uint32),
        ("refresh", ctypes.c_uint32),
        ("first_tid", ctypes.c_uint32),
        ("estimated_ns", ctypes.c_uint64),
        ("comm", ctypes.c_char * cdefs.COMM_LEN),
        ("hist", ctypes.c_uint32 * HIST_SLOTS),
    ]


class CpuDeadEventStruct(ctypes.Structure):
    """struct cpu_dead_event of bpf/cpu.c: a thread's record at its last switch."""

    _fields_ = [("tid", ctypes.c_uint32), ("pad", ctypes.c_uint32), ("thread", CpuThreadStruct)]


# struct cpu_thread (bpf/cpu.c): the fields read, as the batch reader names them
THREAD_FIELDS = ("ns", "since", "birth", "cgroup", "state", "tgid", "voluntary", "involuntary", "first_tid", "comm",
                 "hist", "estimated_ns")
NS = struct.Struct("=4Q")
HIST = struct.Struct(f"={HIST_SLOTS}I")


class CpuCollector(Collector):
    rings = {"cpu_dead": "on_dead"}

    def __init__(self, kernel, options):
        super().__init__(kernel, options)
        self.carried: dict = {}  # cpu_carry.advance's, between polls
        self.cpu_carried: dict = {}
        self.tgids: dict[int, int] = {}
        self.polls = 0
        self.last_now: int | None = None  # the previous poll's clock: the CPUs' figures cover since then
        self.estimated_seen = 0  # cpu_stats' no_switch_in so far
        self.dead: list = []  # readings of the threads that died since the last poll (the cpu_dead ring)

    def on_dead(self, data, _size) -> None:
        e = event_of(CpuDeadEventStruct, data)
        t = e.thread
        self.dead.append(cpu_carry.ThreadReading(e.tid, t.birth, tuple(t.ns), t.state, t.since, t.voluntary,
                                                 t.involuntary, tuple(t.hist), t.tgid, t.comm, t.cgroup, True,
                                                 t.first_tid, t.estimated_ns))

    def _readings(self, entries, dead: bool) -> list:
        unpack_ns, unpack_hist = NS.unpack, HIST.unpack
        return [cpu_carry.ThreadReading(tid, birth, unpack_ns(ns), state, since, voluntary, involuntary,
                                        unpack_hist(hist), tgid, comm, cgroup, dead, first_tid, estimated)
                for (tid,), (ns, since, birth, cgroup, state, tgid, voluntary, involuntary, first_tid, comm, hist,
                             estimated) in entries]

    def tgid_of(self, tid: int) -> int:
        if len(self.tgids) > TGID_CACHE:
            self.tgids.clear()
        if tid not in self.tgids:
            self.tgids[tid] = tgid_from_proc(tid)
        return self.tgids[tid]

    def collect(self, ctx) -> dict:
        # live records first, then the dead drained (cpu_carry.advance's order)
        readings = self._readings(self.kernel.drain("cpu_threads", ("value",), THREAD_FIELDS, delete=False), False)
        dead, self.dead = self.dead, []
        readings += dead  # after the live (cpu_carry.advance's order)
        percpu = self.kernel.table("cpu_percpu")[ctypes.c_int(0)]
        cpus = [cpu_carry.CpuReading(cpu, v.idle_ns, v.last_switch, bool(v.idle), v.untraced_ns)
                for cpu, v in enumerate(percpu) if cpu < (os.cpu_count() or 1)]
        now = time.monotonic_ns()  # after the reads (bpf_ktime_get_ns's clock): every credit is >= 0
        self.carried, deltas = cpu_carry.advance(self.carried, readings, now)
        self.cpu_carried, idle, untraced = cpu_carry.advance_cpus(self.cpu_carried, cpus, now)
        self.polls += 1
        if self.polls % 10 == 0:
            self._gc(readings, now)
        decode = decode_c_string
        processes = cpu_carry.by_process(deltas, self.tgid_of)
        threads = []
        for p in processes.values():
            for d in p.threads:
                if d.ns[0] or d.ns[1] or d.ns[2] or d.voluntary or d.involuntary:  # only asleep: not shown
                    threads.append(CpuThread(d.tid, p.tgid, decode(d.comm or p.comm) or comm_from_proc(d.tid),
                                             *d.ns, d.voluntary, d.involuntary, d.cgroup, d.estimated_ns))
        # the first poll is the CPUs' baseline: their idle time is known from the second on
        busy = () if self.last_now is None else tuple(
            CpuBusy(cpu, max(0, now - self.last_now - idle[cpu]), idle[cpu], untraced.get(cpu, 0)) for cpu in sorted(idle))
        self.last_now = now
        stats = self.kernel.table("cpu_stats")
        estimated = sum(as_int(n) for n in stats[ctypes.c_int(CONSTANTS["CPU_STAT_NO_SWITCH_IN"])])
        estimated_now, self.estimated_seen = estimated - self.estimated_seen, estimated
        return {"cpu_threads": busiest_first(bounded_threads(threads), 3, lambda t: (t.comm, t.tid)),
                "runq_latency": runq_latency(processes, decode),
                "cpus": busy, "cpu_estimated": estimated_now}

    def _gc(self, readings, now: int) -> None:
        """Records whose thread is gone without its last switch traced
        (events missed) would keep an open span for ever: every record
        unchanged for GC_AFTER_NS whose tid no longer exists is deleted."""
        table = self.kernel.table("cpu_threads")
        for r in readings:
            if not r.dead and now - r.since > GC_AFTER_NS and not os.path.exists(f"/proc/{r.tid}"):
                try:
                    del table[ctypes.c_uint(r.tid)]
                except KeyError:
                    pass
                self.carried.pop(r.key, None)


def busy_pct(cpus) -> float:
    """The CPUs' busy time as a share of the time they were measured over
    (busy + idle: the collector's own clock, not the interval asked for)."""
    total = sum(c.busy_ns + c.idle_ns for c in cpus)
    return sum(c.busy_ns for c in cpus) / total * 100 if total else 0.0


def _busy_pct(s) -> float:
    return busy_pct(s.cpus)


def _busy_detail(s) -> str:
    return " ".join(f"cpu{c.cpu} {busy_pct((c,)):.0f}%" for c in s.cpus)


def _runq_p99(s) -> float:
    return float(s.runq_latency.total.percentile(99) or 0)


SET = ProbeSet(
    name="cpu", c_file="cpu.c", title="on-CPU time, run-queue waits and where each thread's time goes",
    parts=(
        Rows("cpu_threads", CpuThread, group=grouped),
        Histograms("runq_latency"),  # run-queue waits per process (runqlat -P)
        HostRows("cpus", CpuBusy),
        Count("cpu_estimated"),  # slices whose start was estimated: a switch no program saw came before
    ),
    collector=CpuCollector,
    tracepoints=("sched/sched_switch", "sched/sched_wakeup", "sched/sched_wakeup_new"),
    fields={"sched/sched_switch": ("prev_pid", "prev_state", "next_pid"), "sched/sched_wakeup": ("pid",),
            "sched/sched_wakeup_new": ("pid",)},
    # the dead ring: 1 MiB, about 3,700 threads' last records between two reads (every half second)
    map_sizes={"CPU_THREADS_MAP_SIZE": 16384, "CPU_DEAD_RING_PAGES": 256},
    layouts={"cpu_thread": CpuThreadStruct, "cpu_dead_event": CpuDeadEventStruct},
    shared_hooks=("task/task_rename", "sched/sched_process_exec", "sched/sched_process_exit",
                  "cgroup/cgroup_attach_task"),
    handlers={"thread_changed": "cpu_thread_changed", "thread_exec": "cpu_thread_exec"},
    constants=CONSTANTS,
    kernel_constants=prev_state_masks,
    counters=(
        CounterFamily("ebpftop_cpu_seconds", "On-CPU time by process name (sched:sched_switch).", ("comm",),
                      lambda s, _: by_label(((p.comm,), p.on_cpu_ns / 1e9) for p in by_process(s.cpu_threads))),
        CounterFamily("ebpftop_cpu_wait_seconds", "Time runnable, waiting for a CPU, by process name.", ("comm",),
                      lambda s, _: by_label(((p.comm,), p.runnable_ns / 1e9) for p in by_process(s.cpu_threads))),
        CounterFamily("ebpftop_cpu_blocked_seconds", "Time blocked uninterruptibly (D: mostly disk I/O), by "
                      "process name.", ("comm",),
                      lambda s, _: by_label(((p.comm,), p.blocked_ns / 1e9) for p in by_process(s.cpu_threads))),
        CounterFamily("ebpftop_context_switches", "Context switches by process name and kind (voluntary, "
                      "involuntary).", ("comm", "kind"),
                      lambda s, _: by_label(x for p in by_process(s.cpu_threads) for x in (
                          ((p.comm, "voluntary"), p.voluntary), ((p.comm, "involuntary"), p.involuntary)))),
        CounterFamily("ebpftop_container_cpu_seconds", "On-CPU time by container.", ("container", "kind"),
                      lambda s, _: by_label((container_labels(s, t.cgroup), t.on_cpu_ns / 1e9)
                                            for t in s.cpu_threads)),
        CounterFamily("ebpftop_cpu_busy_seconds", "Time each CPU was not idle.", ("cpu",),
                      lambda s, _: by_label(((str(c.cpu),), c.busy_ns / 1e9) for c in s.cpus)),
    ),
    histograms=(HistogramFamily("ebpftop_runqueue_latency_seconds", "Run-queue latency (wakeup to running), all "
                                "processes.", (), lambda s: {(): s.runq_latency.total}),),
    headlines={"cpu_busy": Headline("CPU busy", _busy_pct, lambda v: f"{v:.0f}%", _busy_detail),
               "runq_p99": Headline("run queue p99", _runq_p99, lambda v: duration(round(v)))},
    figures={"cpu_busy_pct": Figure("the host's CPUs busy, in percent", _busy_pct),
             "runq_p99": Figure("run-queue latency p99", _runq_p99, is_duration=True)},
)
