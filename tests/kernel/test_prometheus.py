"""End to end: a real Prometheus server (Debian's package, on loopback)
scrapes ebpftop --prometheus, and its query API shows a known workload."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from ebpftop import sets
from tests.conftest import require_kernel_support

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return r.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.fixture
def exporter_port():
    require_kernel_support()
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "ebpftop", "--prometheus", f"127.0.0.1:{port}", "--interval", "1"],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        # the HTTP server answers before the probes are attached: wait for them
        deadline = time.monotonic() + 60
        while 'ebpftop_probe_up{pane="file_opens"} 1.0' not in wait_http(f"http://127.0.0.1:{port}/metrics"):
            assert time.monotonic() < deadline, "the probes never came up"
            time.sleep(0.2)
        yield port
    finally:
        proc.terminate()
        try:
            _, err = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()  # never left running with its probes attached (it once was, for an hour)
            _, err = proc.communicate()
            pytest.fail(f"the exporter did not exit within 20 s of SIGTERM:\n{err}")
        assert "Traceback" not in err and "Exception ignored" not in err, err


def prometheus_binary() -> str:
    binary = shutil.which("prometheus")
    if binary is None:
        import os

        reason = "the Prometheus server is not installed (apt install prometheus, or make setup)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return binary


@pytest.fixture
def prometheus(tmp_path, exporter_port):
    binary = prometheus_binary()
    web = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n"
        "scrape_configs:\n  - job_name: ebpftop\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{exporter_port}']\n"
    )
    proc = subprocess.Popen(
        [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
         f"--web.listen-address=127.0.0.1:{web}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_http(f"http://127.0.0.1:{web}/-/ready", timeout=60)
        yield f"http://127.0.0.1:{web}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def query(base: str, promql: str) -> list:
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(url, timeout=5) as r:
        body = json.load(r)
    assert body["status"] == "success", body
    return body["data"]["result"]


def _send_tcp(comm: str, nbytes: int) -> str:
    """A child named comm sends nbytes over loopback TCP to this process."""
    import ctypes
    import os
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    pid = os.fork()
    if pid == 0:
        try:
            ctypes.CDLL(None).prctl(15, comm.encode(), 0, 0, 0)  # PR_SET_NAME
            with socket.create_connection(listener.getsockname()) as s:
                s.sendall(b"p" * nbytes)
        finally:
            os._exit(0)
    conn, _ = listener.accept()
    got = 0
    while chunk := conn.recv(65536):
        got += len(chunk)
    os.waitpid(pid, 0)
    conn.close()
    listener.close()
    assert got == nbytes
    return comm


def test_prometheus_sees_a_known_workload(prometheus, workload, tmp_path):
    target = tmp_path / "scraped"
    target.write_text("x")
    workload.run("opens", 777, target)
    workload.run("opens", 23, tmp_path / "absent")
    workload.run("udp4", 55, 100)
    sender = _send_tcp(f"{workload.comm[:12]}tcp", 4321)
    deadline = time.monotonic() + 40
    opens = errors = udp = tcp = None
    while time.monotonic() < deadline:
        opens = query(prometheus, f'ebpftop_file_opens_total{{comm="{workload.comm}"}}')
        errors = query(prometheus, f'ebpftop_file_open_errors_total{{comm="{workload.comm}"}}')
        udp = query(prometheus, f'ebpftop_udp_bytes_total{{comm="{workload.comm}",direction="sent"}}')
        tcp = query(prometheus, f'ebpftop_tcp_bytes_total{{comm="{sender}",direction="sent"}}')
        if opens and errors and udp and tcp and float(opens[0]["value"][1]) >= 800:
            break
        time.sleep(0.5)
    assert opens and errors, "Prometheus never scraped the workload's counts"
    # 777 + 23 opens of our paths, plus the loader's few opens of libraries
    assert 800 <= float(opens[0]["value"][1]) < 800 + 20
    assert float(errors[0]["value"][1]) == 23
    assert float(udp[0]["value"][1]) == 55 * 100
    assert tcp and float(tcp[0]["value"][1]) == 4321
    received = query(prometheus, f'ebpftop_udp_datagrams_total{{comm="{workload.comm}r",direction="received"}}')
    assert received and float(received[0]["value"][1]) == 55
    up = query(prometheus, "ebpftop_probe_up")
    assert {r["metric"]["pane"]: r["value"][1] for r in up} == {
        p: "1" for p in sets.NAMES}
    assert query(prometheus, "sum(ebpftop_read_latency_seconds_count) > 0")
