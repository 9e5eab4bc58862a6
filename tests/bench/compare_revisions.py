"""The syscall loops of the bench with ebpftop from two revisions, in one
run, interleaved (this machine's speed drifts between runs: only ratios
measured together mean anything).

    sudo .venv/bin/python -m tests.bench.compare_revisions REV [--rounds N]

REV is checked out into a temporary git worktree; the working tree is the
other side.  Prints ns per operation, median over rounds, for bare, REV and
the working tree, and each monitor's added ns as a ratio of REV's.

    --parts poll,startup    also (or, without "loops", only) the time of one
                            poll of 100,000 entries and the TUI's start-up,
                            each side measured by this tree's bench code
                            (copied into REV's worktree), alternating."""

from __future__ import annotations

import argparse
import json
import shutil
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
    ap.add_argument("--parts", default="loops", help="loops, poll, startup (comma-separated)")
    args = ap.parse_args()
    parts = set(args.parts.split(","))
    loops = {m: WORKLOADS[m] for m in args.loops.split(",")} if "loops" in parts else {}
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / "old"
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(old), args.rev],
                       check=True, capture_output=True)
        try:
            binary = Path(tmp) / "workload"
            subprocess.run(["gcc", "-O2", "-o", str(binary), str(HERE / "workload.c")], check=True)
            shutil.copy(HERE / "run.py", old / "tests" / "bench" / "run.py")  # the same measurement on both sides
            sides = {"bare": None, args.rev[:10]: old, "this tree": REPO}
            samples: dict = {}
            for r in range(args.rounds if parts & {"poll", "startup"} else 0):
                for name, tree in list(sides.items())[1:][::1 if r % 2 == 0 else -1]:
                    for part in sorted(parts & {"poll", "startup"}):
                        fn = "poll_cost(sizes=(100_000,))" if part == "poll" else "startup()"
                        out = subprocess.run([sys.executable, "-c", f"import json; from tests.bench import run; "
                                              f"print(json.dumps(run.{fn}))"], cwd=tree, check=True,
                                             capture_output=True, text=True)
                        res = json.loads(out.stdout.strip().splitlines()[-1])
                        figure = res["100000"]["median_ms"] if part == "poll" else res["panes_running_s"]
                        samples.setdefault((part, name), []).append(figure)
                        print(f"  round {r + 1} {name:>12} {part:>8}: {figure:.3f}", file=sys.stderr)
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
    for part, unit in (("poll", "ms, one poll of 100,000 entries"), ("startup", "s, exec to panes running")):
        if part in parts:
            old_med = statistics.median(samples[(part, args.rev[:10])])
            new_med = statistics.median(samples[(part, "this tree")])
            print(f"{part}: {args.rev[:10]} {old_med:.3f}, this tree {new_med:.3f} ({unit}; median of "
                  f"{args.rounds}, alternating)")
    if not loops:
        return 0
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
