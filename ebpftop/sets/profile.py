"""The CPU profile (bpf/profile.c): what code is on the CPU, sampled on the
perf software event cpu-clock (--profile-hz per CPU, 49 by default), with
its user and kernel stacks, symbolized.

Each sample comes whole through a ring buffer (bpf/profile.c says why not
a stack map); identical samples are counted as they come, and at each poll
their addresses are named.  Each interval's samples become rows of
(process, thread name, user stack, kernel stack, samples), frames root
first, bounded: each process name's PER_PROCESS busiest stacks and
TOTAL_ROWS in all, the rest of a process summed into one "[other stacks]"
row and the rest of the host into one "[other processes]" row, so no sample
is dropped and a line of --json stays small.  A frame that could not be had
is a frame that says why (never a sample dropped): a stack the kernel could
not walk, one cut at its depth limit, an address no symbol covers, a
process gone before its addresses were named.
"""

from __future__ import annotations

import ctypes
import os
import struct
from array import array
from collections.abc import Iterable, Mapping
from typing import NamedTuple

from ebpftop.aggregate import decode_c_string
from ebpftop.sets.base import (
    PERF_COUNT_SW_CPU_CLOCK,
    PERF_TYPE_SOFTWARE,
    Collector,
    Count,
    PerfEvent,
    PollContext,
    ProbeSet,
    Rows,
    as_int,
)

DEFAULT_HZ = 49  # not 50 or 100: off the beat of timers that fire at round rates (BCC's profile.py does the same)
MAX_HZ = 1000
# the kernel's stack map walks at most this many frames (its own limit is
# kernel.perf_event_max_stack, 127 by default); deeper stacks are cut at the root
CONSTANTS = {"PROFILE_STACK_DEPTH": 127}
STACK_DEPTH = CONSTANTS["PROFILE_STACK_DEPTH"]
PER_PROCESS = 100  # stacks kept per process name and interval
TOTAL_ROWS = 400  # rows kept per interval (at 49 Hz, 2 CPUs and 5 s there are at most 490 samples)

MAX_DISTINCT = 50_000  # distinct samples kept between two polls; beyond, a sample is counted without its stack
# struct profile_sample (bpf/profile.c) up to its addresses: cgroup, tgid, user_bytes, kernel_bytes, pad, comm
SAMPLE_HEADER = struct.Struct("=QIii4x16s")

EFAULT = -14  # bpf_get_stack's "no such stack"
OTHER_STACKS = "[other stacks]"
OTHER_PROCESSES = "[other processes]"
TOO_MANY = "[stack lost: too many distinct stacks in the interval]"
CUT = f"[cut: deeper than {STACK_DEPTH} frames]"


def stack_label(length: int, kernel: bool, kernel_thread: bool) -> str | None:
    """The frame that stands for a stack the kernel did not give (its
    length, negative: -errno), or None where there is nothing to say (a
    sample taken in user mode has no kernel frames; a kernel thread no user
    ones)."""
    if length == EFAULT:
        return None if kernel or kernel_thread else "[user stack unavailable]"
    return f"[stack lost: error {-length}]"


def ring_pages(options: Mapping) -> dict:
    """The ring buffer's size for the rate asked: what a sample's frames
    take (a few hundred bytes; 2 KiB at most) at the rate on every CPU, for
    the half second between two reads, four times over, in pages (a power of
    two: 64 KiB to 16 MiB)."""
    hz = options.get("profile_hz") or DEFAULT_HZ
    want = hz * (os.cpu_count() or 1) // 2  # 4 KiB a sample: twice the most one takes
    pages = 16
    while pages < want and pages < 4096:
        pages *= 2
    return {"PROFILE_RING_PAGES": pages}


PF_KTHREAD = 0x00200000  # include/linux/sched.h: a kernel thread (its flags are field 9 of /proc/PID/stat)


def is_kernel_thread(tgid: int) -> bool:
    """A kernel thread has no user stack to miss; a process gone is not known to be one."""
    try:
        with open(f"/proc/{tgid}/stat", "rb") as f:
            stat = f.read()
        return bool(int(stat[stat.rindex(b")") + 2:].split()[6]) & PF_KTHREAD)
    except (OSError, ValueError, IndexError):
        return False


