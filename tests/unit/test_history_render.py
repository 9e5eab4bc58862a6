from __future__ import annotations

from ebpftop.history import History
from ebpftop.model import Bucket, Histogram
from ebpftop.render import duration, histogram_lines, power_of_two_label
from tests.unit.snapshots import sample_snapshot


def test_history_accumulates_since_start():
    h = History()
    h.add(sample_snapshot(t=100.0))
    h.add(sample_snapshot(t=105.0))
    assert h.totals["tcp"] == 6
    assert h.since_start["page_faults"][("postgres", 100)] == 1400
    assert h.log("tcp")[0].time == 104.0  # newest first


def test_bpftrace_style_histogram():
    hist = Histogram((Bucket(1024, 2048, 4), Bucket(4096, 8192, 2)))
    assert histogram_lines(hist, bar_width=4) == [
        "[1K, 2K) 4 |@@@@|",
        "[2K, 4K) 0 |    |",
        "[4K, 8K) 2 |@@  |",
    ]


def test_labels_and_durations():
    assert power_of_two_label(512) == "512"
    assert power_of_two_label(1 << 20) == "1M"
    assert duration(1536) == "1.5 µs"
    assert duration(None) == "-"
    assert histogram_lines(Histogram(())) == []


def test_kept_snapshots_are_bounded_by_time_and_by_rows():
    from ebpftop.history import History, snapshot_rows
    from tests.unit.snapshots import T0, replace, sample_snapshot

    h = History(history_s=20.0)
    for i in range(10):
        h.add(sample_snapshot(T0 + 5 * i))
    assert h.kept_times() == [T0 + 5 * i for i in range(5, 10)]  # the last 20 s
    rows = snapshot_rows(sample_snapshot(T0))
    assert h.kept_rows == 5 * rows
    h = History(max_kept_rows=3 * rows)
    for i in range(10):
        h.add(sample_snapshot(T0 + 5 * i))
    assert len(h.snapshots) == 3 and h.kept_rows == 3 * rows
    h = History(max_kept_rows=1)
    h.add(replace(sample_snapshot(T0)))
    assert len(h.snapshots) == 1  # the newest is always kept


def test_faults_since_start_as_they_were_at_a_kept_moment():
    from ebpftop.history import History
    from tests.unit.snapshots import T0, sample_snapshot

    h = History()
    for i in range(4):
        h.add(sample_snapshot(T0 + 5 * i))
    assert h.since_start_at("page_faults")[("postgres", 100)] == 4 * 700
    assert h.since_start_at("page_faults", T0 + 5)[("postgres", 100)] == 2 * 700
    assert h.since_start_at("page_faults", T0 + 15) == h.since_start["page_faults"]


def test_faults_since_start_are_bounded_as_pids_come_and_go():
    from ebpftop import snapshots
    from ebpftop.history import MAX_SINCE_START, History
    from ebpftop.sets.page_faults import PageFaultRow

    h = History()
    for s in range(3):
        h.add(snapshots.new(1e9 + 5 * s, 5.0,
                            page_faults=tuple(PageFaultRow("w", s * 40_000 + i, 1) for i in range(40_000))))
    totals = h.since_start["page_faults"]
    assert len(totals) == MAX_SINCE_START
    assert ("w", 2 * 40_000 + 39_999) in totals and ("w", 0) not in totals  # the oldest went


def test_counts_since_start_as_they_were_at_a_kept_moment():
    from ebpftop.history import History
    from tests.unit.snapshots import T0, sample_snapshot

    h = History()
    for i in range(4):
        h.add(sample_snapshot(T0 + 5 * i))  # 3 new connections and 1 closed each
    assert h.totals_at(None) == {"tcp": 12, "tcp_closed": 4, "alerts": 0, "processes": 0, "disk_slow": 0, "oom_kills": 0}
    assert h.totals_at(T0 + 5) == {"tcp": 6, "tcp_closed": 2, "alerts": 0, "processes": 0, "disk_slow": 0, "oom_kills": 0}


def test_an_interval_whose_probes_were_detached_is_a_gap_not_a_zero():
    import math

    from ebpftop.budget import DETACHED
    from ebpftop.panes import timeline
    from tests.unit.snapshots import T0, replace, sample_snapshot

    snaps = [sample_snapshot(T0 + 5 * i) for i in range(4)]
    shed = {**snaps[2].status, "syscalls": DETACHED + " of 3% of a CPU (attached again when the load falls)"}
    snaps[2] = replace(snaps[2], syscalls=(), status=shed)
    line = timeline.strip("syscalls", snaps, snaps[3].time, 80).plain
    assert line == "syscalls/s ██" + timeline.GAP + "█ 2,624 (max 2,624) · 20 s kept"  # the gap is not a value
    shown_gap = timeline.strip("syscalls", snaps, snaps[2].time, 80).plain
    assert "not measured (detached under --max-cpu)" in shown_gap
    trends = timeline.row_trends({}, "syscalls", snaps, snaps[3].time,
                                 lambda s: {r.comm: r.count for r in s.syscalls})
    assert math.isnan(trends["postgres"][2]) and trends["postgres"][:2] == [9000, 9000]
    assert timeline.trend_text([9000, 9000, math.nan, 9000]).plain == ""  # no change where it was measured
    assert timeline.trend_text([9000, 100, math.nan, 9000]).plain.count(timeline.GAP) == 1
