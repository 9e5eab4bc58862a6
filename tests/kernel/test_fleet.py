"""The fleet, end to end (issue 28, item 3): a real Prometheus (Debian's)
scrapes two live exporters, one over plain HTTP and one over TLS with basic
auth (--web-config), with deploy/prometheus-rules.yml loaded.  A workload
touches every family: file opens (a watched file, a missing one), TCP with
a reset and retransmissions, UDP, segments dropped by a socket filter, an
OOM kill in a 32 MiB memory cgroup, direct I/O to a loop device.

Then every query of deploy/grafana-dashboard.json, its variables
substituted as a person picking each exporter in turn would, must return a
series of that exporter with a number (not NaN); every recording rule
must hold series of both; the watched-file and OOM alerts must fire for
both (they once could not: a series that begins at 1 has no increase).
What tells a new series from an old one needs an hour of history this
test does not have: deploy/prometheus-rules.test.yml covers it.  The
test prints each panel's title with the series its query returned, per
exporter: a picture of the dashboard, as far as one can be taken without
Grafana."""

from __future__ import annotations

import base64
import json
import math
import os
import secrets
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import bcrypt
import pytest

from tests.conftest import require_kernel_support
from tests.kernel.test_disk_oom_drops import DROP_WORKLOAD, OOM_HOG, loop_device, memcg  # noqa: F401 - fixtures
from tests.kernel.test_prometheus import free_port, prometheus_binary, query
from tests.tls import make_certs

REPO = Path(__file__).resolve().parents[2]
RATE_WINDOW = "30s"  # $__rate_interval: Grafana's is four scrape intervals at least; scrapes here are 1 s apart
PASSWORD = "fleet-" + secrets.token_hex(8)

REFUSED = """
import ctypes, socket, sys
ctypes.CDLL(None).prctl(15, sys.argv[1].encode())
try:
    socket.create_connection(("127.0.0.1", int(sys.argv[2])), timeout=2)
except ConnectionRefusedError:
    pass
"""


def _scrape(url: str, ctx=None, auth: str | None = None) -> str:
    req = urllib.request.Request(url)
    if auth:
        req.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    with urllib.request.urlopen(req, context=ctx, timeout=5) as r:
        return r.read().decode()


