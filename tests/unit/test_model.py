from __future__ import annotations

import json

import pytest

from ebpftop import aggregate, sets, snapshots
from ebpftop.model import Bucket, Histogram
from ebpftop.sets import file_opens, page_faults, syscalls
from ebpftop.sets.tcp import TcpConnection
from ebpftop.sets.udp import UdpFlow
from tests.unit.snapshots import sample_snapshot


def test_log2_slots_map_to_bcc_buckets():
    h = Histogram.from_log2_slots({0: 1, 1: 2, 11: 5})
    assert h.buckets == (Bucket(0, 1, 1), Bucket(1, 2, 2), Bucket(1024, 2048, 5))
    assert h.count == 8


def test_percentiles_interpolate_inside_the_bucket():
    h = Histogram((Bucket(1024, 2048, 100),))
    assert h.percentile(50) == 1536
    assert h.percentile(90) == 1024 + round(0.9 * 1024)
    assert h.percentile(100) == 2048


def test_percentiles_pick_the_right_bucket():
    h = Histogram((Bucket(1024, 2048, 90), Bucket(1 << 20, 1 << 21, 10)))
    assert 1024 <= h.percentile(50) < 2048
    assert h.percentile(90) == 2048  # the 90th value is the last of the first bucket
    assert (1 << 20) <= h.percentile(99) < (1 << 21)


def test_empty_histogram_has_no_percentiles():
    assert Histogram(()).percentile(50) is None
    assert Histogram(()).to_dict()["p99_ns"] is None


def test_merge_sums_matching_buckets():
    a = Histogram((Bucket(2, 4, 1), Bucket(4, 8, 2)))
    b = Histogram((Bucket(4, 8, 3),))
    assert Histogram.merge([a, b]).buckets == (Bucket(2, 4, 1), Bucket(4, 8, 5))


def test_decode_c_string_stops_at_nul_and_keeps_bad_bytes_visible():
    assert aggregate.decode_c_string(b"bash\0garbage") == "bash"
    bad = aggregate.decode_c_string(b"a\xffb\0")
    assert bad.encode("utf-8", "surrogateescape") == b"a\xffb"  # the bytes, exactly
    # shown as an escape that a name spelled with a real backslash cannot imitate
    from ebpftop.text import visible

    assert visible(bad) == "a\\xffb"
    assert visible("a\\xffb") == "a\\\\xffb"
    assert visible(bad) != visible("a\\xffb")
    # and JSON carries it (as \udcff), a recording round trip keeps it
    import json

    assert json.loads(json.dumps(bad)) == bad


def test_addresses():
    assert aggregate.format_addr(2, bytes([127, 0, 0, 1]) + bytes(12)) == "127.0.0.1"
    assert aggregate.format_addr(10, bytes(15) + b"\x01") == "::1"


def test_syscall_rows_group_by_comm_and_count_pids():
    rows = syscalls.syscall_rows([("a", 1, 5, 0), ("a", 2, 7, 0), ("a", 1, 1, 0), ("b", 3, 100, 0)])
    assert [(r.comm, r.count, r.pids) for r in rows] == [("b", 100, 1), ("a", 13, 2)]
    assert rows[1].by_pid == ((2, 7), (1, 6))


def test_a_process_name_in_two_cgroups_is_two_rows_in_every_aggregate():
    rows = syscalls.syscall_rows([("sh", 1, 5, 10), ("sh", 2, 7, 20), ("sh", 3, 1, 10)])
    assert sorted((r.cgroup, r.count, r.pids) for r in rows) == [(10, 6, 2), (20, 7, 1)]
    faults = page_faults.page_fault_rows([("sh", 1, 5, 10), ("sh", 1, 2, 20), ("sh", 1, 1, 10)])
    assert sorted((r.cgroup, r.count) for r in faults) == [(10, 6), (20, 2)]
    opens = file_opens.file_open_rows([("c", 1, "/x", 0, 3, 1, 10), ("c", 1, "/x", 0, 2, 0, 20)])
    assert sorted((r.cgroup, r.count) for r in opens) == [(10, 3), (20, 2)]
    lat = aggregate.latency([("c", 1, 3, 4, 40, 10), ("c", 1, 3, 1, 5, 20)])
    assert sorted((p.cgroup, p.histogram.count) for p in lat.by_process) == [(10, 4), (20, 1)]
    assert [(comm, cg, h.count) for comm, cg, h in lat.by_name()] == [("c", 10, 4), ("c", 20, 1)]


