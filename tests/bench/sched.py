"""What the CPU set costs the scheduler, beside the floor and the peers, and
what the CPU profile costs (make bench's "sched" phase; root).

Two loops (tests/bench/pingpong.c): the switch loop, two processes pinned
to one CPU passing a byte over two pipes (each hop: a wakeup and a context
switch from one to the other; a round trip is two of each); the wakeup
loop, the same pinned to two CPUs (each hop wakes a task on the other CPU),
with a SCHED_IDLE spinner on each CPU: waking a halted vCPU costs a VM's
host tens of microseconds and would bury the programs' cost, and the woken
task preempts a SCHED_IDLE one at once.

Monitors, each started, the loops run beside it, stopped, in a shuffled
order per round: bare; the floor (empty programs on the CPU set's three
scheduler tracepoints); ebpftop with its CPU set and profile (--probe-sets
cpu,profile); BCC's runqlat-bpfcc; bpftrace's runqlat.bt.  The figure is
the median over rounds of (monitor - bare of the same round).

The profile: the kernel's run-time statistics (kernel.bpf_stats_enabled,
restored after) of ebpftop's profile_sample and of profile-bpfcc's program
at the same 49 Hz while both CPUs are busy: their run time as a share of
one CPU.

    sudo .venv/bin/python -m tests.bench.sched [--rounds N]
    sudo .venv/bin/python -m tests.bench.sched hold-floor    (what the floor monitor runs)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
EBPFTOP = [sys.executable, "-m", "ebpftop"]
PROFILE_HZ = 49
SAMPLERS = ("profile_sample", "do_perf_event")  # ebpftop's sampling program, profile-bpfcc's

FLOOR = """
TRACEPOINT_PROBE(sched, sched_switch) { return 0; }
TRACEPOINT_PROBE(sched, sched_wakeup) { return 0; }
TRACEPOINT_PROBE(sched, sched_wakeup_new) { return 0; }
"""

MONITORS = {
    "bare": None,
    "floor": [sys.executable, "-m", "tests.bench.sched", "hold-floor"],
    "ebpftop": [*EBPFTOP, "--json", "--interval", "5", "--probe-sets", "cpu,profile"],
    "runqlat-bpfcc": ["runqlat-bpfcc", "3600", "1"],
    "runqlat.bt": ["bpftrace", "/usr/sbin/runqlat.bt"],
}
LOOPS = {"switch": (0, 0), "wakeup": (0, 1)}


def prog_ids() -> dict[int, dict]:
    out = subprocess.run(["bpftool", "-j", "prog", "show"], check=True, capture_output=True, text=True).stdout
    return {p["id"]: p for p in json.loads(out)}


def start(argv: list[str] | None) -> subprocess.Popen | None:
    """The monitor, once its programs are loaded and have held still for half a second."""
    if argv is None:
        return None
    before = set(prog_ids())
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO,
                            start_new_session=True)
    t0, last, still_since = time.monotonic(), None, time.monotonic()
    while time.monotonic() - t0 < 60:
        if proc.poll() is not None:
            raise RuntimeError(f"{argv[0]} exited ({proc.returncode}) before it attached")
        now = set(prog_ids()) - before
        if now and now == last:
            if time.monotonic() - still_since > 0.5:
                time.sleep(0.5)
                return proc
        else:
            last, still_since = now, time.monotonic()
        time.sleep(0.05)
    stop(proc)
    raise RuntimeError(f"{argv[0]} did not attach")


def stop(proc: subprocess.Popen | None) -> None:
    if proc is None:
        return
    os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def pingpong(binary: Path, n: int, a: int, b: int) -> float:
    """ns per round trip."""
    spinners = []
    if a != b:
        for cpu in (a, b):
            def idle_on(cpu=cpu):
                os.sched_setaffinity(0, {cpu})
                os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
            spinners.append(subprocess.Popen([str(binary), "spin"], preexec_fn=idle_on))
        time.sleep(0.05)
    try:
        out = subprocess.run([str(binary), "pingpong", str(n), str(a), str(b)], capture_output=True, text=True,
                             check=True)
    finally:
        for s in spinners:
            s.kill()
            s.wait()
    return float(out.stdout.split()[1])


def loops(binary: Path, rounds: int, reps: int) -> dict:
    """Per loop and monitor: ns per round trip (median over rounds of each
    round's median), and the ns added per switch (switch loop) or per hop
    (wakeup loop) over bare, the median of each round's difference."""
    n = {loop: max(20_000, int(0.5e9 / pingpong(binary, 20_000, *cpus))) for loop, cpus in LOOPS.items()}
    per_round: list[dict] = []
    for r in range(rounds):
        order = list(MONITORS)
        random.Random(r).shuffle(order)
        got: dict = {}
        for name in order:
            proc = start(MONITORS[name])
            try:
                got[name] = {loop: statistics.median(pingpong(binary, n[loop], *cpus) for _ in range(reps))
                             for loop, cpus in LOOPS.items()}
            finally:
                stop(proc)
            print(f"  round {r + 1} {name:>14}: " + "  ".join(f"{k} {v:8.0f} ns/round trip" for k, v in got[name].items()),
                  file=sys.stderr)
        per_round.append(got)
    out: dict = {"round_trips": n, "monitors": {}}
    for name in MONITORS:
        row = {}
        for loop in LOOPS:
            row[f"{loop}_ns_per_round_trip"] = statistics.median(g[name][loop] for g in per_round)
            # a round trip is two switches (switch loop) or two hops (wakeup loop)
            row[f"{loop}_added_ns"] = statistics.median((g[name][loop] - g["bare"][loop]) / 2 for g in per_round)
            row[f"{loop}_added_ns_each_round"] = [round((g[name][loop] - g["bare"][loop]) / 2) for g in per_round]
        out["monitors"][name] = row
    return out


class BpfStats:
    """kernel.bpf_stats_enabled on for the block, restored after."""

    PATH = Path("/proc/sys/kernel/bpf_stats_enabled")

    def __enter__(self):
        self.before = self.PATH.read_text().strip()
        self.PATH.write_text("1")

    def __exit__(self, *exc):
        self.PATH.write_text(self.before)


def profile_cost(binary: Path, seconds: float = 20.0) -> dict:
    """Run time of each profiler's sampling program while both CPUs spin,
    as a share of one CPU: ebpftop's (--probe-sets profile) and
    profile-bpfcc's, both at PROFILE_HZ."""
    monitors = {"ebpftop": [*EBPFTOP, "--json", "--interval", "5", "--probe-sets", "profile",
                            "--profile-hz", str(PROFILE_HZ)],
                "profile-bpfcc": ["profile-bpfcc", "-F", str(PROFILE_HZ), str(int(seconds) + 30)]}
    out = {}
    spinners = [subprocess.Popen([str(binary), "spin"]) for _ in range(os.cpu_count() or 1)]
    try:
        with BpfStats():
            for name, argv in monitors.items():
                before = set(prog_ids())
                proc = start(argv)
                try:
                    ids = {i for i, p in prog_ids().items() if i not in before and p.get("name") in SAMPLERS}
                    first = prog_ids()
                    t0 = time.monotonic()
                    time.sleep(seconds)
                    last = prog_ids()
                    elapsed = time.monotonic() - t0
                finally:
                    stop(proc)
                runs = sum(last[i].get("run_cnt", 0) - first[i].get("run_cnt", 0) for i in ids if i in last)
                ns = sum(last[i].get("run_time_ns", 0) - first[i].get("run_time_ns", 0) for i in ids if i in last)
                out[name] = {"samples": runs, "seconds": elapsed, "ns_per_sample": ns / runs if runs else None,
                             "cpu_pct": ns / (elapsed * 1e9) * 100}
                print(f"  profile {name}: {runs} samples in {elapsed:.1f} s, "
                      f"{out[name]['ns_per_sample'] or 0:.0f} ns each, {out[name]['cpu_pct']:.3f}% of a CPU",
                      file=sys.stderr)
    finally:
        for s in spinners:
            s.kill()
            s.wait()
    return {"hz": PROFILE_HZ, "cpus": os.cpu_count(), **out}


def measure(rounds: int = 3, reps: int = 3) -> dict:
    tmp = Path(tempfile.mkdtemp())
    binary = tmp / "pingpong"
    subprocess.run(["gcc", "-O2", "-o", str(binary), str(HERE / "pingpong.c")], check=True)
    return {"loops": loops(binary, rounds, reps), "profile": profile_cost(binary)}


def markdown(res: dict) -> str:
    lp = res["loops"]
    lines = ["| monitor | switch loop ns/round trip | added ns per switch (each round) | wakeup loop ns/round trip "
             "| added ns per hop (each round) |", "|---|---|---|---|---|"]
    for name, row in lp["monitors"].items():
        cells = [name]
        for loop in LOOPS:
            cells.append(f"{row[f'{loop}_ns_per_round_trip']:.0f}")
            each = ", ".join(str(x) for x in row[f"{loop}_added_ns_each_round"])
            cells.append("-" if name == "bare" else f"{row[f'{loop}_added_ns']:.0f} ({each})")
        lines.append("| " + " | ".join(cells) + " |")
    pr = res["profile"]
    parts = [f"{name} {v['ns_per_sample'] or 0:,.0f} ns a sample, {v['cpu_pct']:.3f}% of one CPU"
             for name, v in pr.items() if isinstance(v, dict)]
    lines += ["", f"The CPU profile at {pr['hz']} Hz on each of {pr['cpus']} busy CPUs (the sampling program's run "
                  "time, kernel.bpf_stats_enabled): " + "; ".join(parts) + "."]
    return "\n".join(lines) + "\n"


def hold_floor() -> int:
    from bcc import BPF

    b = BPF(text=FLOOR)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        b.cleanup()
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", nargs="?", choices=("measure", "hold-floor"), default="measure")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    if args.what == "hold-floor":
        return hold_floor()
    res = measure(args.rounds)
    print(json.dumps(res, indent=2))
    print(markdown(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
