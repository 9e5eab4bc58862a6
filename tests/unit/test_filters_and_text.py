from __future__ import annotations

from ebpftop.filters import Filter
from ebpftop.snapshots import filtered as apply
from ebpftop.text import visible
from tests.unit.snapshots import sample_snapshot


def test_no_filter_is_identity():
    snap = sample_snapshot()
    assert apply(snap, Filter()) is snap


def test_comm_filter_is_case_insensitive_substring_on_every_pane():
    f = apply(sample_snapshot(), Filter(comm="GINX"))
    assert {c.comm for c in f.tcp} == {"nginx"}
    assert [r.comm for r in f.syscalls] == ["nginx"]
    assert [p.comm for p in f.read_latency.by_process] == ["nginx"]
    assert f.read_latency.total.count == 12
    assert [r.comm for r in f.file_opens] == ["nginx"]
    assert f.page_faults == ()


def test_pid_filter_narrows_syscall_rows_to_that_pid():
    f = apply(sample_snapshot(), Filter(pid=101))
    assert [(r.comm, r.count, r.pids) for r in f.syscalls] == [("postgres", 3000, 1)]
    assert f.tcp == () and f.file_opens == ()


def test_port_filter_matches_either_end_and_leaves_other_panes():
    snap = sample_snapshot()
    f = apply(snap, Filter(port=443))
    assert [c.comm for c in f.tcp] == ["curl"]
    assert f.syscalls == snap.syscalls
    assert [c.comm for c in apply(snap, Filter(port=40222)).tcp] == ["nginx"]


def test_filters_combine():
    assert apply(sample_snapshot(), Filter(comm="curl", port=8080)).tcp == ()


def test_visible_escapes_control_and_bidi_characters():
    assert visible("ok name") == "ok name"
    assert visible("\x1b]52;c;aGk=\x07") == "\\x1b]52;c;aGk=\\x07"
    assert visible("a\x9bb\x7f") == "a\\x9bb\\x7f"
    assert visible("evil\u202etxt.exe") == "evil\\u202etxt.exe"
    assert visible("tab\there\nnl") == "tab\\x09here\\x0anl"
    assert visible("[bold]x[/]") == "[bold]x[/]"  # markup is not this function's job: the UI never parses it


def test_visible_escapes_what_draws_nothing_and_keeps_escapes_unambiguous():
    # U+2028 rendered invisibly; zero-width characters hide text too
    assert visible("a\u2028b\u2029c\u200bd\ufeffe") == "a\\u2028b\\u2029c\\u200bd\\ufeffe"
    # a real backslash is doubled, so "\x1b" typed as four characters is not an escape
    assert visible("\\x1b") == "\\\\x1b"
    assert visible("\x1b") == "\\x1b"
    # ordinary text, accents and CJK pass unchanged
    assert visible("nginx: worker") == "nginx: worker"
    assert visible("café 日本") == "café 日本"


def test_prometheus_label_values_are_escaped():
    """A \\r in a process name broke prometheus_client's own parser on the
    whole scrape."""
    import threading

    from prometheus_client.exposition import generate_latest
    from prometheus_client.parser import text_string_to_metric_families
    from prometheus_client.registry import CollectorRegistry

    from ebpftop.exporter import SnapshotCollector
    from ebpftop.metrics import MetricsState
    from ebpftop.sets.syscalls import SyscallRow
    from tests.unit.snapshots import replace, sample_snapshot

    state = MetricsState(max_labels=10)
    state.add(replace(sample_snapshot(), syscalls=(SyscallRow("evil\rname\n", 5, ((1, 5),)),)))
    registry = CollectorRegistry()
    registry.register(SnapshotCollector(state, threading.Lock()))
    text = generate_latest(registry).decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    comms = {s.labels["comm"] for s in families["ebpftop_syscalls"].samples}
    assert comms == {"evil\\x0dname\\x0a"}


def test_connection_ages_and_lifetimes_show_milliseconds_under_a_second():
    from ebpftop.panes.network import _age

    # a loopback request lives about a millisecond: it once showed as 0.0s (issue 27)
    assert [_age(s) for s in (0.0012, 0.25, 1.0, 9.94, 30, 61, 3700)] == \
        ["1.2ms", "250.0ms", "1.0s", "9.9s", "30s", "1m01s", "1h01m"]
