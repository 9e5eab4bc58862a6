"""Where the read() path's nanoseconds go: the read loop of the bench, bare
and beside programs that rebuild ebpftop's two read-path programs (the raw
sys_enter and syscalls:sys_exit_read) one piece at a time, interleaved over
rounds; prints each step's median ns per read, the ns it adds to the
previous step, and the added ns as a multiple of the floor's (empty programs
on the same two hooks: the figure of issue 16).

    sudo .venv/bin/python -m tests.bench.hot_path_parts [ROUNDS]

The pieces mirror bpf/syscalls.c and bpf/read_latency.c (with task-local
storage); a variant or two beside them measures an alternative (the scratch
in a hash map keyed by thread id; the histogram in a per-CPU hash, without
atomic adds).  Then what a syscall hook costs the syscalls it is not for:
the getppid() and open() loops beside an empty raw sys_enter program, with
and without empty classic syscalls:sys_enter_openat / sys_exit_openat ones
(why bpf/sys_enter.c takes every entry on the raw tracepoint).  Last, the
least that timing a read can cost: the read loop beside the two empty
programs, then with one clock read (its value stored) in the raw sys_enter
for read(), then with one in each.  Not a test: measurements to decide by.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
READS = 2_000_000

HEADER = r"""
#include <uapi/linux/ptrace.h>
struct thread_count { u64 count; u64 cgroup; u32 tgid; char comm[16]; };
BPF_HASH(counts, u32, struct thread_count, 16384);
struct scratch { u64 start; u32 op; u32 known; u64 cgroup; char comm[16]; };
BPF_TASK_STORAGE(task_scratch, struct scratch);
BPF_HASH(hash_scratch, u32, struct scratch, 65536);
struct lat_key { u64 cgroup; char comm[16]; u32 tgid; u16 slot; u16 op; };
struct lat_value { u64 count; u64 sum; };
BPF_HASH(hist, struct lat_key, struct lat_value, 16384);
BPF_PERCPU_HASH(percpu_hist, struct lat_key, struct lat_value, 16384);
"""
# raw sys_enter: the per-thread syscall counter (syscalls.c)
COUNT = r"""
    u64 pid_tgid = bpf_get_current_pid_tgid(); u32 tid = (u32)pid_tgid;
    struct thread_count *c = counts.lookup(&tid);
    if (!c) {
        struct thread_count init = {.count = 1, .tgid = pid_tgid >> 32};
        init.cgroup = bpf_get_current_cgroup_id();
        bpf_get_current_comm(init.comm, 16);
        counts.insert(&tid, &init);
        return 0;
    }
    c->count++;
"""
# ... and read()'s entry stamped with the thread's cgroup and comm (latency_enter_as)
STAMP = r"""
    if (ctx->args[1] == 0) {
        struct scratch *s = task_scratch.task_storage_get(bpf_get_current_task_btf(), 0,
                                                          BPF_LOCAL_STORAGE_GET_F_CREATE);
        if (s) { s->cgroup = c->cgroup; __builtin_memcpy(s->comm, c->comm, 16); s->known = 1; s->op = 0;
                 s->start = bpf_ktime_get_ns(); }
    }
"""
STAMP_IN_HASH = STAMP.replace(
    "struct scratch *s = task_scratch.task_storage_get(bpf_get_current_task_btf(), 0,\n"
    "                                                          BPF_LOCAL_STORAGE_GET_F_CREATE);",
    "struct scratch *s = hash_scratch.lookup(&tid);\n"
    "        if (!s) { struct scratch z = {}; s = hash_scratch.lookup_or_try_init(&tid, &z); }")
# sys_exit_read: the duration (latency_exit) ...
DURATION = r"""
    struct scratch *s = task_scratch.task_storage_get(bpf_get_current_task_btf(), 0, 0);
    if (!s || !s->start) return 0;
    u64 delta = bpf_ktime_get_ns() - s->start; s->start = 0;
