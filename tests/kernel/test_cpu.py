"""The CPU set against the kernel's own accounting: a process's on-CPU time
against its schedstat, run-queue waits against its run_delay and slices,
threads against their own schedstat, and where a process's time goes
against schedstat and delay accounting.  The figures are read from the
zombie (before it is reaped), when the kernel's accounting is final."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from ebpftop.model import Histogram
from tests.conftest import require_kernel_support

HERE = Path(__file__).parent
POLL_S = 0.2  # polls fall inside slices: the open spans are credited, then settled


@pytest.fixture(scope="session")
def cpu_binary(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cpu") / "cpu_workload"
    subprocess.run(["gcc", "-O1", "-Wall", "-pthread", "-fno-omit-frame-pointer", "-o", str(out), str(HERE / "cpu_workload.c")], check=True)
    return out


@pytest.fixture
def named(cpu_binary, tmp_path):
    """A copy of the workload under a unique name (its comm): name() -> path."""
    def name() -> Path:
        path = tmp_path / ("cpu" + secrets.token_hex(5))
        shutil.copy(cpu_binary, path)
        return path
    return name


def pinned(cpu: int, batch: bool = False):
    def setup():
        os.sched_setaffinity(0, {cpu})
        if batch:  # no wakeup preemption: a woken task waits for the running one's slice
            os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
    return setup


class Kernel:
    """The kernel's final figures of an exited child, read from the zombie."""

    def __init__(self, proc: subprocess.Popen):
        os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
        on, wait, slices = (int(x) for x in Path(f"/proc/{proc.pid}/schedstat").read_text().split())
        self.on_cpu_ns, self.run_delay_ns, self.slices = on, wait, slices
        stat = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        self.blkio_ns = int(stat[42 - 3]) * 1e9 / os.sysconf("SC_CLK_TCK")  # field 42: delayacct_blkio_ticks
        status = dict(line.split(":", 1) for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines())
        self.switches = (int(status["voluntary_ctxt_switches"]), int(status["nonvoluntary_ctxt_switches"]))
        self.out = proc.communicate()[0]  # reaped


def run_polled(source, procs: list, until: list) -> tuple[dict, list]:
    """Poll every POLL_S until every process of `until` has exited; read the
    kernel's figures of each of `procs` as it exits; two polls more (a dead
    thread's last record).  Returns ({pid: Kernel}, the snapshots)."""
    assert set(until) <= set(procs)
    snaps, kernel = [], {}
    while any(p.pid not in kernel for p in until):
        time.sleep(POLL_S)
        snaps.append(source.poll())
        for p in procs:  # exited: a zombie (WNOWAIT leaves it unreaped, its accounting readable)
            if p.pid not in kernel and os.waitid(os.P_PID, p.pid, os.WEXITED | os.WNOWAIT | os.WNOHANG):
                kernel[p.pid] = Kernel(p)
    for _ in range(2):
        time.sleep(POLL_S)
        snaps.append(source.poll())
    return kernel, snaps


def stolen_ns() -> float:
    """Time the hypervisor gave this machine's CPUs to someone else, all CPUs
    together (/proc/stat's steal, in ticks).  With paravirtual steal-time
    accounting (this VM's kernel has it) schedstat leaves the time stolen
    during a task's slice out of its on-CPU time, while ebpftop's slices,
    timed by the tracepoints' clock, include it: on a host that steals, ours
    may be larger by up to what was stolen while the task ran.  (Once in CI
    ours was 107 ms larger over a 3 s run with nothing estimated; the steal
    was not recorded then, the figures printed on failure now include it.)"""
    return int(Path("/proc/stat").read_text().split("\n", 1)[0].split()[8]) * 1e9 / os.sysconf("SC_CLK_TCK")


def stolen_since(before: float) -> float:
    """What was stolen since stolen_ns() said `before`, plus a tick on every
    CPU: the counter's resolution (a tick added to each reading would cancel)."""
    return stolen_ns() - before + os.cpu_count() * 1e9 / os.sysconf("SC_CLK_TCK")


def skipped_of(snaps) -> int:
    """Runs of the CPU set's programs the kernel skipped (its recursion guard), as ebpftop reported them."""
    return sum(s.skipped.get("cpu", 0) for s in snaps)


def threads_of(snaps, pid: int) -> list:
    return [t for s in snaps for t in s.cpu_threads if t.pid == pid]


def waits_of(snaps, pid: int) -> Histogram:
    return Histogram.merge(p.histogram for s in snaps for p in s.runq_latency.by_process if p.pid == pid)


