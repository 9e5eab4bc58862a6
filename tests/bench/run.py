"""The overhead benchmark (make bench; root).  Not collected by pytest.

1. Each workload alone and beside each monitor (ebpftop headless with every
   probe set on, bpftrace running the course's system_monitor.bt, strace -f
   -c), interleaved over several rounds in one run: median ns per operation
   and the ratio to the bare workload of the same run.  The loops: read,
   getppid, open, tcp (connect+accept+close), udp, and tcpbulk (a loopback
   TCP stream in 64 KiB writes: its ns per write give the throughput).
2. ebpftop's own cost: CPU per minute idle and under the read() loop; each of
   its programs' runs and ns per run during the TCP stream (the Probes
   pane's figures); the time of one poll with 1k/10k/100k map entries,
   start-up time, peak RSS, and the TUI's repaint time for a filter
   keystroke with 10k rows.
3. The scheduler (tests/bench/sched.py): what the CPU set adds to a context
   switch and a wakeup beside its floor, BCC's runqlat and bpftrace's
   runqlat.bt, and the CPU profile's share of a CPU beside profile-bpfcc's.
4. Disk I/O and drops (tests/bench/disk.py): what the disk and drops sets
   add to an O_DIRECT read of a loop device and to a dropped UDP send,
   beside their floor and a bpftrace peer, and their programs' run time per
   read and per drop.

Results: printed, and written to tests/bench/results/latest.md (and .json).
The machine is shared and noisy: only ratios from one run mean anything.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.bench import disk, sched

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
EBPFTOP = [sys.executable, "-m", "ebpftop"]
RESULTS = HERE / "results"

# Base operations per run; strace runs 1/20 as many (it is ~100x slower).
WORKLOADS = {"read": 2_000_000, "getppid": 2_000_000, "open": 200_000, "tcp": 4_000, "udp": 200_000,
             "tcpbulk": 20_000}
BULK_CHUNK = 65536  # bytes per tcpbulk operation (workload.c)
# floor: empty programs on exactly the hooks ebpftop attaches (tests/bench/floor.py)
MONITORS = ("none", "floor", "ebpftop", "bpftrace", "strace")
TICK = os.sysconf("SC_CLK_TCK")


def sh(*cmd, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def prog_ids() -> set[int]:
    return {p["id"] for p in json.loads(sh("bpftool", "prog", "list", "-j").stdout)}


def wait_attached(before: set[int], timeout: float = 60.0, t0: float | None = None) -> float:
    """Seconds (since t0, or the call) until the set of loaded BPF programs
    grew and then held still for half a second."""
    t0 = time.monotonic() if t0 is None else t0
    last, stable_since = None, None
    while time.monotonic() - t0 < timeout:
        now = prog_ids() - before
        if now and now == last:
            if time.monotonic() - stable_since > 0.5:
                return stable_since - t0
        else:
            last, stable_since = now, time.monotonic()
        time.sleep(0.05)
    raise RuntimeError("monitor did not attach")


def start_monitor(name: str) -> subprocess.Popen | None:
    if name in ("none", "strace"):
        return None
    before = prog_ids()
    if name == "floor":
        # it starts ebpftop to learn its hooks, closes it, then attaches empty
        # programs: the programs' count alone cannot tell when it is ready
        proc = subprocess.Popen([sys.executable, "-m", "tests.bench.floor"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, cwd=REPO, text=True)
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError(f"the floor did not attach: {proc.stderr.read()}")
        time.sleep(1.0)
        return proc
    if name == "ebpftop":
        cmd = [*EBPFTOP, "--json", "--interval", "5"]
    else:
        cmd = ["bpftrace", str(HERE / "system_monitor.bt")]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=REPO)
    wait_attached(before)
    time.sleep(1.0)
    return proc


def stop(proc: subprocess.Popen | None) -> None:
    if proc is None:
        return
    proc.send_signal(2)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run_workload(binary: Path, mode: str, n: int, monitor: str) -> float:
    cmd = [str(binary), mode, str(n)]
    if monitor == "strace":
        cmd = ["strace", "-f", "-c", "-o", "/dev/null", *cmd]
    out = sh(*cmd).stdout.split()
    return float(out[2])


def overhead(binary: Path, rounds: int, workloads: dict[str, int]) -> dict:
    samples: dict[tuple[str, str], list[float]] = {}
    for r in range(rounds):
        for monitor in MONITORS:
            proc = start_monitor(monitor)
            try:
                for mode, n in workloads.items():
                    runs = max(1, n // 20) if monitor == "strace" else n
                    ns = run_workload(binary, mode, runs, monitor)
                    samples.setdefault((mode, monitor), []).append(ns)
                    print(f"  round {r + 1} {monitor:>8} {mode:>8}: {ns:10.1f} ns/op", file=sys.stderr)
            finally:
                stop(proc)
    table = {}
    for mode in workloads:
        base = statistics.median(samples[(mode, "none")])
        table[mode] = {
            m: {"ns_per_op": statistics.median(samples[(mode, m)]), "ratio": statistics.median(samples[(mode, m)]) / base}
            for m in MONITORS
        }
    return table


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def own_cost(binary: Path, idle_s: float, busy_s: float) -> dict:
    """ebpftop's CPU (percent of one core) idle and while the read() loop runs."""
    proc = start_monitor("ebpftop")
    try:
        c0, t0 = cpu_seconds(proc.pid), time.monotonic()
        time.sleep(idle_s)
        idle = (cpu_seconds(proc.pid) - c0) / (time.monotonic() - t0) * 100
        c0, t0 = cpu_seconds(proc.pid), time.monotonic()
        loops = 0
        while time.monotonic() - t0 < busy_s:
            run_workload(binary, "read", 2_000_000, "none")
            loops += 1
        busy = (cpu_seconds(proc.pid) - c0) / (time.monotonic() - t0) * 100
        rss = peak_rss_mb(proc.pid)
    finally:
        stop(proc)
    return {"idle_cpu_pct": idle, "idle_s": idle_s, "busy_cpu_pct": busy, "busy_s": busy_s, "peak_rss_mb": rss}