"""
DURATION_IN_HASH = DURATION.replace(
    "struct scratch *s = task_scratch.task_storage_get(bpf_get_current_task_btf(), 0, 0);",
    "u32 tid = (u32)bpf_get_current_pid_tgid(); struct scratch *s = hash_scratch.lookup(&tid);")
# ... and the histogram's update
HISTOGRAM = r"""
    struct lat_key key = {}; key.slot = bpf_log2l(delta); key.op = 0;
    key.tgid = bpf_get_current_pid_tgid() >> 32;
    key.cgroup = s->cgroup; __builtin_memcpy(key.comm, s->comm, 16);
    struct lat_value zero = {}; struct lat_value *v = hist.lookup_or_try_init(&key, &zero);
    if (v) { __sync_fetch_and_add(&v->count, 1); __sync_fetch_and_add(&v->sum, delta); }
"""
HISTOGRAM_PERCPU = HISTOGRAM.replace("hist.lookup_or_try_init", "percpu_hist.lookup_or_try_init").replace(
    "__sync_fetch_and_add(&v->count, 1); __sync_fetch_and_add(&v->sum, delta);", "v->count++; v->sum += delta;")


def program(enter: str, exit_: str) -> str:
    return (HEADER + "RAW_TRACEPOINT_PROBE(sys_enter) {" + enter + " return 0; }\n"
            "TRACEPOINT_PROBE(syscalls, sys_exit_read) {" + exit_ + " return 0; }\n")


STEPS = {  # each adds one piece to the one before it, but the two variants at the end
    "floor (empty programs)": program("", ""),
    "+ syscall counter": program(COUNT, ""),
    "+ read() entry stamped": program(COUNT + STAMP, ""),
    "+ duration at the exit": program(COUNT + STAMP, DURATION),
    "+ histogram (= ebpftop)": program(COUNT + STAMP, DURATION + HISTOGRAM),
    "variant: scratch in a hash": program(COUNT + STAMP_IN_HASH, DURATION_IN_HASH + HISTOGRAM),
    "variant: per-CPU histogram": program(COUNT + STAMP, DURATION + HISTOGRAM_PERCPU),
}


RAW_ENTER = "RAW_TRACEPOINT_PROBE(sys_enter) { return 0; }\n"
CLASSIC_ENTER = "TRACEPOINT_PROBE(syscalls, sys_enter_openat) { return 0; }\n"
CLASSIC_EXIT = "TRACEPOINT_PROBE(syscalls, sys_exit_openat) { return 0; }\n"
HOOKS = {
    "raw sys_enter": RAW_ENTER,
    "+ classic sys_enter_openat": RAW_ENTER + CLASSIC_ENTER,
    "+ classic sys_enter_openat and sys_exit_openat": RAW_ENTER + CLASSIC_ENTER + CLASSIC_EXIT,
    "raw sys_enter + classic sys_exit_openat": RAW_ENTER + CLASSIC_EXIT,
}
HOOK_LOOPS = {"getppid": 2_000_000, "open": 200_000}


def build_workload(tmp: str) -> str:
    """workload.c compiled into the directory tmp: the binary's path."""
    binary = os.path.join(tmp, "workload")
    subprocess.run(["gcc", "-O2", "-o", binary, str(HERE / "workload.c")], check=True)
    return binary


def workload_loop(binary: str, mode: str, n: int):
    """A function running one of workload.c's loops: its ns per operation."""
    def loop() -> float:
        out = subprocess.run([binary, mode, str(n)], check=True, capture_output=True, text=True)
        return float(out.stdout.split()[-1])
    return loop


def medians_beside(programs: dict[str, str], loop, rounds: int, progress: bool = False) -> dict[str, float]:
    """The loop's median ns per operation bare and beside each BCC program
    text, interleaved over rounds (each program loaded, the loop run once to
    warm and once measured, the program unloaded)."""
    from bcc import BPF

    samples: dict[str, list[float]] = {"bare": []}
    for r in range(rounds):
        samples["bare"].append(loop())
        for name, text in programs.items():
            bpf = BPF(text=text.encode())
            try:
                loop()  # warm
                samples.setdefault(name, []).append(loop())
            finally:
                bpf.cleanup()
        if progress:
            print(f"  round {r + 1} of {rounds}", file=sys.stderr)
    return {name: statistics.median(v) for name, v in samples.items()}