@pytest.fixture
def cpu_source(live):
    require_kernel_support()
    assert live.status["cpu"] == "ok", live.status
    live.poll()
    return live


def test_on_cpu_time_is_the_schedulers_within_two_percent(cpu_source, named):
    """A child burns until its own schedstat says 700 ms; polled every 0.2 s,
    so its slices are open at most polls.  What ebpftop gave by estimate (a
    switch no program saw: some VMs hide threads from BPF) is the only
    uncertainty, and it is bounded: the truth lies between the exact part
    and the whole."""
    steal0 = stolen_ns()
    proc = subprocess.Popen([str(named()), "burn", "700"], stdout=subprocess.PIPE, text=True)
    kernel, snaps = run_polled(cpu_source, [proc], [proc])
    stolen = stolen_since(steal0)
    k = kernel[proc.pid]
    rows = threads_of(snaps, proc.pid)
    ours = sum(t.on_cpu_ns for t in rows)
    estimated = sum(t.estimated_ns for t in rows)
    assert k.on_cpu_ns >= 700e6
    figures = {"ours": ours, "estimated": estimated, "stolen": stolen, "schedstat": k.on_cpu_ns}
    assert ours - estimated - stolen - 0.02 * k.on_cpu_ns <= k.on_cpu_ns <= ours + 0.02 * k.on_cpu_ns, figures
    assert (sum(t.voluntary for t in rows), sum(t.involuntary for t in rows)) == k.switches


def test_run_queue_waits_crowded_and_calm(cpu_source, named):
    """Two hogs and a sleeper (300 x 2 ms) on one CPU, the same sleeper
    alone on the other; the crowded one SCHED_BATCH, which does not preempt
    the hogs (on EEVDF a woken normal task runs at once, and its p50 stays a
    few microseconds beside hogs).  Every wait is charged to the sleeper that
    waited, one per slice it ran, and the crowded one's add up to its
    run_delay."""
    busy = _busiest_cpu()
    crowded_cpu, calm_cpu = busy, 1 - busy  # the calm sleeper on the idler CPU
    hogs = [subprocess.Popen([str(named()), "hog"], preexec_fn=pinned(crowded_cpu)) for _ in range(2)]
    try:
        time.sleep(0.2)
        crowded = subprocess.Popen([str(named()), "sleeper", "300", "2000"], stdout=subprocess.PIPE, text=True,
                                   preexec_fn=pinned(crowded_cpu, batch=True))
        # the calm one a normal task: on the other CPU runs this test's own
        # polling (ebpftop's), which a batch task would wait behind (its p90
        # was once 1.5 ms there); a normal one preempts it at its wakeup
        calm = subprocess.Popen([str(named()), "sleeper", "300", "2000"], stdout=subprocess.PIPE, text=True,
                                preexec_fn=pinned(calm_cpu))
        kernel, snaps = run_polled(cpu_source, [crowded, calm], [crowded, calm])
    finally:
        for h in hogs:
            h.kill()
            h.wait()
    c, q = waits_of(snaps, crowded.pid), waits_of(snaps, calm.pid)
    kc, kq = kernel[crowded.pid], kernel[calm.pid]
    # a wait per slice run, but for the few whose switch-in or wakeup no program saw (counted, not guessed)
    for waits, k in ((c, kc), (q, kq)):
        assert k.slices - 5 <= waits.count <= k.slices, (waits.count, k.slices)
    assert abs(c.sum_ns - kc.run_delay_ns) <= 0.02 * kc.run_delay_ns, (c.sum_ns, kc.run_delay_ns)
    assert q.percentile(50) < 100_000, q.percentile(50)  # an idle CPU takes a woken task in microseconds
    assert c.percentile(90) >= 5 * q.percentile(90), (c.percentile(90), q.percentile(90))
    assert c.percentile(99) > q.percentile(99)


def _busiest_cpu() -> int:
    def idle():
        lines = [line.split() for line in Path("/proc/stat").read_text().splitlines() if line.startswith("cpu")][1:3]
        return [int(f[4]) for f in lines]
    a = idle()
    time.sleep(0.3)
    b = idle()
    return 0 if b[0] - a[0] <= b[1] - a[1] else 1