def test_rows_come_largest_count_first_and_equal_counts_in_a_fixed_order():
    import random

    rng = random.Random(7)
    entries = [(f"c{rng.randrange(9)}", rng.randrange(1, 40), rng.choice((1, 1, 2, 3, 50)), rng.choice((0, 5)))
               for _ in range(400)]
    shuffled = entries[:]
    rng.shuffle(shuffled)
    faults = page_faults.page_fault_rows(entries)
    assert faults == page_faults.page_fault_rows(shuffled)  # whatever order the map gave
    assert list(faults) == sorted(faults, key=lambda r: (-r.count, r.comm, r.pid, r.cgroup))
    calls = syscalls.syscall_rows(shuffled)
    assert list(calls) == sorted(calls, key=lambda r: (-r.count, r.comm, r.cgroup))
    assert all(list(r.by_pid) == sorted(r.by_pid, key=lambda pc: (-pc[1], pc[0])) for r in calls)
    opens = file_opens.file_open_rows([(c, p, f"/f{p % 4}", 0, n, 0, cg) for c, p, n, cg in shuffled])
    assert list(opens) == sorted(opens, key=lambda r: (-r.count, r.path, r.comm, r.pid))
    lat = aggregate.latency([(c, p, n % 12, n, n * 10, cg) for c, p, n, cg in shuffled]).by_process
    assert list(lat) == sorted(lat, key=lambda x: (-x.histogram.count, x.comm, x.pid, x.cgroup))


def test_file_open_rows_mark_truncated_and_unreadable():
    rows = file_opens.file_open_rows([("c", 1, "/x", 0, 3, 1, 0), ("c", 1, "/long", 1, 1, 0, 0),
                                     ("c", 1, "", 2, 1, 1, 0)])
    by_path = {r.path: r for r in rows}
    assert by_path["/x"].count == 3 and by_path["/x"].errors == 1
    assert by_path["/long"].truncated
    assert by_path["<unreadable>"].errors == 1


def test_snapshot_json_round_trip():
    snap = sample_snapshot()
    again = snapshots.from_dict(json.loads(json.dumps(snapshots.to_dict(snap))))
    assert snapshots.to_dict(again) == snapshots.to_dict(snap)


def test_json_keys_are_the_documented_ones():
    d = snapshots.to_dict(sample_snapshot())
    own = {"time", "interval_s", "probes", "probe_stats", "status", "lost", "skipped", "capabilities", "notices",
           "budget"}
    assert set(d) == own | set(sets.PARTS)  # a snapshot's own fields, and each probe set's parts
    # the keys recordings have always had are still there: old recordings replay, and scripts read them
    assert set(d) >= {"tcp", "udp", "syscalls", "read_latency", "write_latency", "file_opens", "page_faults",
                      "processes", "alerts", "tcp_connections", "tcp_closed", "tcp_resets_unowned"}
    assert set(d["tcp"][0]) == {"pid", "comm", "family", "saddr", "sport", "daddr", "dport", "direction", "time",
                                "cgroup", "container"}
    assert set(d["udp"][0]) == {"pid", "comm", "family", "laddr", "lport", "raddr", "rport",
                                "tx_datagrams", "tx_bytes", "rx_datagrams", "rx_bytes", "cgroup", "container"}
    assert {"comm", "count", "pids"} <= set(d["syscalls"][0])
    assert set(d["read_latency"]) >= {"total", "by_comm"}
    assert set(d["read_latency"]["total"]) == {"count", "p50_ns", "p90_ns", "p99_ns", "sum_ns", "buckets"}
    assert set(d["read_latency"]["total"]["buckets"][0]) == {"low_ns", "high_ns", "count"}
    assert {"comm", "pid", "path", "count", "errors"} <= set(d["file_opens"][0])
    assert set(d["page_faults"][0]) == {"comm", "pid", "count", "cgroup", "container"}
    assert d["time"].endswith("+00:00")


@pytest.mark.parametrize("direction", ["connect", "accept"])
def test_tcp_round_trip(direction):
    c = TcpConnection(1_700_000_000.25, 5, "x", "ipv6", "::1", 1, "::1", 2, direction)
    assert TcpConnection.from_dict(c.to_dict()) == c


def test_probe_cost_names_and_shares():
    from ebpftop.model import ProbeCost

    p = ProbeCost("tracepoint__syscalls__sys_exit_read", runs=1000, run_time_ns=50_000)
    assert p.hook == "syscalls:sys_exit_read"
    assert p.avg_ns == 50
    assert p.cpu_pct(5.0) == 50_000 / 5e9 * 100
    raw = ProbeCost("raw_tracepoint__sys_enter", 0, 0, hook_name="raw_syscalls:sys_enter (raw)")  # as attached
    assert raw.hook == "raw_syscalls:sys_enter (raw)" and raw.avg_ns is None
    assert ProbeCost.from_dict(p.to_dict(5.0))._replace(hook_name="") == p