def hook_costs(binary: str, rounds: int) -> None:
    from bcc import BPF

    def loop(mode: str, n: int) -> float:
        out = subprocess.run([binary, mode, str(n)], check=True, capture_output=True, text=True)
        return float(out.stdout.split()[-1])

    samples: dict[tuple[str, str], list[float]] = {}
    for _ in range(rounds):
        for mode, n in HOOK_LOOPS.items():
            samples.setdefault(("bare", mode), []).append(loop(mode, n))
        for name, text in HOOKS.items():
            bpf = BPF(text=text.encode())
            try:
                for mode, n in HOOK_LOOPS.items():
                    loop(mode, n // 4)  # warm
                    samples.setdefault((name, mode), []).append(loop(mode, n))
            finally:
                bpf.cleanup()
    print(f"\nWhat empty programs on syscall hooks cost, median of {rounds} interleaved rounds")
    print("| programs | getppid ns (added) | open ns (added) |")
    print("|---|---|---|")
    bare = {mode: statistics.median(samples[("bare", mode)]) for mode in HOOK_LOOPS}
    for name in ("bare", *HOOKS):
        cells = []
        for mode in HOOK_LOOPS:
            m = statistics.median(samples[(name, mode)])
            cells.append(f"{m:.1f} ({m - bare[mode]:+.1f})")
        print(f"| {name} | " + " | ".join(cells) + " |")


SINK = "BPF_ARRAY(sink, u64, 1);\n"
CLOCK = "if (ctx->args[1] == 0) { u64 t = bpf_ktime_get_ns(); u32 z = 0; u64 *p = sink.lookup(&z); if (p) *p += t; }"
CLOCK_AT_EXIT = "u64 t = bpf_ktime_get_ns(); u32 z = 0; u64 *p = sink.lookup(&z); if (p) *p += t;"
CLOCKS = {
    "floor (empty programs)": program("", ""),
    "+ a clock read at read()'s entry": SINK + program(CLOCK, ""),
    "+ a clock read at its exit too": SINK + program(CLOCK, CLOCK_AT_EXIT),
}


def clock_costs(binary: str, rounds: int) -> None:
    """What the two clock reads that time a call cost on their own, on the
    read loop: the least any latency histogram adds to the floor."""
    med = medians_beside(CLOCKS, workload_loop(binary, "read", READS), rounds)
    bare, floor = med["bare"], med["floor (empty programs)"]
    print(f"\nThe two clock reads that time a read(), alone, median of {rounds} interleaved rounds")
    print("| programs | ns per read | added ÷ the floor's |")
    print("|---|---|---|")
    for name, ns in med.items():
        print(f"| {name} | {ns:.1f} | {(ns - bare) / (floor - bare):.2f} |")


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    with tempfile.TemporaryDirectory() as tmp:
        binary = build_workload(tmp)
        med = medians_beside(STEPS, workload_loop(binary, "read", READS), rounds, progress=True)
        bare, floor = med["bare"], med["floor (empty programs)"]
        print(f"read() loop, {READS:,} reads, median of {rounds} interleaved rounds")
        print("| step | ns per read | added to the step before | added ÷ the floor's |")
        print("|---|---|---|---|")
        before = bare
        for name, ns in med.items():
            step_before = med["+ histogram (= ebpftop)"] if name.startswith("variant") else before
            print(f"| {name} | {ns:.1f} | {ns - step_before:+.1f} | {(ns - bare) / (floor - bare):.2f} |")
            if not name.startswith("variant"):
                before = ns
        hook_costs(binary, rounds)
        clock_costs(binary, rounds)


if __name__ == "__main__":
    main()