def tcp_probe_cost(binary: Path, chunks: int = 20_000) -> dict:
    """What each of ebpftop's programs costs while a loopback TCP stream runs
    (the kernel's run-time statistics, as the Probes pane shows them): runs
    and ns per run, and all of them per 64 KiB written."""
    before = prog_ids()
    proc = subprocess.Popen([*EBPFTOP, "--json", "--probe-cost", "--interval", "3", "--count", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO, text=True)
    wait_attached(before)
    time.sleep(3.5)  # into the second interval: the first one's statistics started mid-way
    done = 0
    t0 = time.monotonic()
    while time.monotonic() - t0 < 2.0:
        run_workload(binary, "tcpbulk", chunks // 4, "none")
        done += chunks // 4
    out, _err = proc.communicate(timeout=30)
    snap = json.loads(out.splitlines()[-1])
    programs = {p["hook"]: {"runs": p["runs"], "avg_ns": p["avg_ns"], "run_time_ns": p["run_time_ns"]}
                for p in snap["probes"] if p["runs"]}
    return {"chunks_written": done, "interval_s": snap["interval_s"], "programs": programs}


def _alive(pid: int) -> bool:
    """Running, not exited (a zombie waiting for tmux to reap it has exited)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def startup() -> dict:
    """Seconds from exec to the TUI's first frame (seen in tmux) and to every
    probe attached (seen with bpftool); then from q, a second after the panes
    run, to the process gone (every probe detached)."""
    if not shutil.which("tmux"):
        return {}
    before = prog_ids()
    session = f"ebpftop-bench-{os.getpid()}"
    script = Path(tempfile.mkdtemp()) / "run.sh"
    script.write_text(f"#!/bin/sh\ncd {REPO}\nexec {' '.join(EBPFTOP)}\n")
    script.chmod(0o755)
    t0 = time.monotonic()
    sh("tmux", "new-session", "-d", "-s", session, "-x", "120", "-y", "36", str(script))
    first_frame = attached = quit_s = running = None
    try:
        # The screen is watched for both from the start: (until 2026-11-25 the
        # panes were looked at only after wait_attached, which waits for the
        # programs to hold still for half a second, and that wait was counted.)
        while time.monotonic() - t0 < 60 and running is None:
            screen = sh("tmux", "capture-pane", "-p", "-t", session).stdout
            if first_frame is None and " Syscalls " in screen:  # the tab bar: a frame is drawn
                first_frame = time.monotonic() - t0
            if "● running" in screen:
                running = time.monotonic() - t0
            time.sleep(0.02)
        attached = wait_attached(before, t0=t0)
        time.sleep(1.0)
        pid = int(sh("tmux", "list-panes", "-t", session, "-F", "#{pane_pid}").stdout)
        t_quit = time.monotonic()
        sh("tmux", "send-keys", "-t", session, "q")
        while _alive(pid) and time.monotonic() - t_quit < 30:
            time.sleep(0.01)
        quit_s = time.monotonic() - t_quit
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], check=False, capture_output=True)
    return {"first_frame_s": first_frame, "all_attached_s": attached, "panes_running_s": running, "quit_s": quit_s}


def poll_cost(sizes=(1_000, 10_000, 100_000), repeats: int = 3) -> dict:
    """Time of one poll (drain + decode + snapshot) with N synthetic entries,
    spread evenly over the four aggregating maps."""
    from ebpftop.sources.live import LiveSource

    cap = 1 << 17
    source = LiveSource(interval_s=5.0, map_sizes={"SYSCALLS_MAP_SIZE": cap, "READ_LATENCY_MAP_SIZE": cap, "FILE_OPENS_MAP_SIZE": cap,
                                                    "PAGE_FAULTS_MAP_SIZE": cap})
    source.start()
    # the benchmark fills the maps directly (through BCC: compare_revisions runs this on older trees too)
    bpf = source.kernel.bpf if hasattr(source, "kernel") else source._bpf
    out = {}
    try:
        for n in sizes:
            times = []
            for _ in range(repeats):
                source.poll()
                per_map = n // 4
                for name in (b"syscall_counts", b"fault_counts"):
                    t = bpf[name]
                    for i in range(per_map):
                        leaf = t.Leaf(count=i + 1, tgid=1_000_000 + i, comm=f"comm{i % 5000}".encode())
                        t[t.Key(4_000_000 + i)] = leaf
                t = bpf[b"file_opens"]
                paths = bpf[b"open_paths"]
                for i in range(per_map):
                    h = (n << 32) + i  # a new path hash per size: its path is read from the kernel once
                    paths[paths.Key(h)] = paths.Leaf(path=f"/var/lib/bench/{i}/some/longer/path/file-{i}.dat".encode())
                    k = t.Key(path_hash=h, tgid=1_000_000 + i, flags=0, comm=f"comm{i % 5000}".encode())
                    t[k] = t.Leaf(count=i + 1, errors=i % 3)
                t = bpf[b"latency_hist"]
                series = "series" if "series" in dict(t.Key._fields_) else "op"  # named op before 2026-12
                for i in range(per_map):
                    # 8 entries per process: 4 slots of read(), 4 of write() (until 2026-11-25 the
                    # comm changed with every entry, so that each entry was a process of its own)
                    t[t.Key(comm=f"comm{(i // 8) % 5000}".encode(), tgid=1_000_000 + i // 8, slot=i % 8 + 8,
                            **{series: i % 2})] = \
                        t.Leaf(count=i + 1, sum_ns=(i + 1) * 1000)
                t0 = time.perf_counter()
                snap = source.poll()
                times.append(time.perf_counter() - t0)
                assert sum(r.count for r in snap.file_opens) >= sum(range(1, per_map + 1))
            out[n] = {"median_ms": statistics.median(times) * 1e3, "max_ms": max(times) * 1e3}
            print(f"  poll with {n} entries: {out[n]['median_ms']:.1f} ms", file=sys.stderr)
    finally:
        source.close()
    return out


def udp_poll_cost(flows: int = 10_000, repeats: int = 3) -> dict:
    """Time of one poll of the UDP probes holding N flows made by real
    datagrams (half IPv4, half IPv6, each to its own port on loopback)."""
    import socket

    from ebpftop.sources.live import LiveSource

    source = LiveSource(interval_s=5.0, probe_sets=("udp",))
    source.start()
    times = []
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as v4, \
                socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as v6:
            for _ in range(repeats):
                source.poll()
                for port in range(20_000, 20_000 + flows // 2):
                    v4.sendto(b"x", ("127.0.0.1", port))
                    v6.sendto(b"x", ("::1", port))
                t0 = time.perf_counter()
                snap = source.poll()
                times.append(time.perf_counter() - t0)
                assert len(snap.udp) >= flows, len(snap.udp)
    finally:
        source.close()
    out = {"flows": flows, "median_ms": statistics.median(times) * 1e3, "max_ms": max(times) * 1e3}
    print(f"  poll with {flows} UDP flows: {out['median_ms']:.1f} ms", file=sys.stderr)
    return out


def ui_keystroke(rows: int = 10_000, keys: str = "comm1") -> dict:
    """Median time for one filter keystroke to repaint, with ``rows`` rows."""
    from ebpftop import snapshots
    from ebpftop.app import EbpftopApp
    from ebpftop.sets.file_opens import FileOpenRow
    from ebpftop.sets.syscalls import SyscallRow
    from tests.ui.harness import ListSource

    snap = snapshots.new(
        time.time(),
        5.0,
        syscalls=tuple(SyscallRow(f"comm{i}", 1000 + i, ((i + 1, 1000 + i),)) for i in range(rows)),
        file_opens=tuple(FileOpenRow(f"comm{i}", i + 1, f"/srv/data/{i}.dat", 1 + i % 7, i % 2) for i in range(rows)),
        status={p: "ok" for p in ("tcp", "syscalls", "read_latency", "file_opens", "page_faults")},
    )

    handler_times: list[float] = []

    async def measure() -> list[float]:
        app = EbpftopApp(ListSource([snap]), auto_poll=False)
        redraw = app.redraw

        def timed_redraw():
            t0 = time.perf_counter()
            redraw()
            handler_times.append(time.perf_counter() - t0)

        app.redraw = timed_redraw
        times = []
        async with app.run_test(size=(120, 36)) as pilot:
            while not app.started:
                await pilot.pause(0.01)
            t0 = time.perf_counter()
            app.accept_snapshot(app.source.poll())
            await pilot.pause()
            first = time.perf_counter() - t0
            await pilot.press("2", "slash")
            for k in keys:
                t0 = time.perf_counter()
                await pilot.press(k)
                await pilot.pause()
                times.append(time.perf_counter() - t0)
            for _ in keys:
                t0 = time.perf_counter()
                await pilot.press("backspace")
                await pilot.pause()
                times.append(time.perf_counter() - t0)
        return [first, *times]

    first, *times = asyncio.run(measure())
    keystrokes = handler_times[-len(times):]
    # Two figures: ebpftop's own work for a keystroke (filter, sort, table
    # update), and the whole round trip through Textual's Pilot, which adds
    # its own waiting (it is ~130 ms even with 100 rows).
    return {"rows": rows, "first_draw_ms": first * 1e3,
            "keystroke_redraw_median_ms": statistics.median(keystrokes) * 1e3,
            "keystroke_redraw_max_ms": max(keystrokes) * 1e3,
            "keystroke_pilot_median_ms": statistics.median(times) * 1e3}


def machine() -> str:
    model = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                  if ln.startswith("model name")), platform.machine())
    return f"Linux {platform.release()}, {os.cpu_count()} vCPUs ({model}), Python {platform.python_version()}"


def markdown(res: dict) -> str:
    lines = [f"Machine: {res['machine']}; {res['date']}; {res['rounds']} interleaved rounds, medians.", ""]
    lines.append("| workload | bare ns/op | floor (empty programs, same hooks) | ebpftop | ebpftop's added ns ÷ the floor's "
                 "| bpftrace system_monitor.bt | strace -f -c |")
    lines.append("|---|---|---|---|---|---|---|")
    for mode, row in res["overhead"].items():
        cells = [f"{row['none']['ns_per_op']:.0f}"]
        for m in ("floor", "ebpftop"):
            cells.append(f"{row[m]['ns_per_op']:.0f} ({row[m]['ratio']:.2f}×)" if m in row else "-")
        bare = row["none"]["ns_per_op"]
        floor_added = row["floor"]["ns_per_op"] - bare if "floor" in row else 0
        cells.append(f"{(row['ebpftop']['ns_per_op'] - bare) / floor_added:.2f}" if floor_added > 0 else "-")
        for m in ("bpftrace", "strace"):
            cells.append(f"{row[m]['ns_per_op']:.0f} ({row[m]['ratio']:.2f}×)")
        lines.append(f"| {mode} | " + " | ".join(cells) + " |")
    bulk = res["overhead"].get("tcpbulk")
    if bulk:
        lines += ["", "TCP stream over loopback (tcpbulk, 64 KiB writes): " + ", ".join(
            f"{m} {BULK_CHUNK / bulk[m]['ns_per_op'] * 1e9 / 2**20:,.0f} MiB/s"
            for m in ("none", "floor", "ebpftop", "bpftrace", "strace")).replace("none", "bare", 1) + "."]
    tc = res.get("tcp_probe_cost")
    if tc:
        progs = sorted(tc["programs"].items(), key=lambda kv: -kv[1]["run_time_ns"])
        lines += ["", "ebpftop's programs during the stream (run-time statistics, one interval): " + "; ".join(
            f"{hook} {v['runs']:,} runs, {v['avg_ns']:.0f} ns each" for hook, v in progs[:6]) + "."]
    oc = res.get("own_cost")
    if oc:
        lines += ["", f"ebpftop's own CPU: {oc['idle_cpu_pct']:.2f}% of one core idle ({oc['idle_s']:.0f} s), "
                      f"{oc['busy_cpu_pct']:.2f}% while the read() loop runs flat out ({oc['busy_s']:.0f} s); "
                      f"peak RSS {oc['peak_rss_mb']:.0f} MB."]
    pc = res.get("poll")
    if pc:
        lines += ["", "One poll (drain + decode + snapshot): " + ", ".join(
            f"{int(n):,} entries {v['median_ms']:.1f} ms" for n, v in pc.items()) + "."]
    up = res.get("udp_poll")
    if up:
        lines[-1] += f" With {up['flows']:,} UDP flows (real datagrams): {up['median_ms']:.1f} ms."
    st = res.get("startup")
    if st:
        lines += ["", f"Start-up (TUI in tmux): first frame {st['first_frame_s']:.2f} s, every probe attached "
                      f"{st['all_attached_s']:.2f} s, panes say running {st['panes_running_s']:.2f} s"
                      + (f"; q to exited, every probe detached, {st['quit_s']:.2f} s." if "quit_s" in st else ".")]
    ui = res.get("ui")
    if ui:
        lines += ["", f"TUI with {ui['rows']:,} rows: first draw {ui['first_draw_ms']:.0f} ms; a filter keystroke "
                      f"refilters, re-sorts and updates the table in {ui['keystroke_redraw_median_ms']:.0f} ms "
                      f"(median; max {ui['keystroke_redraw_max_ms']:.0f} ms); through Textual's Pilot, press to "
                      f"settled screen, {ui['keystroke_pilot_median_ms']:.0f} ms."]
    if res.get("sched"):
        lines += ["", "The scheduler (tests/bench/sched.py): a switch loop and a wakeup loop beside the CPU set, "
                      "its floor and the peers.", "", sched.markdown(res["sched"]).rstrip("\n")]
    if res.get("disk"):
        lines += ["", "Disk I/O and drops (tests/bench/disk.py): O_DIRECT reads of a loop device and a UDP flood "
                      "dropped by nft beside the disk and drops sets, their floor and a bpftrace peer.", "",
                  disk.markdown(res["disk"]).rstrip("\n")]
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--idle", type=float, default=60.0, help="seconds of idle CPU measurement")
    ap.add_argument("--busy", type=float, default=30.0, help="seconds of CPU measurement under the read() loop")
    ap.add_argument("--quick", action="store_true", help="one round, short measurements (a smoke run)")
    ap.add_argument("--only", choices=("overhead", "own", "tcp", "poll", "startup", "ui", "sched", "disk"), action="append")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("bench: needs root", file=sys.stderr)
        return 2
    workloads = dict(WORKLOADS)
    if args.quick:
        args.rounds, args.idle, args.busy = 1, 10.0, 5.0
        workloads = {k: v // 4 for k, v in workloads.items()}
    only = set(args.only or ("overhead", "own", "tcp", "poll", "startup", "ui", "sched", "disk"))
    tmp = Path(tempfile.mkdtemp())
    binary = tmp / "workload"
    sh("gcc", "-O2", "-o", str(binary), str(HERE / "workload.c"))
    RESULTS.mkdir(exist_ok=True)
    latest = RESULTS / "latest.json"
    # --only re-measures some parts and keeps the others of the last run
    res = json.loads(latest.read_text()) if args.only and latest.exists() else {}
    res.update({"machine": machine(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())})
    phases = (
        ("overhead", "overhead", lambda: overhead(binary, args.rounds, workloads)),
        ("own", "own_cost", lambda: own_cost(binary, args.idle, args.busy)),
        ("tcp", "tcp_probe_cost", lambda: tcp_probe_cost(binary)),
        ("poll", "poll", poll_cost),
        ("poll", "udp_poll", udp_poll_cost),
        ("startup", "startup", startup),
        ("ui", "ui", ui_keystroke),
        ("sched", "sched", lambda: sched.measure(args.rounds)),
        ("disk", "disk", lambda: disk.measure(args.rounds, disk.READS // 4 if args.quick else disk.READS)),
    )
    for phase, key, measure in phases:
        if phase not in only:
            continue
        print(f"{phase}:", file=sys.stderr)
        res[key] = measure()
        if phase == "overhead":
            res["rounds"] = args.rounds
        latest.write_text(json.dumps(res, indent=2) + "\n")  # each phase kept as soon as it is measured
    shutil.rmtree(tmp)
    if "overhead" in res:
        (RESULTS / "latest.md").write_text(markdown(res))
    print(json.dumps(res, indent=2))
    if "overhead" in res:
        print(markdown(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
