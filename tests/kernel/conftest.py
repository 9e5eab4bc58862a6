from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import require_kernel_support

HERE = Path(__file__).parent


@pytest.fixture(scope="session")
def workload_binary(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("build") / "workload"
    subprocess.run(
        ["gcc", "-O2", "-Wall", "-pthread", "-o", str(out), str(HERE / "workload.c")],
        check=True,
    )
    return out


class Workload:
    """Runs the workload under a unique process name (its comm)."""

    def __init__(self, binary: Path, tmp: Path):
        self.comm = "ebt" + secrets.token_hex(5)  # 13 chars: fits in a 15-byte comm
        self.path = tmp / self.comm
        shutil.copy(binary, self.path)

    def run(self, *args) -> dict:
        out = subprocess.run([str(self.path), *map(str, args)], check=True, capture_output=True, text=True)
        return json.loads(out.stdout)


@pytest.fixture
def workload(workload_binary, tmp_path) -> Workload:
    return Workload(workload_binary, tmp_path)


@pytest.fixture(scope="session")
def live():
    """One live source for the kernel tests (a BCC compile takes a second).
    Each test polls once to start from empty maps, runs its workload, and
    polls again."""
    require_kernel_support()
    from ebpftop.sources.live import LiveSource

    source = LiveSource(interval_s=1.0)
    status = source.start()
    assert all(s == "ok" for s in status.values()), status
    yield source
    source.close()


@pytest.fixture
def fresh(live):
    live.poll()  # drop what came before this test
    return live


def poll_after(source, seconds: float = 0.0):
    if seconds:
        time.sleep(seconds)
    return source.poll()


def our_programs() -> list[str]:
    """Names of loaded BPF programs that look like ebpftop's."""
    out = subprocess.run(["bpftool", "prog", "list", "-j"], check=True, capture_output=True, text=True)
    names = [p.get("name", "") for p in json.loads(out.stdout)]
    # bpftool shows at most 15 characters of a name (BPF_OBJ_NAME_LEN)
    ours = ("tracepoint__", "raw_tracepoint_", "sys_enter", "udp_egress", "udp_ingress", "profile_sample",
            "page_fault_even", "block_", "skb__", "tcp_send_reset")
    return [n for n in names if n.startswith(ours)]


@pytest.fixture
def no_programs_before():
    require_kernel_support()
    assert our_programs() == [], "programs of ours are already loaded"
    yield
    # the assertion of the test itself checks after exit

os.environ.setdefault("PYTHONUNBUFFERED", "1")
