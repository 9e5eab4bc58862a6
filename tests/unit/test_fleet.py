"""What a fleet gets (deploy/): the Grafana dashboard generated from the
metric families, so it cannot drift from what is exported, every query of
it valid PromQL, and the Prometheus rules with promtool's own unit tests."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry

from ebpftop import dashboard, exporter
from ebpftop.metrics import MetricsState
from tests.unit.snapshots import degraded_snapshot, every_part_snapshot

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"


def _promtool() -> str:
    path = shutil.which("promtool")
    assert path, "promtool is missing: make test-packages installs it (Debian's prometheus)"
    return path


def test_the_committed_dashboard_is_what_the_generator_makes():
    out = subprocess.run([sys.executable, "-m", "ebpftop.dashboard"], cwd=REPO, check=True, capture_output=True,
                         text=True).stdout
    assert json.loads(out) == json.loads((DEPLOY / "grafana-dashboard.json").read_text()), \
        "deploy/grafana-dashboard.json is stale: python -m ebpftop.dashboard > deploy/grafana-dashboard.json"


def _exported_families() -> set[str]:
    state = MetricsState(max_labels=100)
    state.add(every_part_snapshot())
    state.add(degraded_snapshot())  # --max-cpu's families too
    registry = CollectorRegistry()
    registry.register(exporter.SnapshotCollector(state, threading.Lock()))
    return {f.name for f in text_string_to_metric_families(generate_latest(registry).decode())}


def test_every_exported_family_has_a_panel_and_every_panel_an_exported_family():
    exported = _exported_families()
    drawn = {f.name for f in dashboard.families()}
    assert exported == drawn, (sorted(exported - drawn), sorted(drawn - exported))
    panels = [p for p in dashboard.dashboard()["panels"] if p["type"] == "timeseries"]
    for f in dashboard.families():
        assert any(f.name in t["expr"] for p in panels for t in p["targets"]), f.name


def _substituted(expr: str) -> str:
    return expr.replace("$__rate_interval", "5m").replace("$instance", ".+").replace("$container", ".*")


def test_every_dashboard_query_is_valid_promql(tmp_path):
    # promtool has no query parser of its own: each query becomes a recording rule it checks
    exprs = [t["expr"] for p in dashboard.dashboard()["panels"] for t in p.get("targets", [])]
    assert len(exprs) > 40
    rules = {"groups": [{"name": "dashboard", "rules": [{"record": f"dashboard:q{i}", "expr": _substituted(e)}
                                                        for i, e in enumerate(exprs)]}]}
    (tmp_path / "q.yml").write_text(json.dumps(rules))  # JSON is YAML
    done = subprocess.run([_promtool(), "check", "rules", str(tmp_path / "q.yml")], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(exprs)} rules found" in done.stdout
    assert not [e for e in exprs if re.search(r"\$(?!instance|container|__rate_interval)", e)]


def test_the_rules_check_and_pass_their_unit_tests():
    done = subprocess.run([_promtool(), "check", "rules", "prometheus-rules.yml"], cwd=DEPLOY, capture_output=True,
                          text=True)
    assert done.returncode == 0 and "SUCCESS" in done.stdout, done.stdout + done.stderr
    done = subprocess.run([_promtool(), "test", "rules", "prometheus-rules.test.yml"], cwd=DEPLOY,
                          capture_output=True, text=True)
    assert done.returncode == 0 and "SUCCESS" in done.stdout, done.stdout + done.stderr


@pytest.mark.parametrize("family", ["ebpftop_watched_file_opens", "ebpftop_read_latency_seconds",
                                    "ebpftop_lost_events", "ebpftop_degraded", "ebpftop_probe_up"])
def test_the_alert_rules_read_families_that_exist(family):
    assert family in {f.name for f in dashboard.families()}
    assert family in (DEPLOY / "prometheus-rules.yml").read_text()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _query(base: str, promql: str, at: float) -> list:
    import urllib.parse
    import urllib.request

    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": promql, "time": f"{at:.3f}"})
    with urllib.request.urlopen(url, timeout=5) as r:
        body = json.load(r)
    assert body["status"] == "success", body
    return body["data"]["result"]


def test_a_recording_backfilled_into_prometheus_gives_its_exact_counts_at_its_times(tmp_path, capsys):
    import time
    import urllib.request

    from ebpftop import cli
    from ebpftop.recording import read_recording
    from tests.ui.harness import RECORDING

    assert cli.main(["--no-config", "--replay", str(RECORDING), "--openmetrics=web1"]) == 0
    (tmp_path / "rec.om").write_text(capsys.readouterr().out)
    data = tmp_path / "data"
    done = subprocess.run([_promtool(), "tsdb", "create-blocks-from", "openmetrics", str(tmp_path / "rec.om"),
                           str(data)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    binary = shutil.which("prometheus")
    assert binary, "the Prometheus server is missing: make test-packages installs it"
    port = _free_port()
    (tmp_path / "prometheus.yml").write_text("global:\n  scrape_interval: 1m\n")
    proc = subprocess.Popen([binary, f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={data}",
                             "--storage.tsdb.retention.time=100y", f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{base}/-/ready", timeout=2).read()
                break
            except OSError:
                assert time.monotonic() < deadline, "Prometheus did not start"
                time.sleep(0.2)
        total: dict[str, int] = {}
        snaps = read_recording(RECORDING)
        for snap in snaps:
            for row in snap.syscalls:
                total[row.comm] = total.get(row.comm, 0) + row.count
            got = {r["metric"]["comm"]: int(r["value"][1])
                   for r in _query(base, 'ebpftop_syscalls_total{instance="web1",job="ebpftop"}', snap.time)}
            assert got == total, snap.time  # exact, per process name, at each recorded interval
        opens = sum(r.count for s in snaps for r in s.file_opens)
        got = _query(base, 'sum(ebpftop_file_opens_total{instance="web1"})', snaps[-1].time)
        assert int(got[0]["value"][1]) == opens
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_openmetrics_needs_a_replay(capsys):
    from ebpftop import cli

    with pytest.raises(SystemExit) as done:
        cli.main(["--no-config", "--openmetrics"])
    assert done.value.code == 2
    assert "--openmetrics writes a --replay's recording" in capsys.readouterr().err