class ProfileStack(NamedTuple):
    """Samples of one stack of one process's threads of one name."""

    pid: int  # the process (tgid)
    comm: str  # the sampled thread's name
    user_stack: tuple[str, ...]  # root first
    kernel_stack: tuple[str, ...]  # root first (entry into the kernel first); below the user frames
    samples: int
    cgroup: int = 0  # cgroup v2 id (0: unknown); Snapshot.containers says what it is

    @property
    def frames(self) -> tuple[tuple[str, bool], ...]:
        """(name, in the kernel) root first: the user frames, then the kernel's."""
        return tuple((f, False) for f in self.user_stack) + tuple((f, True) for f in self.kernel_stack)

    def to_dict(self) -> dict:
        return {"pid": self.pid, "comm": self.comm, "user_stack": list(self.user_stack),
                "kernel_stack": list(self.kernel_stack), "samples": self.samples, "cgroup": self.cgroup}

    @classmethod
    def from_dict(cls, d: dict) -> ProfileStack:
        user, kernel = d.get("user_stack", []), d.get("kernel_stack", [])
        if not isinstance(user, list) or not isinstance(kernel, list):
            raise TypeError("a profile stack's frames must be lists")
        return cls(pid=int(d["pid"]), comm=str(d["comm"]), user_stack=tuple(map(str, user)),
                   kernel_stack=tuple(map(str, kernel)), samples=int(d["samples"]), cgroup=int(d.get("cgroup", 0)))


def merged(rows: Iterable[ProfileStack]) -> list[ProfileStack]:
    """Rows of the same process, name and frames summed (two stack ids of
    one function differ by address only), the most samples first."""
    totals: dict[tuple, int] = {}
    for r in rows:
        key = (r.pid, r.comm, r.cgroup, r.user_stack, r.kernel_stack)
        totals[key] = totals.get(key, 0) + r.samples
    out = [ProfileStack(pid, comm, user, kernel, n, cgroup) for (pid, comm, cgroup, user, kernel), n in totals.items()]
    out.sort(key=lambda r: (-r.samples, r.pid, r.comm, r.user_stack, r.kernel_stack))
    return out


def bounded(rows: Iterable[ProfileStack], per_process: int = PER_PROCESS, total: int = TOTAL_ROWS) -> tuple:
    """At most per_process stacks per (process, name, cgroup), the rest in
    one OTHER_STACKS row of it; at most `total` rows, the rest in one
    OTHER_PROCESSES row.  The samples add up to the same."""
    per: dict[tuple, list] = {}
    for r in merged(rows):
        per.setdefault((r.pid, r.comm, r.cgroup), []).append(r)
    kept: list[ProfileStack] = []
    for (pid, comm, cgroup), rs in per.items():
        kept += rs[:per_process]
        rest = sum(r.samples for r in rs[per_process:])
        if rest:
            kept.append(ProfileStack(pid, comm, (OTHER_STACKS,), (), rest, cgroup))
    kept.sort(key=lambda r: (-r.samples, r.pid, r.comm, r.user_stack, r.kernel_stack))
    if len(kept) > total:
        rest = sum(r.samples for r in kept[total - 1:])
        kept = kept[:total - 1] + [ProfileStack(0, OTHER_PROCESSES, (OTHER_STACKS,), (), rest)]
    return tuple(kept)


def grouped(rows, label) -> tuple[ProfileStack, ...]:
    """Per container: its stacks summed over its processes (pid 0)."""
    return tuple(merged(ProfileStack(0, label(r), r.user_stack, r.kernel_stack, r.samples, r.cgroup) for r in rows))


def shown_as(name: str) -> str:
    """A frame as the views count it: every address of a process gone
    before it was named is one "[exited]" (the JSON and --folded keep each
    address)."""
    return "[exited]" if name.startswith("[exited]") else name


class HotFunction(NamedTuple):
    name: str
    kernel: bool  # a kernel function
    self_samples: int  # samples with it on top (running its own code)
    total_samples: int  # samples with it anywhere on the stack (it or what it called)
    top_comm: str  # the process name with most of its total


def hot_functions(rows: Iterable[ProfileStack]) -> list[HotFunction]:
    """Each function's self and total samples (a function recursing counts
    once per sample in its total), the most self first."""
    self_n: dict[tuple, int] = {}
    total_n: dict[tuple, int] = {}
    by_comm: dict[tuple, dict] = {}
    for r in rows:
        frames = tuple((shown_as(f), k) for f, k in r.frames) or (("[no stack]", False),)
        leaf = frames[-1]
        self_n[leaf] = self_n.get(leaf, 0) + r.samples
        for f in set(frames):
            total_n[f] = total_n.get(f, 0) + r.samples
            comms = by_comm.setdefault(f, {})
            comms[r.comm] = comms.get(r.comm, 0) + r.samples
    out = [HotFunction(name, kernel, self_n.get((name, kernel), 0), n,
                       max(by_comm[(name, kernel)].items(), key=lambda kv: (kv[1], kv[0]))[0])
           for (name, kernel), n in total_n.items()]
    out.sort(key=lambda h: (-h.self_samples, -h.total_samples, h.name))
    return out


