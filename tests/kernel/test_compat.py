"""The compatibility matrix, on the real kernel: the exact-count tests of
test_collection.py run again

- with each fallback forced (EBPFTOP_FORCE_FALLBACK, see ebpftop/capabilities.py),
  as on a kernel or BCC that lacks the feature, and
- inside the userspaces of other Debian releases (their own Python and BCC),
  built once by tests/compat/userspace.sh (make userspaces) and entered
  with chroot.

A cell that cannot run fails; it never skips."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import require_kernel_support

REPO = Path(__file__).resolve().parents[2]
USERSPACE_SH = REPO / "tests" / "compat" / "userspace.sh"
USERSPACE_CACHE = Path(os.environ.get("EBPFTOP_USERSPACE_CACHE", "/var/cache/ebpftop/userspace"))
# release -> what it stands for (its BCC and Python)
USERSPACES = {
    "bullseye": "Debian 11: BCC 0.18, Python 3.9",
    "trixie": "Debian 13: BCC 0.31, Python 3.13",
}
FORCED = ("task_storage", "sock_recv_length", "page_fault_tracepoint", "task_rename_pid", "raw_syscall_args", "all")
# test_tcp_traffic.py without its retransmit test: that one drops segments with
# the host's nft, which the Debian userspaces do not have (it runs on the host);
# test_containers.py without its Docker tests (the daemon is the host's): the
# hand-made cgroups named and a thread's move between cgroups.
# test_disk_oom_drops.py: its disk test (O_DIRECT to a loop device); the OOM and drop tests need
# the host's cgroup v1 memory controller and nft.
EXACT_TESTS = ("tests/kernel/test_collection.py tests/kernel/test_tcp_traffic.py tests/kernel/test_containers.py "
               "tests/kernel/test_disk_oom_drops.py -k 'not retransmits and not docker and not oom_kill "
               "and not drops_carry'")


def _outcome(proc: subprocess.CompletedProcess) -> str:
    return "\n".join((proc.stdout + proc.stderr).splitlines()[-60:])


@pytest.fixture(autouse=True)
def _kernel():
    require_kernel_support()


@pytest.mark.parametrize("fallback", FORCED)
def test_exact_counts_with_a_fallback_forced(fallback):
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", *shlex.split(EXACT_TESTS), "-q", "-p", "no:cacheprovider", "-W",
         "ignore::pytest.PytestUnraisableExceptionWarning"],
        cwd=REPO, capture_output=True, text=True, timeout=900,
        env={**os.environ, "EBPFTOP_FORCE_FALLBACK": fallback},
    )
    assert proc.returncode == 0, _outcome(proc)
    assert " passed" in proc.stdout and " skipped" not in proc.stdout, _outcome(proc)


@pytest.mark.parametrize("release, fallback", [
    ("bullseye", ""),  # picks the task-storage fallback by itself
    ("trixie", ""),
    # BCC 0.18 with every fallback: Ubuntu 22.04 on arm64 (perf event, no sock_recv_length)
    ("bullseye", "all"),
])
def test_exact_counts_in_another_debian_userspace(release, fallback):
    where = USERSPACE_CACHE / release
    build = subprocess.run(["bash", str(USERSPACE_SH), "build", release, str(where)],
                           capture_output=True, text=True, timeout=1800)
    assert build.returncode == 0, f"cannot build the {USERSPACES[release]} userspace:\n{_outcome(build)}"
    proc = subprocess.run(
        ["bash", str(USERSPACE_SH), "run", str(where), str(REPO),
         "sh", "-c", f"cd /src && exec python -m pytest {EXACT_TESTS} -q -p no:cacheprovider"],
        capture_output=True, text=True, timeout=900,
        env={**os.environ, "EBPFTOP_FORCE_FALLBACK": fallback},
    )
    assert proc.returncode == 0, f"{USERSPACES[release]}, forced {fallback or 'nothing'}:\n{_outcome(proc)}"
    assert " passed" in proc.stdout and " skipped" not in proc.stdout, _outcome(proc)
