"""What the TUI's kept snapshots (rewind) cost in memory: builds busy
intervals' snapshots with the same aggregate functions as a live poll, and
prints the bytes per kept row (tracemalloc), then the process's RSS after an
hour of such intervals (720 at 5 s) went through the TUI's History, which
the row budget (ebpftop/history.py: MAX_KEPT_ROWS) holds.

    .venv/bin/python -m tests.bench.history_memory [--intervals N] [--hour-intervals N]

With --fork-storm N: N intervals of a fork storm instead (one syscall row of
10,000 pids an interval, as `while :; do /bin/true; done` makes), and the RSS
they leave kept."""

from __future__ import annotations

import argparse
import gc
import tracemalloc

from ebpftop import aggregate, snapshots
from ebpftop.history import MAX_KEPT_ROWS, History
from ebpftop.sets import file_opens, page_faults, syscalls


def busy_interval(s: int, processes: int = 2000):
    """An interval of a busy host: 2,000 processes' syscalls and page faults
    (500 names, 7 cgroups), 2,000 (process, path) open rows with distinct
    paths, 1,000 processes' read() latency over 4 buckets."""
    pid0 = 10_000 + s * 3_000  # processes come and go
    procs = range(processes)
    return snapshots.new(
        1e9 + 5 * s, 5.0,
        syscalls=syscalls.syscall_rows([(f"comm{i % 500}", pid0 + i, 100 + i, 1 + i % 7) for i in procs]),
        page_faults=page_faults.page_fault_rows([(f"comm{i % 500}", pid0 + i, 5 + i, 1 + i % 7) for i in procs]),
        file_opens=file_opens.file_open_rows([(f"comm{i % 500}", pid0 + i, f"/var/lib/app/{s}/{i}/file.dat", 0, 3, 0,
                                              1 + i % 7) for i in procs]),
        read_latency=aggregate.latency([(f"comm{i % 500}", pid0 + i, 8 + j, 5, 500, 1 + i % 7)
                                        for i in range(processes // 2) for j in range(4)]),
    )


def fork_storm_interval(s: int, pids: int = 10_000):
    """A second of a fork storm: 10,000 short-lived processes under one
    name (one syscall row, its pids), and 20 steady ones."""
    pid0 = 100_000 + s * pids
    rows = [("true", pid0 + i, 40, 3) for i in range(pids)] + [(f"daemon{i}", 50 + i, 1000, 1) for i in range(20)]
    return snapshots.new(1e9 + s, 1.0, syscalls=syscalls.syscall_rows(rows))


def fork_storm(intervals: int) -> None:
    gc.collect()
    rss0 = rss_mib()
    h = History()
    for s in range(intervals):
        h.add(fork_storm_interval(s))
    gc.collect()
    print(f"{intervals} fork-storm intervals through the History: {len(h.snapshots)} kept ({h.kept_rows:,} rows "
          f"counted), RSS {rss0:.0f} MiB before, {rss_mib():.0f} MiB after")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--intervals", type=int, default=20)
    ap.add_argument("--hour-intervals", type=int, default=720)
    ap.add_argument("--fork-storm", type=int, metavar="N")
    args = ap.parse_args()
    if args.fork_storm:
        fork_storm(args.fork_storm)
        return 0
    tracemalloc.start()
    h = History()
    gc.collect()
    base = tracemalloc.get_traced_memory()[0]
    for s in range(args.intervals):
        h.add(busy_interval(s))
    gc.collect()
    used = tracemalloc.get_traced_memory()[0] - base
    per_row = used / h.kept_rows
    print(f"{args.intervals} busy intervals kept: {h.kept_rows:,} rows, {used / 2**20:.1f} MiB, "
          f"{per_row:.0f} bytes a row; the budget of {MAX_KEPT_ROWS:,} rows is about "
          f"{MAX_KEPT_ROWS * per_row / 2**20:.0f} MiB, {MAX_KEPT_ROWS // (h.kept_rows // args.intervals)} such intervals")
    tracemalloc.stop()
    del h
    gc.collect()
    rss0 = rss_mib()
    h = History()
    peak = rss0
    for s in range(args.hour_intervals):
        h.add(busy_interval(s))
        if s % 20 == 0:
            peak = max(peak, rss_mib())
    gc.collect()
    print(f"an hour of busy intervals ({args.hour_intervals} at 5 s) through the History: {len(h.snapshots)} kept "
          f"({h.kept_rows:,} rows), RSS {rss0:.0f} MiB before, {rss_mib():.0f} MiB after (peak seen {peak:.0f} MiB)")
    return 0


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


if __name__ == "__main__":
    raise SystemExit(main())
