from __future__ import annotations

import socket
import threading

import pytest
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry

from ebpftop import exporter
from ebpftop.metrics import OTHER, BoundedCounter, LatencyHistogram, MetricsState
from ebpftop.model import Bucket, Histogram
from tests.unit.snapshots import sample_snapshot


def test_counters_accumulate_and_never_go_down():
    c = BoundedCounter(max_labels=2)
    history = []
    for incs in ({("a",): 5, ("b",): 1}, {("a",): 1, ("c",): 10}, {("d",): 1}, {("b",): 3}):
        c.add_interval(incs)
        history.append(dict(c.samples()))
    for before, after in zip(history, history[1:]):
        for key, v in after.items():
            assert v >= before.get(key, 0), (key, before, after)
    assert len(c.values) <= 2


def test_cap_keeps_the_busiest_and_sums_the_rest_as_other():
    c = BoundedCounter(max_labels=2)
    c.add_interval({("a",): 100, ("b",): 50, ("c",): 1})
    assert dict(c.samples()) == {("a",): 100, ("b",): 50, (OTHER,): 1}
    c.add_interval({("a",): 100, ("b",): 1, ("d",): 70})  # d is busier than b this interval
    # b is evicted (its series stops); its count of this interval goes to other
    assert dict(c.samples()) == {("a",): 200, ("d",): 70, (OTHER,): 2}
    assert c.evicted == 1 and c.evicted_total == 50


def test_a_fork_storm_does_not_grow_memory():
    c = BoundedCounter(max_labels=10)
    for i in range(200):
        c.add_interval({(f"worker{i}-{j}",): 1 for j in range(500)})
    assert len(c.values) <= 10
    # nothing is lost: what is not exported was counted by evicted series
    assert sum(v for _, v in c.samples()) + c.evicted_total == 200 * 500


def test_latency_buckets_are_cumulative_with_exact_sum():
    h = LatencyHistogram()
    h.add(Histogram((Bucket(512, 1024, 3), Bucket(1 << 20, 1 << 21, 2)), sum_ns=4_000_000))
    cum = dict(h.cumulative())
    assert cum[repr(1024 / 1e9)] == 3
    assert cum[repr((1 << 22) / 1e9)] == 5
    assert cum["+Inf"] == 5
    assert h.sum_ns == 4_000_000


def _exposition(state: MetricsState) -> dict:
    registry = CollectorRegistry()
    registry.register(exporter.SnapshotCollector(state, threading.Lock()))
    text = generate_latest(registry).decode()
    return {f.name: f for f in text_string_to_metric_families(text)}


def test_exposition_parses_with_prometheus_client():
    state = MetricsState(max_labels=100)
    state.add(sample_snapshot(t=100.0))
    state.add(sample_snapshot(t=105.0))
    fams = _exposition(state)
    syscalls = {s.labels["comm"]: s.value for s in fams["ebpftop_syscalls"].samples if s.name.endswith("_total")}
    assert syscalls == {"postgres": 18000, "nginx": 8000, "curl": 240}
    tcp = {(s.labels["direction"], s.labels["port"]): s.value for s in fams["ebpftop_tcp_connections"].samples
           if s.name.endswith("_total")}
    assert tcp == {("connect", "443"): 2, ("accept", "8080"): 2, ("accept", "22"): 2}
    lat = {s.name: s for s in fams["ebpftop_read_latency_seconds"].samples if not s.labels.get("le")}
    assert lat["ebpftop_read_latency_seconds_count"].value == 2 * 82
    wlat = {s.name: s for s in fams["ebpftop_write_latency_seconds"].samples if not s.labels.get("le")}
    assert wlat["ebpftop_write_latency_seconds_count"].value == 2 * 8
    assert wlat["ebpftop_write_latency_seconds_sum"].value == pytest.approx(2 * 8 * 20000 / 1e9)
    opens_err = {s.labels["comm"]: s.value for s in fams["ebpftop_file_open_errors"].samples if s.name.endswith("_total")}
    assert opens_err["curl"] == 2
    up = {s.labels["pane"]: s.value for s in fams["ebpftop_probe_up"].samples}
    assert up == {p: 1.0 for p in ("tcp", "tcp_traffic", "udp", "syscalls", "read_latency", "file_opens", "page_faults")}
    udp = {(s.labels["comm"], s.labels["direction"]): s.value for s in fams["ebpftop_udp_datagrams"].samples
           if s.name.endswith("_total")}
    assert udp == {("systemd-resolve", "sent"): 24, ("systemd-resolve", "received"): 24, ("curl", "sent"): 24,
                   ("curl", "received"): 24, ("", "received"): 6}
    udp_bytes = {(s.labels["comm"], s.labels["direction"]): s.value for s in fams["ebpftop_udp_bytes"].samples
                 if s.name.endswith("_total")}
    assert udp_bytes[("curl", "sent")] == 2 * 480 and udp_bytes[("curl", "received")] == 2 * 1400
    assert not any("path" in s.labels for f in fams.values() for s in f.samples)


@pytest.mark.parametrize("text, expected", [
    ("9435", ("127.0.0.1", 9435)),
    ("0.0.0.0:9435", ("0.0.0.0", 9435)),
    ("[::1]:9435", ("::1", 9435)),
])
def test_listen_address(text, expected):
    assert exporter.parse_listen(text) == expected