def test_alert_round_trip_and_result_names():
    from ebpftop.sets.file_opens import Alert

    a = Alert(1_764_000_000.5, 42, 1, 1000, "cat", "/etc/shadow", -13)
    assert a.result == "EACCES"
    assert Alert.from_dict(a.to_dict()) == a
    assert a._replace(ret=3).result == "ok"


def test_udp_flows_merge_directions_and_sockets():
    from ebpftop.cdefs import DIR_RECEIVED as UDP_RECEIVED
    from ebpftop.cdefs import DIR_SENT as UDP_SENT
    from ebpftop.sets.udp import udp_flows

    flows = udp_flows([
        (7, "dig", "ipv4", "127.0.0.1", 4000, "127.0.0.53", 53, UDP_SENT, 1, 40, 0),
        (7, "dig", "ipv4", "127.0.0.1", 4000, "127.0.0.53", 53, UDP_RECEIVED, 1, 120, 0),
        (7, "dig", "ipv4", "127.0.0.1", 4000, "127.0.0.53", 53, UDP_SENT, 2, 80, 0),  # a second socket, same flow
        (9, "big", "ipv6", "::1", 1, "::1", 2, UDP_SENT, 5, 5000, 0),
        (0, "", "ipv4", "10.0.0.1", 5, "10.0.0.2", 6, UDP_RECEIVED, 1, 1, 0),
    ])
    assert [f.comm for f in flows] == ["big", "dig", ""]  # most bytes first
    dig = flows[1]
    assert (dig.tx_datagrams, dig.tx_bytes, dig.rx_datagrams, dig.rx_bytes) == (3, 120, 1, 120)
    assert UdpFlow.from_dict(json.loads(json.dumps(dig.to_dict()))) == dig


def test_udp_port_filter_matches_either_end():
    from ebpftop import filters

    snap = sample_snapshot()
    assert {f.comm for f in snapshots.filtered(snap, filters.Filter(port=53)).udp} == {"systemd-resolve", "curl"}
    assert {f.comm for f in snapshots.filtered(snap, filters.Filter(port=5353)).udp} == {""}
    assert [f.comm for f in snapshots.filtered(snap, filters.Filter(comm="CURL")).udp] == ["curl"]
    assert snapshots.filtered(snap, filters.Filter(pid=53)).udp[0].lport == 53


def test_each_attachment_names_its_hook():
    from types import SimpleNamespace

    from ebpftop.sets import page_faults, udp
    from ebpftop.sources import attach

    kernel = SimpleNamespace(caps=SimpleNamespace(page_fault_tracepoint=False))
    links = attach.declared(kernel, udp.SET, {})[0]
    assert links.programs == ("udp_egress", "udp_ingress")
    assert links.hook_name("udp_egress") == "cgroup_skb/egress (every packet)"
    assert attach.declared(kernel, page_faults.SET, {})[0].hook_name("page_fault_event") == "perf:page-faults (user mode)"
    kernel.caps.page_fault_tracepoint = True
    assert attach.declared(kernel, page_faults.SET, {}) == []  # the tracepoint's program is BCC's
    assert attach.Tracepoint(kernel, "tracepoint__sock__inet_sock_set_state").hook_name("") == "sock:inet_sock_set_state"


def test_cgroup2_root_is_found_in_mounts():
    from ebpftop.sources.bpf_syscall import cgroup2_root

    hybrid = ("tmpfs /sys/fs/cgroup tmpfs rw 0 0\ncgroup /sys/fs/cgroup/cpu cgroup rw,cpu 0 0\n"
              "cgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\n")
    assert cgroup2_root(hybrid) == "/sys/fs/cgroup/unified"
    assert cgroup2_root("cgroup2 /sys/fs/cgroup cgroup2 rw,nsdelegate 0 0\n") == "/sys/fs/cgroup"
    assert cgroup2_root("cgroup /sys/fs/cgroup/cpu cgroup rw 0 0\n") is None
    assert cgroup2_root("cgroup2 /mnt/my\\040cg cgroup2 rw 0 0\n") == "/mnt/my cg"


@pytest.mark.parametrize("family, raw, text", [
    (2, bytes([10, 0, 0, 1]) + bytes(12), "10.0.0.1"),
    (10, bytes.fromhex("20010db8000000000000000000000001"), "2001:db8::1"),
    (10, bytes.fromhex("fe800000000000000000000000000001"), "fe80::1"),
    (10, bytes(16), "::"),
    (7, bytes(16), "?"),
])
def test_addresses_print_as_rfc5952_text(family, raw, text):
    assert aggregate.format_addr(family, raw) == text