class Exporter:
    """ebpftop --prometheus in a process of its own, until stop()."""

    def __init__(self, port: int, watched: Path, web_config: Path | None, ctx=None, auth: str | None = None):
        self.port, self.ctx, self.auth = port, ctx, auth
        self.url = f"{'https' if ctx else 'http'}://127.0.0.1:{port}/metrics"
        argv = [sys.executable, "-m", "ebpftop", "--prometheus", f"127.0.0.1:{port}", "--interval", "1",
                "--max-cpu", "90",  # the budget's gauges are exported only with it; 90%: never reached here
                "--no-default-watch", "--watch", str(watched)]
        if web_config:
            argv += ["--web-config", str(web_config)]
        self.proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def wait_up(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while True:
            assert self.proc.poll() is None, f"the exporter exited: {self.proc.stderr.read()}"
            try:
                if 'ebpftop_probe_up{pane="file_opens"} 1.0' in _scrape(self.url, self.ctx, self.auth):
                    return
            except OSError:
                pass
            assert time.monotonic() < deadline, "the probes never came up"
            time.sleep(0.3)

    def stop(self) -> str:
        self.proc.terminate()
        try:
            _, err = self.proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
            pytest.fail(f"the exporter did not exit within 20 s of SIGTERM:\n{err}")
        return err


def _substitute(expr: str, instance: str) -> str:
    return (expr.replace("$instance", instance.replace(".", "\\\\.")).replace("$container", ".*")
            .replace("$__rate_interval", RATE_WINDOW))


def _numbers(result: list, instance: str) -> list[float]:
    """The values of result's series of that instance (NaN left out: a
    quantile of buckets that did not move is no picture of anything)."""
    vals = [float(r["value"][1]) for r in result if r["metric"].get("instance") == instance]
    return [v for v in vals if not math.isnan(v)]


def _check(base: str, instances: dict[str, str]) -> tuple[list[str], list[str], set, list]:
    """What is missing (a panel or recording rule without a number for an
    exporter), the lines to print, the alerts firing and all alerts."""
    dashboard = json.loads((REPO / "deploy" / "grafana-dashboard.json").read_text())
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    missing, lines = [], [f"{len(panels)} panels, the series each query returned, per exporter:"]
    for panel in panels:
        counts = {}
        for kind, instance in instances.items():
            counts[kind] = sum(len(_numbers(query(base, _substitute(t["expr"], instance)), instance))
                               for t in panel["targets"])
            if counts[kind] == 0:
                missing.append(f"{panel['title']} ({kind})")
        lines.append(f"  {panel['title']:<32} plain {counts['plain']:>3}   tls+auth {counts['tls']:>3}")
    rules = [line.split("record:")[1].strip() for line in
             (REPO / "deploy" / "prometheus-rules.yml").read_text().splitlines() if "record:" in line]
    for rule in rules:
        got = {r["metric"].get("instance") for r in query(base, rule)}
        lines.append(f"  rule {rule}: {len(got & set(instances.values()))} of 2")
        if not set(instances.values()) <= got:
            missing.append(f"recording rule {rule}")
    with urllib.request.urlopen(f"{base}/api/v1/alerts", timeout=5) as r:
        alerts = json.load(r)["data"]["alerts"]
    firing = {(a["labels"]["alertname"], a["labels"]["instance"]) for a in alerts if a["state"] == "firing"}
    lines.append(f"  firing: {sorted(firing)}")
    return missing, lines, firing, alerts


def _workload(workload, watched: Path, loop_dev: str, memcg_dir: Path, tmp_path: Path) -> None:
    workload.run("opens", 5, watched)  # the alert, on both exporters
    workload.run("opens", 9, tmp_path / "absent")  # failures
    workload.run("tcp4")
    workload.run("udp4", 50, 200)
    refused_port = free_port()  # nothing listens: a reset received by the connector
    subprocess.run([sys.executable, "-c", REFUSED, "rst" + secrets.token_hex(4), str(refused_port)], check=True, timeout=30)
    subprocess.run([sys.executable, "-c", DROP_WORKLOAD, "drp" + secrets.token_hex(4), "5"], check=True,
                   capture_output=True, timeout=30)  # dropped segments, retransmitted
    procs = memcg_dir / "cgroup.procs"
    hog = subprocess.Popen([sys.executable, "-c", OOM_HOG, "oom" + secrets.token_hex(4)],
                           preexec_fn=lambda: procs.write_text(str(os.getpid())))
    assert hog.wait(timeout=60) == -9, "the OOM killer did not kill the hog"
    subprocess.run(["dd", "if=/dev/zero", f"of={loop_dev}", "bs=64k", "count=256", "oflag=direct"], check=True,
                   capture_output=True, timeout=60)
    subprocess.run(["dd", f"if={loop_dev}", "of=/dev/null", "bs=64k", "count=256", "iflag=direct"], check=True,
                   capture_output=True, timeout=60)


def test_every_dashboard_panel_shows_both_exporters_and_the_watched_file_alert_fires(
        workload, tmp_path, memcg, loop_device):  # noqa: F811 - the fixtures imported above
    require_kernel_support()
    binary = prometheus_binary()
    certs = make_certs(tmp_path)
    watched = tmp_path / "watched-secret"
    watched.write_text("x")
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(10)).decode()
    web_config = tmp_path / "web.yml"
    web_config.write_text(f"tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
                          f"basic_auth_users:\n  prometheus: {hashed}\n")
    (tmp_path / "password").write_text(PASSWORD)
    ctx = ssl.create_default_context(cafile=str(certs / "ca.crt"))

    plain_port, tls_port, web_port = free_port(), free_port(), free_port()
    while len({plain_port, tls_port, web_port}) < 3:
        tls_port, web_port = free_port(), free_port()
    instances = {"plain": f"127.0.0.1:{plain_port}", "tls": f"127.0.0.1:{tls_port}"}
    config = tmp_path / "prometheus.yml"
    config.write_text(f"""
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: ['{REPO / "deploy" / "prometheus-rules.yml"}']
scrape_configs:
  - job_name: ebpftop
    static_configs:
      - targets: ['{instances["plain"]}']
  - job_name: ebpftop-tls
    scheme: https
    tls_config:
      ca_file: '{certs / "ca.crt"}'
    basic_auth:
      username: prometheus
      password_file: '{tmp_path / "password"}'
    static_configs:
      - targets: ['{instances["tls"]}']
    relabel_configs:  # one job for the rules (up{{job="ebpftop"}}), two ways to scrape it
      - target_label: job
        replacement: ebpftop
""")
    exporters = [Exporter(plain_port, watched, None),
                 Exporter(tls_port, watched, web_config, ctx, f"prometheus:{PASSWORD}")]
    prom = None
    try:
        for e in exporters:
            e.wait_up()
        with pytest.raises(urllib.error.HTTPError, match="401"):  # the TLS one wants the password
            _scrape(exporters[1].url, ctx)
        prom = subprocess.Popen([binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
                                 f"--web.listen-address=127.0.0.1:{web_port}"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        base = f"http://127.0.0.1:{web_port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                up = {r["metric"]["instance"]: r["value"][1] for r in query(base, 'up{job="ebpftop"}')}
            except OSError:
                up = {}
            if up == {i: "1" for i in instances.values()}:
                break
            assert time.monotonic() < deadline, f"Prometheus never scraped both exporters: up={up}"
            time.sleep(0.5)
        # Rates need two samples of a series: a few scrapes before the
        # workload, then the checks again until they hold (a busy CI machine
        # may take a few seconds more), at most a minute.
        polls, ready = query(base, "ebpftop_polls"), time.monotonic() + 60
        while len(polls) < 2 or min(float(r["value"][1]) for r in polls) < 3:
            assert time.monotonic() < ready, polls
            time.sleep(0.5)
            polls = query(base, "ebpftop_polls")
        _workload(workload, watched, loop_device, memcg, tmp_path)
        settle = time.monotonic() + 60
        while True:
            missing, lines, firing, alerts = _check(base, instances)
            expected = {(name, i) for name in ("EbpftopWatchedFileOpened", "EbpftopOomKill") for i in instances.values()}
            if (not missing and expected <= firing) or time.monotonic() > settle:
                break
            time.sleep(1)
        print("\n".join(lines))
        assert expected <= firing, alerts
        watched_alerts = [a for a in alerts if a["labels"]["alertname"] == "EbpftopWatchedFileOpened"]
        assert {a["labels"]["comm"] for a in watched_alerts} == {workload.comm}
        assert not missing, f"no series for: {missing}"
    finally:
        if prom is not None:
            prom.terminate()
            prom.wait(timeout=30)
        errs = [e.stop() for e in exporters]
    for err in errs:
        assert "Traceback" not in err and "Exception ignored" not in err, err
