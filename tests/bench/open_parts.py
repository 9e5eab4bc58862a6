"""Where an open()'s nanoseconds go: the open loop of the bench (open and
close /etc/hostname), bare and beside programs that rebuild file_opens.c's
work on its two hooks (the raw sys_enter and syscalls:sys_exit_openat) one
piece at a time, interleaved over rounds; prints each step's median ns per
open+close and what it adds to the step before.  The last row is a variant
of the full program, tried and not kept: the watched-path lookups behind a
4096-bit filter of the watched hashes (in ebpftop itself it measured 1.01
times the added ns without it, 7 rounds).  Not a test: measurements to
decide by.

    sudo .venv/bin/python -m tests.bench.open_parts [ROUNDS]
"""

from __future__ import annotations

import sys
import tempfile

from tests.bench.hot_path_parts import build_workload, medians_beside, workload_loop

OPENS = 200_000

H = r"""
#include <uapi/linux/ptrace.h>
struct scratch { u64 fn; };
BPF_TASK_STORAGE(ts, struct scratch);
struct open_key { u64 path_hash; u64 cgroup; u32 tgid; u32 flags; char comm[16]; };
struct open_counts { u64 count; u64 errors; };
struct open_path { char path[256]; };
BPF_HASH(file_opens, struct open_key, struct open_counts, 16384);
BPF_HASH(watched, u64, u8, 4096);
struct watch_filter { u64 words[64]; };
BPF_ARRAY(watch_filter, struct watch_filter, 1);
BPF_TABLE("lru_hash", u64, struct open_path, open_paths, 32768);
BPF_PERCPU_ARRAY(pscratch, struct open_path, 1);
static inline u64 arg(struct bpf_raw_tracepoint_args *ctx, u32 off) { u64 v = 0; bpf_probe_read_kernel(&v, 8, (void *)ctx->args[0] + off); return v; }
"""
ENTER = r"""
    if (ctx->args[1] == 257 && (arg(ctx, 136) & 0xffff) == 0x33) {
        struct scratch *s = ts.task_storage_get(bpf_get_current_task_btf(), 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
        if (s) s->fn = arg(ctx, 104);
    }
"""
GET = r"""
    struct scratch *s = ts.task_storage_get(bpf_get_current_task_btf(), 0, 0);
    if (!s || !s->fn) return 0;
    const char *filename = (const char *)s->fn; s->fn = 0;
"""
KEY = r"""
    struct open_key key = {};
    key.tgid = bpf_get_current_pid_tgid() >> 32;
    key.cgroup = bpf_get_current_cgroup_id();
    bpf_get_current_comm(key.comm, sizeof(key.comm));
"""
READ = r"""
    u32 zero = 0; struct open_path *buf = pscratch.lookup(&zero); if (!buf) return 0;
    int n = bpf_probe_read_user_str(buf->path, sizeof(buf->path), filename);
"""
FNV = r"""
    u64 h = 14695981039346656037ULL, dir_h = 0;
#pragma clang loop unroll(disable)
    for (int i = 0; i < 255; i++) { if (i >= n - 1) break; u8 c = buf->path[i & 255]; h ^= c; h *= 1099511628211ULL; if (c == '/') dir_h = h; }
    key.path_hash = h;
"""
WATCH = r"""
    if (watched.lookup(&h) || (dir_h && watched.lookup(&dir_h))) key.flags = 9;
"""
FILTERED_WATCH = r"""
    u32 z0 = 0; struct watch_filter *f = watch_filter.lookup(&z0); if (!f) return 0;
    u32 b1 = h >> 52, b2 = dir_h >> 52;
    if (((f->words[(b1 / 64) & 63] >> (b1 % 64)) & 1) && watched.lookup(&h)) key.flags = 9;
    else if (dir_h && ((f->words[(b2 / 64) & 63] >> (b2 % 64)) & 1) && watched.lookup(&dir_h)) key.flags = 9;
"""
COUNT = r"""
    struct open_counts *c = file_opens.lookup(&key);
    if (!c) { struct open_counts init = {}; c = file_opens.lookup_or_try_init(&key, &init); if (!c) return 0; open_paths.update(&key.path_hash, buf); }
    __sync_fetch_and_add(&c->count, 1);
    if (args->ret < 0) __sync_fetch_and_add(&c->errors, 1);
"""
def prog(enter: str, exit_: str) -> str:
    return H + "RAW_TRACEPOINT_PROBE(sys_enter) {" + enter + " return 0; }\nTRACEPOINT_PROBE(syscalls, sys_exit_openat) {" + exit_ + " return 0; }\n"
STEPS = {
 "floor (empty programs)": prog("", ""),
 "+ path pointer stashed / taken": prog(ENTER, GET),
 "+ pid, cgroup, comm": prog(ENTER, GET + KEY),
 "+ path read": prog(ENTER, GET + KEY + READ),
 "+ FNV-1a hash": prog(ENTER, GET + KEY + READ + FNV),
 "+ two watch lookups": prog(ENTER, GET + KEY + READ + FNV + WATCH),
 "+ count (= ebpftop's open work, before the watch filter)": prog(ENTER, GET + KEY + READ + FNV + WATCH + COUNT),
 "variant: the lookups behind the watch filter": prog(ENTER, GET + KEY + READ + FNV + FILTERED_WATCH + COUNT),
}


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    with tempfile.TemporaryDirectory() as tmp:
        med = medians_beside(STEPS, workload_loop(build_workload(tmp), "open", OPENS), rounds, progress=True)
    full = "+ count (= ebpftop's open work, before the watch filter)"
    print(f"open() loop, {OPENS:,} opens and closes, median of {rounds} interleaved rounds")
    print("| step | ns per open+close | added to the step before | ÷ bare |")
    print("|---|---|---|---|")
    before = med["bare"]
    for name, ns in med.items():
        step_before = med[full] if name.startswith("variant") else before
        print(f"| {name} | {ns:.1f} | {ns - step_before:+.1f} | {ns / med['bare']:.2f}× |")
        if not name.startswith("variant"):
            before = ns


if __name__ == "__main__":
    main()
