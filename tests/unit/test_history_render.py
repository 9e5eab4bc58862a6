from __future__ import annotations

from ebpftop.history import History
from ebpftop.model import Bucket, Histogram
from ebpftop.render import duration, histogram_lines, power_of_two_label
from tests.unit.snapshots import sample_snapshot


def test_history_accumulates_since_start():
    h = History()
    h.add(sample_snapshot(t=100.0))
    h.add(sample_snapshot(t=105.0))
    assert h.connections_total == 6
    assert h.faults_total[("postgres", 100)] == 1400
    assert h.connections[0].time == 104.0  # newest first


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