@pytest.mark.parametrize("argv, message", [
    (["--prometheus", "70000"], "port must be 1-65535"),
    (["--prometheus", "example.com:80"], "not an IP address"),
    (["--prometheus", "9435", "--json"], "cannot be combined"),
])
def test_bad_prometheus_arguments(argv, message, capsys):
    from ebpftop import cli

    with pytest.raises(SystemExit) as e:
        cli.main(argv)
    assert e.value.code == 2
    assert message in capsys.readouterr().err


class _NeverStarted:
    interval_s = 1.0

    def start(self):
        raise AssertionError("must not start the probes when the port is taken")


def test_port_in_use_is_one_line_and_exit_2(capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert exporter.run(_NeverStarted(), ("127.0.0.1", port), 100) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"cannot listen on 127.0.0.1:{port}" in err


def test_idle_connections_to_the_exporter_are_closed_quietly(monkeypatch, capfd):
    import socket
    import threading
    import time

    from prometheus_client.registry import CollectorRegistry

    from ebpftop import exporter

    monkeypatch.setattr(exporter, "IDLE_TIMEOUT_S", 0.5)
    server = exporter.serve(CollectorRegistry(), ("127.0.0.1", 0))
    try:
        port = server.server_address[1]
        before = threading.active_count()
        idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(4)]  # within the listen backlog
        deadline = time.monotonic() + 5
        while threading.active_count() < before + 4:  # one thread each
            assert time.monotonic() < deadline, "the server never took the connections"
            time.sleep(0.02)
        deadline = time.monotonic() + 10
        while threading.active_count() > before:
            assert time.monotonic() < deadline, f"{threading.active_count() - before} threads still serve idle sockets"
            time.sleep(0.05)
        for s in idle:
            s.close()
    finally:
        server.shutdown()
        server.server_close()
    assert "Traceback" not in capfd.readouterr().err  # a timed-out socket is no error to print


def test_tcp_bytes_and_per_connection_totals_become_counters_without_double_counting():
    from ebpftop.metrics import MetricsState
    from tests.unit.snapshots import replace, sample_snapshot

    first = sample_snapshot()
    state = MetricsState()
    state.add(first)
    assert state.counters["ebpftop_tcp_bytes"].values[("nginx", "sent")] == 5_000_000
    assert state.counters["ebpftop_tcp_bytes"].values[("curl", "received")] == 1_500_000 + 2_000
    assert state.counters["ebpftop_tcp_retransmits"].values == {("nginx", "sent"): 2}
    assert state.counters["ebpftop_tcp_resets"].values == {("curl", "received"): 1}
    nginx = first.tcp_connections[0]
    later = replace(first, tcp_connections=(nginx._replace(tx_bytes=10, rx_bytes=0, retransmits=5),), tcp_closed=())
    state.add(later)
    assert state.counters["ebpftop_tcp_bytes"].values[("nginx", "sent")] == 5_000_010
    assert state.counters["ebpftop_tcp_retransmits"].values == {("nginx", "sent"): 5}  # 2, then 3 more: not 2 + 5


def test_per_container_counters_sum_their_processes_and_stay_bounded():
    from tests.unit.snapshots import container_snapshot

    state = MetricsState(max_labels=3)
    state.add(container_snapshot(t=100.0))
    state.add(container_snapshot(t=105.0))
    fams = _exposition(state)
    syscalls = {(s.labels["container"], s.labels["kind"]): s.value
                for s in fams["ebpftop_container_syscalls"].samples if s.name.endswith("_total")}
    # four containers, three kept: the smallest counts as other
    assert syscalls == {("db", "docker"): 18000, ("web", "docker"): 8600, ("shop-7d9f/api", "kubernetes"): 5000,
                        ("other", "other"): 400}
    tcp = {(s.labels["container"], s.labels["direction"]): s.value
           for s in fams["ebpftop_container_tcp_bytes"].samples if s.name.endswith("_total")}
    assert tcp[("web", "sent")] == 2 * 5_000_000


def test_max_cpu_exports_degraded_and_what_was_shed():
    from ebpftop.model import Budget
    from tests.unit.snapshots import replace

    state = MetricsState(max_labels=100)
    state.add(sample_snapshot(t=100.0))
    assert "ebpftop_degraded" not in _exposition(state)  # without --max-cpu
    shed = Budget(5.0, 7.25, 6.0, 1.25, latency_sampled_1_in=16, detached=("file_opens",))
    state.add(replace(sample_snapshot(t=105.0), budget=shed))
    fams = _exposition(state)
    assert fams["ebpftop_degraded"].samples[0].value == 1.0
    assert fams["ebpftop_load_cpu_percent"].samples[0].value == 7.25
    assert fams["ebpftop_max_cpu_percent"].samples[0].value == 5.0
    assert fams["ebpftop_latency_sampled_1_in"].samples[0].value == 16
    detached = {s.labels["pane"]: s.value for s in fams["ebpftop_probe_set_detached"].samples}
    assert detached["file_opens"] == 1.0 and detached["syscalls"] == 0.0
    state.add(replace(sample_snapshot(t=110.0), budget=Budget(5.0, 0.7, 0.1, 0.6)))
    assert _exposition(state)["ebpftop_degraded"].samples[0].value == 0.0
