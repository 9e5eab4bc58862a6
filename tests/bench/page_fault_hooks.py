"""Which page-fault hook costs less where both exist (x86): the tracepoint
exceptions:page_fault_user, or the perf software event page-faults that
ebpftop falls back to elsewhere.  Interleaved runs of K fresh-page touches,
bare and with only the page-fault probe set attached each way; prints the
medians and the added ns per fault.

    sudo .venv/bin/python -m tests.bench.page_fault_hooks [REPEATS]
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from ebpftop.capabilities import FORCE_ENV
from ebpftop.sources.live import LiveSource

PAGES = 200_000
WORKLOAD = Path(__file__).resolve().parents[1] / "kernel" / "workload.c"


def main() -> None:
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 12
    with tempfile.TemporaryDirectory() as tmp:
        binary = os.path.join(tmp, "workload")
        subprocess.run(["gcc", "-O2", "-pthread", "-o", binary, str(WORKLOAD)], check=True)

        def ns_per_fault() -> float:
            """The child's CPU time (user + system) per fault: less noisy
            than wall time on a shared machine, and the hooks run in it."""
            child = subprocess.Popen([binary, "faults", str(PAGES)], stdout=subprocess.DEVNULL)
            _, status, usage = os.wait4(child.pid, 0)
            child.returncode = os.waitstatus_to_exitcode(status)
            assert child.returncode == 0
            return (usage.ru_utime + usage.ru_stime) / PAGES * 1e9

        results: dict[str, list[float]] = {"bare": [], "tracepoint": [], "perf event": []}
        modes = list(results)
        for i in range(repeats):
            # the order turns each round: a run right after a probe set was
            # closed measured slower here, whichever hook it had
            for mode in modes[i % 3:] + modes[:i % 3]:
                runs = results[mode]
                if mode == "bare":
                    runs.append(ns_per_fault())
                    continue
                os.environ[FORCE_ENV] = "page_fault_tracepoint" if mode == "perf event" else ""
                source = LiveSource(interval_s=1, probe_sets=("page_faults",))
                try:
                    assert source.start()["page_faults"] == "ok"
                    runs.append(ns_per_fault())
                finally:
                    source.close()
    bare = statistics.median(results["bare"])
    print(f"{PAGES} fresh pages per run, median of {repeats} interleaved runs, the order turning (the child's CPU time: mmap, touches, exit)")
    for mode, runs in results.items():
        added = "" if mode == "bare" else f"  added {statistics.median(runs) - bare:+.0f} ns per fault"
        print(f"  {mode:11s} {statistics.median(runs):6.0f} ns per fault{added}")


if __name__ == "__main__":
    main()
