"""What the disk and drops sets cost the traced system, beside the floor and
a peer (make bench's "disk" phase; root).

Two workloads (tests/bench/disk_workload.c):
- reads: READS 4 KiB O_DIRECT reads of a loop device made here over a
  64 MiB file (buffered backing: the loop's worker serves them from the
  backing file's page cache, so that the probes' part of a read shows), by
  READERS threads at once so that no CPU idles: elapsed ns / reads, the CPU
  a read costs the machine (one reader alone measured the idle loop
  worker's wake-up instead, 4 to 15 us from run to run, in issue 26's
  prototype).  Each read is one
  request: block_io_start, block_rq_issue, block_rq_complete, and the loop
  worker's work item (workqueue_execute_start).
- flood: 1-byte UDP datagrams to a loopback port that an nft rule drops on
  output (NETFILTER_DROP: one skb:kfree_skb per send), for FLOOD_S seconds:
  sends per second, and ns per send (1e9 / the rate).
The machine is shared and noisy: the reads' figures spread by hundreds of
ns from round to round, more than the floor's programs cost; the bpf_stats
pass below is what tells the monitors' programs apart.

Monitors, each started, the workloads run beside it (once the programs are
attached on every hook it should have), stopped, in a shuffled order per
round: bare; the floor (empty programs on exactly the hooks bpf/disk.c and
bpf/drops.c attach); ebpftop with the disk and drops sets and tcp_traffic
(drops names a dropped packet's connection through tcp_traffic's map), and
without tcp_traffic (its sock:sock_send_length program runs on every send,
UDP ones too, and is no part of what a drop costs); bpftrace running
tests/bench/biolatency_drops.bt (biolatency's histogram and drops by reason:
the stock biolatency tools need kprobes, which this kernel lacks).  The
figures: the median over rounds of (monitor - bare of the same round).

The programs: one more pass with kernel.bpf_stats_enabled=1 (set back to 0
after, whatever happens), each monitor's programs' run time during the
reads (per read) and during the flood (per drop: every one of its programs'
time while the flood ran, over the drops its kfree_skb program saw).
bpf_stats itself adds two clock reads to each run: the floor's empty
programs show how much.

    sudo .venv/bin/python -m tests.bench.disk [--rounds N] [--reads N]
    sudo .venv/bin/python -m tests.bench.disk hold-floor    (what the floor monitor runs)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
EBPFTOP = [sys.executable, "-m", "ebpftop"]
READS = 80_000
READERS = 8
FLOOD_S = 1.0
REPS = 5  # runs of the reads per monitor and round (their median)
BACKING_MB = 64  # disk_workload.c wraps at 64 MiB
NFT_TABLE = "ebpftop_bench_disk"  # inet family; deleted before (a run killed earlier left it) and after
TMP_PREFIX = "ebpftop-bench-disk-"
STATS = Path("/proc/sys/kernel/bpf_stats_enabled")

# The hooks of bpf/disk.c (Linux >= 6.5, block_io_start; EBPFTOP_BLOCK_ON_ISSUE
# is for older kernels) and bpf/drops.c: "tp:" a classic tracepoint, "raw:" a
# raw one.
HOOKS = ("tp:block_io_start", "tp:workqueue_execute_start", "tp:kfree_skb", "raw:block_io_start",
         "raw:block_rq_issue", "raw:block_rq_merge", "raw:block_rq_complete")
PEER_HOOKS = ("tp:block_io_start", "tp:block_io_done", "tp:kfree_skb")

FLOOR = """
/* BCC declares kfree_skb's args from its format file, whose reason is an enum
 * no header here defines (bpf/drops.c) */
