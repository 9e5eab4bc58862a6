"""The CPU profile on the real kernel: a workload built with frame pointers
spins in spin_inner(), called by spin_outer(), for 3 s; the profile must
put spin_inner on top of at least 80% of its samples with spin_outer below
it, count as many samples as 49 Hz gives 3 s of one CPU, and --folded must
write lines flamegraph.pl parses."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

from tests.conftest import require_kernel_support
from tests.kernel.conftest import our_programs
from tests.kernel.test_cpu import cpu_binary, named  # noqa: F401 - the workload's fixtures

SPIN_S = 3.0
FOLDED_LINE = re.compile(r"^[^ ;]+(;[^ ;]+)* [1-9][0-9]*$")


def test_the_spinning_function_is_on_top_and_its_caller_below(live, named):  # noqa: F811
    require_kernel_support()
    assert live.status["profile"] == "ok", live.status
    live.poll()
    proc = subprocess.Popen([str(named()), "spin", str(SPIN_S)], stdout=subprocess.PIPE)
    snaps = []
    while proc.poll() is None:
        time.sleep(0.5)
        snaps.append(live.poll())  # its stacks are named while it lives
    snaps.append(live.poll())
    proc.communicate()
    rows = [r for s in snaps for r in s.profile_stacks if r.pid == proc.pid]
    samples = sum(r.samples for r in rows)
    # 49 Hz on the one CPU it spins on: ~147 samples in 3 s (fewer when another task shares its CPU)
    assert samples >= 0.5 * 49 * SPIN_S, rows
    on_top = [r for r in rows if r.user_stack[-1:] == ("spin_inner",)]
    assert sum(r.samples for r in on_top) >= 0.8 * samples, rows
    assert all(r.user_stack[-2:-1] == ("spin_outer",) for r in on_top), on_top
    assert all("main" in r.user_stack for r in on_top), on_top


def test_folded_output_of_a_live_run_parses_and_nothing_stays_attached(cpu_binary, tmp_path):  # noqa: F811
    """ebpftop as a user runs it: --json with --folded while the workload spins."""
    require_kernel_support()
    d = tmp_path / "out"
    d.mkdir(mode=0o700)
    folded = d / "cpu.folded"
    spinner = tmp_path / "fpspin"
    spinner.symlink_to(cpu_binary)  # its comm: fpspin
    before = sorted(our_programs())  # the shared live source's, if loaded
    proc = subprocess.Popen([str(spinner), "spin", "8"], stdout=subprocess.DEVNULL)
    try:
        out = subprocess.run([sys.executable, "-m", "ebpftop", "--json", "--count", "2", "--interval", "2",
                              "--probe-sets", "profile", "--profile-hz", "97", "--comm", "fpspin",
                              "--folded", str(folded)],
                             capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    finally:
        proc.kill()
        proc.wait()
    assert out.returncode == 0, out.stderr
    lines = folded.read_text().splitlines()
    assert lines and all(FOLDED_LINE.match(line) for line in lines), lines
    spin = [line for line in lines if line.startswith("fpspin;") and ";spin_outer;spin_inner " in line]
    total = sum(int(line.rsplit(" ", 1)[1]) for line in lines)
    assert sum(int(line.rsplit(" ", 1)[1]) for line in spin) >= 0.8 * total
    # the JSON carries the same stacks, and the rate asked for: ~97 a second on its CPU
    intervals = [json.loads(x) for x in out.stdout.splitlines()]
    json_total = sum(r["samples"] for i in intervals for r in i["profile_stacks"])
    assert json_total == total and json_total >= 0.5 * 97 * 2 * len(intervals) / 2
    assert oct(folded.stat().st_mode & 0o777) == "0o600"
    deadline = time.monotonic() + 2.0  # a program is released after an RCU grace period
    while sorted(our_programs()) != before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sorted(our_programs()) == before


def test_without_cap_syslog_a_samples_kernel_part_is_one_frame(cpu_binary, tmp_path):  # noqa: F811
    """Without CAP_SYSLOG (a least-privilege service may drop it) every
    address in /proc/kallsyms reads 0.  BCC then read the whole file again
    for each kernel frame (two intervals took 40 s instead of 7); ebpftop
    sees the zeros and draws the kernel part of a sample as '[kernel]'."""
    require_kernel_support()
    d = tmp_path / "out"
    d.mkdir(mode=0o700)
    folded = d / "cpu.folded"
    looper = subprocess.Popen([sys.executable, "-c", "import ctypes, os\nctypes.CDLL(None).prctl(15, b'nosyslog')\n"
                               "while True: os.getppid()"])
    try:
        out = subprocess.run(["setpriv", "--bounding-set=-all,+bpf,+perfmon", "--inh-caps=-all",
                              sys.executable, "-m", "ebpftop", "--json", "--count", "2", "--interval", "1",
                              "--probe-sets", "profile", "--profile-hz", "97", "--comm", "nosyslog",
                              "--folded", str(folded)],
                             capture_output=True, text=True, timeout=120)
    finally:
        looper.kill()
        looper.wait()
    assert out.returncode == 0, out.stderr
    lines = folded.read_text().splitlines()
    assert lines and all(FOLDED_LINE.match(line) for line in lines), lines
    in_kernel = [line for line in lines if "_[k]" in line]
    assert in_kernel, lines  # a getppid() loop: most samples land in the kernel
    assert all(line.rsplit(" ", 1)[0].endswith(";[kernel]_[k]") and line.count("_[k]") == 1 for line in in_kernel), in_kernel