def test_a_process_with_three_busy_threads_shows_three_thread_rows_that_sum_to_it(cpu_source, named):
    from ebpftop.sets.cpu import by_process

    proc = subprocess.Popen([str(named()), "threads", "3", "300"], stdout=subprocess.PIPE, text=True)
    kernel, snaps = run_polled(cpu_source, [proc], [proc])
    own = {int(tid): ns for tid, ns in json.loads(kernel[proc.pid].out)["threads"].items()}
    ours: dict[int, int] = {}
    for t in threads_of(snaps, proc.pid):
        ours[t.tid] = ours.get(t.tid, 0) + t.on_cpu_ns
    busy = {tid: ns for tid, ns in ours.items() if ns > 100e6}
    assert set(busy) == set(own)  # three busy threads, each its own row
    for tid, ns in own.items():  # each as its own schedstat said at its end (a tick's lag: about 0.3%)
        assert abs(busy[tid] - ns) <= 0.02 * ns, (tid, busy[tid], ns)
    for s in snaps:  # in every interval the process row is its threads' sum
        mine = [t for t in s.cpu_threads if t.pid == proc.pid]
        if mine:
            row = next(p for p in by_process(s.cpu_threads) if p.pid == proc.pid)
            assert row.on_cpu_ns == sum(t.on_cpu_ns for t in mine) and row.threads == len(mine)


def test_where_the_time_goes_matches_schedstat_and_delay_accounting(cpu_source, named, tmp_path):
    """100 ms spinning, 100 ms of O_DIRECT reads of a file on the disk, 100 ms
    asleep, for 3 s: on CPU + runnable within a point of schedstat's (on CPU
    + run delay), blocked within two of delay accounting's block-I/O delay,
    asleep within a millisecond per sleep of the sleeps the workload did.

    On CPU alone is held to a range, not to schedstat's figure: when a wakeup
    preempts (an I/O completion waking the reader on an idle CPU, 14,000
    times in a run here), the scheduler skips updating its run-queue clock
    until the switch (rq_clock_skip_update), so schedstat counts the 8-16 us
    from wakeup to switch-in as on CPU, not as run delay.  The tracepoints
    see both moments: measured with bpftrace here, 144 ms of such waits in a
    3 s run, while run_delay said 6 ms and on CPU was 110 ms above ours."""
    data = tmp_path / "odirect.bin"
    with open(data, "wb") as f:
        for _ in range(64):
            f.write(os.urandom(1 << 20))
        os.fsync(f.fileno())
    delayacct = Path("/proc/sys/kernel/task_delayacct")
    before = delayacct.read_text()
    delayacct.write_text("1")
    try:
        steal0 = stolen_ns()
        proc = subprocess.Popen([str(named()), "states", "3", str(data)], stdout=subprocess.PIPE, text=True)
        kernel, snaps = run_polled(cpu_source, [proc], [proc])
        stolen = stolen_since(steal0)
    finally:
        delayacct.write_text(before)
    k = kernel[proc.pid]
    rows = threads_of(snaps, proc.pid)
    on, runnable, blocked, sleeping, estimated = (sum(getattr(t, f) for t in rows) for f in (
        "on_cpu_ns", "runnable_ns", "blocked_ns", "sleeping_ns", "estimated_ns"))
    wall = on + runnable + blocked + sleeping

    def pct(ns):
        return ns * 100 / wall

    assert 2.9e9 < wall < 4e9, wall
    # What ebpftop itself marks as estimated (slices after a switch no program
    # saw: this VM's agent threads run unseen) is given to the slice's owner;
    # the kernel's figure may differ by that much more, and ours may exceed
    # it by the time the hypervisor stole (see stolen_ns).
    figures = {"on": on, "runnable": runnable, "blocked": blocked, "sleeping": sleeping, "estimated": estimated,
               "stolen": stolen, "schedstat on": k.on_cpu_ns, "run_delay": k.run_delay_ns, "blkio": k.blkio_ns,
               "skipped": skipped_of(snaps), "workload": k.out}
    slack = 1.0 + pct(estimated) + pct(stolen)
    assert -slack < pct(on + runnable) - pct(k.on_cpu_ns + k.run_delay_ns) < slack, figures
    assert pct(on) - slack < pct(k.on_cpu_ns) < pct(on + runnable) + slack, figures
    assert abs(pct(blocked) - pct(k.blkio_ns)) < 2.0, figures  # blkio: in ticks
    sleeps = json.loads(k.out)["sleeps"]
    assert 0 <= sleeping - sleeps * 100e6 < sleeps * 1e6, figures
    assert pct(blocked) > 10 and pct(sleeping) > 25  # the reads did block, the sleeps did sleep