enum skb_drop_reason { EBPFTOP_SKB_DROP_REASON_ANY };
TRACEPOINT_PROBE(block, block_io_start) { return 0; }
TRACEPOINT_PROBE(workqueue, workqueue_execute_start) { return 0; }
TRACEPOINT_PROBE(skb, kfree_skb) { return 0; }
RAW_TRACEPOINT_PROBE(block_io_start) { return 0; }
RAW_TRACEPOINT_PROBE(block_rq_issue) { return 0; }
RAW_TRACEPOINT_PROBE(block_rq_merge) { return 0; }
RAW_TRACEPOINT_PROBE(block_rq_complete) { return 0; }
"""

MONITORS = {
    "bare": None,
    "floor": [sys.executable, "-m", "tests.bench.disk", "hold-floor"],
    "ebpftop": [*EBPFTOP, "--json", "--interval", "5", "--probe-sets", "disk,drops,tcp_traffic"],
    "ebpftop disk,drops": [*EBPFTOP, "--json", "--interval", "5", "--probe-sets", "disk,drops"],
    "biolatency_drops.bt": ["bpftrace", str(HERE / "biolatency_drops.bt")],
}
WANTED = {"floor": HOOKS, "ebpftop": HOOKS, "ebpftop disk,drops": HOOKS, "biolatency_drops.bt": PEER_HOOKS}


def bpftool(*args: str) -> list:
    return json.loads(subprocess.run(["bpftool", "-j", *args], check=True, capture_output=True, text=True).stdout or "[]")


def progs() -> dict[int, dict]:
    return {p["id"]: p for p in bpftool("prog", "show")}


def hooks() -> dict[int, set[str]]:
    """prog id -> where it is attached: raw tracepoints' links, classic
    tracepoints' perf events (attached with an ioctl or a perf link)."""
    out: dict[int, set[str]] = {}
    for link in bpftool("link", "list"):
        if link.get("type") == "raw_tracepoint" and "tp_name" in link:
            out.setdefault(link["prog_id"], set()).add(f"raw:{link['tp_name']}")
        elif link.get("type") == "perf_event" and link.get("event_type") == "tracepoint" and "tp_name" in link:
            out.setdefault(link["prog_id"], set()).add(f"tp:{link['tp_name']}")
    for ev in bpftool("perf", "list"):
        if ev.get("fd_type") == "tracepoint":
            out.setdefault(ev["prog_id"], set()).add(f"tp:{ev['tracepoint']}")
    return out


def start(name: str) -> tuple[subprocess.Popen | None, set[int]]:
    """The monitor, once its programs are attached on every hook it should
    have (WANTED) and the set of its programs has held still for half a
    second; and its programs' ids."""
    argv = MONITORS[name]
    if argv is None:
        return None, set()
    before = set(progs())
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO,
                            start_new_session=True)
    t0, last, still_since = time.monotonic(), None, time.monotonic()
    try:
        while time.monotonic() - t0 < 120:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited ({proc.returncode}) before it attached")
            mine = set(progs()) - before
            if mine != last:
                last, still_since = mine, time.monotonic()
            elif mine and time.monotonic() - still_since > 0.5:
                on = set().union(*(h for i, h in hooks().items() if i in mine))
                if set(WANTED[name]) <= on:
                    time.sleep(0.5)
                    return proc, mine
            time.sleep(0.1)
        raise RuntimeError(f"{name} did not attach on {sorted(WANTED[name])}")
    except BaseException:  # a timeout's SIGTERM too: the monitor must not outlive the bench
        stop(proc, set(progs()) - before)
        raise


def stop(proc: subprocess.Popen | None, ids: set[int] = frozenset()) -> None:
    """SIGINT (bpftrace 0.17 sometimes ignores it under load: SIGKILL after
    20 s), then until its programs are gone."""
    if proc is None:
        return
    try:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:  # gone already
        pass
    proc.wait()
    t0 = time.monotonic()
    while ids & set(progs()) and time.monotonic() - t0 < 10:
        time.sleep(0.1)


@contextmanager
def monitor(name: str):
    proc, ids = start(name)
    try:
        yield ids
    finally:
        stop(proc, ids)


def run_reads(binary: Path, dev: str, n: int) -> float:
    """ns per read."""
    out = subprocess.run([str(binary), "reads", dev, str(n), str(READERS)], check=True, capture_output=True, text=True)
    return float(out.stdout)


def run_flood(binary: Path, port: int, seconds: float = FLOOD_S) -> tuple[int, float]:
    """(sends, sends per second)."""
    out = subprocess.run([str(binary), "flood", str(port), str(seconds)], check=True, capture_output=True, text=True)
    sends, ns = out.stdout.split()
    return int(sends), int(sends) / (float(ns) / 1e9)


def nft(*args: str, check: bool = True) -> None:
    subprocess.run(["nft", *args], check=check, capture_output=True)


@contextmanager
def dropped_port():
    """A loopback UDP port whose datagrams nft drops on output."""
    port = 47_000 + random.randrange(1000)
    nft("delete", "table", "inet", NFT_TABLE, check=False)  # a run killed earlier left it
    try:
        nft("add", "table", "inet", NFT_TABLE)
        nft("add", "chain", "inet", NFT_TABLE, "out", "{ type filter hook output priority 0 ; }")
        nft("add", "rule", "inet", NFT_TABLE, "out", "ip", "daddr", "127.0.0.1", "udp", "dport", str(port), "drop")
        yield port
    finally:
        nft("delete", "table", "inet", NFT_TABLE, check=False)


def stale_loops() -> list[str]:
    """Loop devices a run killed earlier left behind (their backing file in
    one of our temp dirs)."""
    out = subprocess.run(["losetup", "-J", "-l"], capture_output=True, text=True).stdout
    devs = json.loads(out)["loopdevices"] if out.strip() else []
    return [d["name"] for d in devs if f"/{TMP_PREFIX}" in (d.get("back-file") or "")]