def folded_line(comm: str, user_stack, kernel_stack, samples: int) -> str:
    """One line of flamegraph.pl's (and speedscope's) input: the thread's
    name, then the frames root first, ';' between them, kernel frames
    marked _[k] as flamegraph.pl colours them, then the count.  A ';', a
    space or a control character in a name would break the line: replaced."""
    def clean(name: str) -> str:
        return "".join("_" if c in "; " or ord(c) < 32 or ord(c) == 127 else c for c in name) or "_"

    frames = [clean(comm)] + [clean(f) for f in user_stack] + [clean(f) + "_[k]" for f in kernel_stack]
    return ";".join(frames) + f" {samples}"


class ProfileCollector(Collector):
    """Counts identical samples as the ring gives them, and names a
    sample's addresses when it first comes (the ring is read every half
    second, so a process that lives longer than that is named while it
    lives: a compiler's cc1, not a 20 ms curl)."""

    rings = {"profile_events": "on_sample"}

    def start(self) -> None:
        self.samples: dict[bytes, list] = {}  # the sample as sent -> [samples, its row's key]
        self.unkept: dict[bytes, int] = {}  # beyond MAX_DISTINCT: header -> samples
        self.symbols = self.kernel.symbolizer()
        self.kernel_threads: dict[int, bool] = {}  # for the interval: tgid -> a kernel thread
        self.idle_seen = 0

    def on_sample(self, data, size: int) -> None:
        raw = ctypes.string_at(data, size)
        seen = self.samples.get(raw)
        if seen is not None:
            seen[0] += 1
        elif len(self.samples) < MAX_DISTINCT:
            self.samples[raw] = [1, self._named(raw)]
        else:
            head = raw[:SAMPLE_HEADER.size]
            self.unkept[head] = self.unkept.get(head, 0) + 1

    def _named(self, raw: bytes) -> tuple:
        """(tgid, comm, user frames, kernel frames, cgroup) of a sample."""
        cgroup, tgid, user_bytes, kernel_bytes, comm = SAMPLE_HEADER.unpack_from(raw)
        head = SAMPLE_HEADER.size
        ips = array("Q", raw[head:head + (len(raw) - head) // 8 * 8])
        nu = max(0, user_bytes) // 8
        user = self._frames(tgid, user_bytes, ips[:nu], False)
        kernel = self._frames(tgid, kernel_bytes, ips[nu:nu + max(0, kernel_bytes) // 8], True)
        return tgid, decode_c_string(comm), tuple(user), tuple(kernel), cgroup

    def _frames(self, tgid: int, length: int, addresses, kernel: bool) -> list[str]:
        if length < 0:
            if not kernel and tgid not in self.kernel_threads:
                self.kernel_threads[tgid] = is_kernel_thread(tgid)
            label = stack_label(length, kernel, self.kernel_threads.get(tgid, False))
            return [label] if label else []
        name = self.symbols.kernel if kernel else (lambda a: self.symbols.user(tgid, a))
        frames = [CUT] if len(addresses) >= STACK_DEPTH else []
        if kernel and not self.symbols.kernel_symbols:
            return frames + ["[kernel]"] if addresses else frames  # addresses hidden: one frame, not one per address
        return frames + [name(a) for a in reversed(addresses)]  # root first

    def collect(self, ctx: PollContext) -> dict:
        samples, self.samples = self.samples, {}
        unkept, self.unkept = self.unkept, {}
        self.kernel_threads = {}
        rows = [ProfileStack(tgid, comm, user, kernel, n, cgroup)
                for n, (tgid, comm, user, kernel, cgroup) in samples.values()]
        for raw, n in unkept.items():
            cgroup, tgid, _, _, comm = SAMPLE_HEADER.unpack_from(raw)
            rows.append(ProfileStack(tgid, decode_c_string(comm), (TOO_MANY,), (), n, cgroup))
        idle = sum(as_int(n) for n in self.kernel.table("profile_idle")[ctypes.c_int(0)])
        idle_delta, self.idle_seen = idle - self.idle_seen, idle
        return {"profile_stacks": bounded(rows), "profile_idle": idle_delta}


SET = ProbeSet(
    name="profile", c_file="profile.c", title="a CPU profile with user and kernel stacks (perf cpu-clock)",
    parts=(
        Rows("profile_stacks", ProfileStack, group=grouped),
        Count("profile_idle"),  # samples that found a CPU idle
    ),
    collector=ProfileCollector,
    map_sizes={"PROFILE_RING_PAGES": 64},
    sizes_for=ring_pages,
    constants=CONSTANTS,
    attach=(PerfEvent("profile_sample", PERF_TYPE_SOFTWARE, PERF_COUNT_SW_CPU_CLOCK, "perf cpu-clock (sampling)",
                      frequency=DEFAULT_HZ, frequency_option="profile_hz"),),
)
