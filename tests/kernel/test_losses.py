"""What is dropped when a map or ring buffer is full: counted by what was
dropped, never as 1, and never at the cost of what was counted."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ebpftop.sources.live import LiveSource
from tests.conftest import require_kernel_support
from tests.kernel.test_lifecycle import REPO


@pytest.fixture(autouse=True)
def _kernel():
    require_kernel_support()


def _small(panes, sizes) -> LiveSource:
    source = LiveSource(interval_s=1.0, probe_sets=panes, map_sizes=sizes)
    status = source.start()
    assert all(s == "ok" for s in status.values()), status
    source.poll()  # from empty maps
    return source


def test_a_fold_into_a_full_map_counts_every_syscall_it_drops(workload):
    """A process's count is folded under its name when it exits; with the
    folded map full, the whole count was dropped and lost said 1."""
    n, processes = 5000, 64
    source = _small(("syscalls",), {"SYSCALLS_MAP_SIZE": 32})
    try:
        for _ in range(processes):
            workload.run("syscalls", n)
        snap = source.poll()
    finally:
        source.close()
    counted = sum(r.count for r in snap.syscalls if r.comm == workload.comm)
    assert snap.lost["syscalls"] > n  # the map did fill, and a fold lost a whole count
    assert counted + snap.lost["syscalls"] >= processes * n


def test_dropped_opens_never_evict_the_paths_of_counted_rows(workload, tmp_path):
    """Each dropped open used to write its path into the path cache: with
    20,000 distinct paths, 3,705 counted rows showed their path evicted."""
    opens = 3000
    source = _small(("file_opens",), {"FILE_OPENS_MAP_SIZE": 256})
    try:
        workload.run("opensmany", opens, tmp_path / "missing")
        snap = source.poll()
    finally:
        source.close()
    ours = [r for r in snap.file_opens if r.comm == workload.comm]
    assert snap.lost["file_opens"] > 0  # the map did fill
    assert [r.path for r in ours if r.path.startswith("<")] == []
    assert sum(r.count for r in ours) + snap.lost["file_opens"] >= opens


def test_headless_json_reads_the_ring_buffers_between_polls(workload):
    """800 forks at about 400/s: 1,600 process events, more than the ring
    buffer's ~680 in any 4 s interval.  Read once per interval, --json lost
    thousands at 200 forks/s; read every half second, none."""
    forks = 800
    proc = subprocess.Popen([sys.executable, "-m", "ebpftop", "--json", "--interval", "4", "--count", "3",
                             "--panes", "processes"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=REPO)
    try:
        assert json.loads(proc.stdout.readline())["status"]["processes"] == "ok"
        done = workload.run("forkpace", forks, 2000)
        lines = [json.loads(proc.stdout.readline()) for _ in range(2)]
    finally:
        proc.kill()
        proc.wait()
    mine = [e for snap in lines for e in snap["processes"] if e["kind"] == "fork" and e["ppid"] == done["pid"]]
    assert sum(snap["lost"]["processes"] for snap in lines) == 0
    assert len(mine) == forks