@contextmanager
def loop_device(tmp: Path):
    """A loop device over a written (not sparse) BACKING_MB file in tmp."""
    for dev in stale_loops():
        subprocess.run(["losetup", "-d", dev], check=False, capture_output=True)
    img = tmp / "backing.img"
    subprocess.run(["dd", "if=/dev/zero", f"of={img}", "bs=1M", f"count={BACKING_MB}", "oflag=direct", "status=none"],
                   check=True)
    dev = subprocess.run(["losetup", "-f", "--show", str(img)], check=True, capture_output=True, text=True).stdout.strip()
    try:
        yield dev
    finally:
        subprocess.run(["losetup", "-d", dev], check=False, capture_output=True)
        img.unlink(missing_ok=True)


def _spread(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def rounds_pass(binary: Path, dev: str, port: int, rounds: int, reads: int) -> dict:
    """Per monitor: ns per read and sends per second (median over rounds,
    min..max), and what it adds over the bare run of the same round: ns per
    read, ns per send, the ratios."""
    per_round: list[dict] = []
    for r in range(rounds):
        order = list(MONITORS)
        random.Random(r).shuffle(order)
        got: dict = {}
        for name in order:
            with monitor(name):
                ns = statistics.median(run_reads(binary, dev, reads) for _ in range(REPS))
                _, rate = run_flood(binary, port)
            got[name] = {"ns_per_read": ns, "sends_per_s": rate}
            print(f"  round {r + 1} {name:>20}: {ns:7.0f} ns/read  {rate / 1e6:5.3f} M sends/s", file=sys.stderr)
        per_round.append(got)
    out: dict = {}
    for name in MONITORS:
        reads_ns = [g[name]["ns_per_read"] for g in per_round]
        rates = [g[name]["sends_per_s"] for g in per_round]
        added_read = [g[name]["ns_per_read"] - g["bare"]["ns_per_read"] for g in per_round]
        added_send = [1e9 / g[name]["sends_per_s"] - 1e9 / g["bare"]["sends_per_s"] for g in per_round]
        out[name] = {
            "ns_per_read": _spread(reads_ns),
            "read_added_ns": statistics.median(added_read),
            "read_added_ns_each_round": [round(x) for x in added_read],
            "read_ratio": statistics.median(g[name]["ns_per_read"] / g["bare"]["ns_per_read"] for g in per_round),
            "sends_per_s": _spread(rates),
            "send_added_ns": statistics.median(added_send),
            "send_added_ns_each_round": [round(x, 1) for x in added_send],
            "send_ratio": statistics.median(g[name]["sends_per_s"] / g["bare"]["sends_per_s"] for g in per_round),
        }
    return out


@contextmanager
def bpf_stats():
    """kernel.bpf_stats_enabled on for the block, 0 after whatever happens."""
    STATS.write_text("1")
    try:
        yield
    finally:
        STATS.write_text("0")


def _delta(a: dict, b: dict, ids: set[int], where: dict[int, set[str]]) -> dict:
    """Per hook of the monitor's programs: runs and run time between two
    snapshots."""
    out: dict = {}
    for i in ids:
        if i not in a or i not in b:
            continue
        hook = "+".join(sorted(where.get(i, ()))) or a[i].get("name", str(i))
        v = out.setdefault(hook, {"runs": 0, "ns": 0})
        v["runs"] += b[i].get("run_cnt", 0) - a[i].get("run_cnt", 0)
        v["ns"] += b[i].get("run_time_ns", 0) - a[i].get("run_time_ns", 0)
    return out


def stats_pass(binary: Path, dev: str, port: int, reads: int) -> dict:
    """Per monitor with programs: their run time per read (all of them,
    during the reads) and per drop (all of them during the flood, over the
    runs of its kfree_skb program), and each hook's share."""
    out = {}
    with bpf_stats():
        for name in MONITORS:
            if MONITORS[name] is None:
                continue
            with monitor(name) as ids:
                where = hooks()
                p0 = progs()
                run_reads(binary, dev, reads)
                p1 = progs()
                sends, _ = run_flood(binary, port)
                p2 = progs()
            disk, flood = _delta(p0, p1, ids, where), _delta(p1, p2, ids, where)
            drops = sum(v["runs"] for h, v in flood.items() if "tp:kfree_skb" in h)
            out[name] = {
                "reads": reads,
                "read_programs": disk,
                "bpf_ns_per_read": sum(v["ns"] for v in disk.values()) / reads,
                "sends": sends,
                "drops": drops,
                "drop_programs": flood,
                "bpf_ns_per_drop": sum(v["ns"] for v in flood.values()) / drops if drops else None,
            }
            print(f"  bpf_stats {name:>20}: {out[name]['bpf_ns_per_read']:5.0f} ns per read, "
                  f"{out[name]['bpf_ns_per_drop'] or 0:5.1f} ns per drop ({drops:,} drops of {sends:,} sends)",
                  file=sys.stderr)
    return out


def leftovers(before: set[int]) -> list[int]:
    """Programs loaded during the run and still there (none should be)."""
    return sorted(set(progs()) - before)


def measure(rounds: int = 3, reads: int = READS) -> dict:
    # a SIGTERM (a timeout) unwinds like an error: the finally blocks detach the
    # loop device, delete the nft table, put bpf_stats back
    old_term = signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    before = set(progs())
    tmp = Path(tempfile.mkdtemp(prefix=TMP_PREFIX))
    try:
        binary = tmp / "disk_workload"
        subprocess.run(["gcc", "-O2", "-pthread", "-o", str(binary), str(HERE / "disk_workload.c")], check=True)
        with loop_device(tmp) as dev, dropped_port() as port:
            run_reads(binary, dev, reads)  # the backing file into the page cache
            res = {"reads": reads, "readers": READERS, "reps": REPS, "flood_s": FLOOD_S, "rounds": rounds,
                   "monitors": rounds_pass(binary, dev, port, rounds, reads),
                   "bpf_stats": stats_pass(binary, dev, port, reads)}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        signal.signal(signal.SIGTERM, old_term)
    left = leftovers(before)
    if left:
        print(f"  programs loaded during the run still there: {left}", file=sys.stderr)
    res["programs_left"] = left
    return res


def _programs(progs_: dict, per: int, top: int = 6) -> str:
    """The hooks' ns per read or drop, the largest first (those under half a
    ns left out); where a hook did not run once per read or drop, its ns a
    run × its runs per read or drop."""
    parts = [(h, v) for h, v in sorted(progs_.items(), key=lambda kv: -kv[1]["ns"]) if v["ns"] / per >= 0.5][:top]
    return ", ".join(f"{h} {v['ns'] / per:,.0f}" + (f" ({v['ns'] / v['runs']:,.0f} × {v['runs'] / per:.2f})"
                                                    if abs(v["runs"] / per - 1) > 0.05 else "")
                     for h, v in parts) or "-"


def markdown(res: dict) -> str:
    lines = [f"{res['reads']:,} 4 KiB O_DIRECT reads of a loop device by {res['readers']} threads (median of "
             f"{res['reps']} runs a round), and a {res['flood_s']:g} s UDP flood dropped by nft; {res['rounds']} "
             "interleaved rounds, medians [min..max]; added = the median of (monitor - bare of the same round).", "",
             "| monitor | ns per read | added ns per read (each round) | × bare | M sends/s | added ns per send "
             "(each round) | × bare |", "|---|---|---|---|---|---|---|"]
    for name, row in res["monitors"].items():
        r, s = row["ns_per_read"], row["sends_per_s"]
        cells = [name, f"{r['median']:,.0f} [{r['min']:,.0f}..{r['max']:,.0f}]"]
        if name == "bare":
            cells += ["-", "1.000"]
        else:
            each = ", ".join(str(x) for x in row["read_added_ns_each_round"])
            cells += [f"{row['read_added_ns']:+,.0f} ({each})", f"{row['read_ratio']:.3f}"]
        cells.append(f"{s['median'] / 1e6:.3f} [{s['min'] / 1e6:.3f}..{s['max'] / 1e6:.3f}]")
        if name == "bare":
            cells += ["-", "1.000"]
        else:
            each = ", ".join(f"{x:.0f}" for x in row["send_added_ns_each_round"])
            cells += [f"{row['send_added_ns']:+.0f} ({each})", f"{row['send_ratio']:.3f}"]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "The programs' own run time (kernel.bpf_stats_enabled, one pass; ns, and where a hook did not run "
                  "once per read or drop: ns a run × runs per read or drop):", "",
              "| monitor | BPF ns per read | by hook | BPF ns per drop | by hook |", "|---|---|---|---|---|"]
    for name, v in res["bpf_stats"].items():
        per_drop = v["bpf_ns_per_drop"]
        lines.append(f"| {name} | {v['bpf_ns_per_read']:,.0f} | {_programs(v['read_programs'], v['reads'])} | "
                     f"{'-' if per_drop is None else f'{per_drop:.1f}'} | "
                     f"{_programs(v['drop_programs'], v['drops']) if v['drops'] else '-'} |")
    return "\n".join(lines) + "\n"


def hold_floor() -> int:
    from bcc import BPF

    b = BPF(text=FLOOR)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if a background shell left it ignored
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
    ap.add_argument("--reads", type=int, default=READS)
    args = ap.parse_args()
    if args.what == "hold-floor":
        return hold_floor()
    res = measure(args.rounds, args.reads)
    print(json.dumps(res, indent=2))
    print(markdown(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
