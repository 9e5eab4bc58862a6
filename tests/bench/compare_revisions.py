"""The syscall loops of the bench with ebpftop from two revisions, in one
run, interleaved (this machine's speed drifts between runs: only ratios
measured together mean anything).

    sudo .venv/bin/python -m tests.bench.compare_revisions REV [--rounds N]

REV is checked out into a temporary git worktree; the working tree is the
other side.  Prints ns per operation, median over rounds, for bare, REV and
the working tree, and each monitor's added ns as a ratio of REV's."""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.bench.run import HERE, REPO, WORKLOADS, prog_ids, run_workload, stop, wait_attached


def start_ebpftop(tree: Path, extra: list[str]) -> subprocess.Popen:
    before = prog_ids()
    proc = subprocess.Popen([sys.executable, "-m", "ebpftop", "--json", "--interval", "5", *extra], cwd=tree,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_attached(before)
    return proc


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("rev")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--loops", default="read,getppid,open,tcp,udp")
    ap.add_argument("--this-panes", metavar="LIST", help="--panes for this tree's ebpftop (default: all)")
    args = ap.parse_args()
    loops = {m: WORKLOADS[m] for m in args.loops.split(",")}
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / "old"
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(old), args.rev],
                       check=True, capture_output=True)
        try:
            binary = Path(tmp) / "workload"
            subprocess.run(["gcc", "-O2", "-o", str(binary), str(HERE / "workload.c")], check=True)
            sides = {"bare": None, args.rev[:10]: old, "this tree": REPO}
            samples: dict = {}
            for r in range(args.rounds):
                order = list(sides.items())
                order = order[r % 3:] + order[:r % 3]  # turn the order each round
                for name, tree in order:
                    extra = ["--panes", args.this_panes] if tree == REPO and args.this_panes else []
                    proc = start_ebpftop(tree, extra) if tree else None
                    try:
                        for mode, n in loops.items():
                            ns = run_workload(binary, mode, n, "none")
                            samples.setdefault((mode, name), []).append(ns)
                            print(f"  round {r + 1} {name:>12} {mode:>8}: {ns:9.1f} ns/op", file=sys.stderr)
                    finally:
                        stop(proc)
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(old)], capture_output=True)
    print(f"| loop | bare ns | {args.rev[:10]} ns | this tree ns | added ns, this tree / {args.rev[:10]} |")
    print("|---|---|---|---|---|")
    for mode in loops:
        med = {name: statistics.median(samples[(mode, name)]) for name in sides}
        bare = med["bare"]
        old_added, new_added = med[args.rev[:10]] - bare, med["this tree"] - bare
        ratio = new_added / old_added if old_added > 0 else float("nan")
        print(f"| {mode} | {bare:.0f} | {med[args.rev[:10]]:.0f} | {med['this tree']:.0f} | {ratio:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
