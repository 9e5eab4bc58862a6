"""--max-cpu's governor (budget.py): the order it sheds in, when it restores,
and how the estimates it causes are marked."""

import json

import pytest

from ebpftop import aggregate, budget, filters, snapshots
from ebpftop.cli import build_parser
from ebpftop.model import Budget

SETS = ("read_latency", "syscalls", "file_opens")
OWNERS = {name: (name,) for name in SETS}  # here each set has a program of its own, named after it
COSTS = {"read_latency": 6.0, "syscalls": 9.0, "file_opens": 0.5}


def governor(max_cpu=5.0, latency=True, owners=OWNERS):
    return budget.Governor(max_cpu, ("read_latency",) if latency else (), SETS, owners)


def test_under_the_budget_nothing_is_shed():
    g = governor()
    for _ in range(5):
        assert g.decide(4.9, 4.0, COSTS) is None
    assert g.sample_1_in == 1 and g.detached == ()
    assert not g.state(4.9, 4.0, 0.9).degraded


def test_sheds_latency_sampling_first_then_the_costliest_sets():
    g = governor()
    taken = [g.decide(20.0, 19.0, COSTS) for _ in range(7)]
    assert [(s.kind, s.value) for s in taken[:6]] == [("sample", 4), ("sample", 16), ("sample", 64),
                                                      ("detach", ("syscalls",)), ("detach", ("read_latency",)),
                                                      ("detach", ("file_opens",))]
    assert taken[6] is None  # nothing left
    assert g.state(20.0, 19.0, 1.0).describe() == "latency sampled 1 in 64; detached: syscalls, read_latency, file_opens"


def test_what_costs_little_is_never_shed():
    g = governor(max_cpu=5.0)
    # ebpftop's own CPU (a busy TUI) is over the budget; the probes cost next to nothing
    costs = {"read_latency": 0.2, "syscalls": 0.4, "file_opens": 0.01}
    for _ in range(8):
        assert g.decide(6.0, 0.61, costs) is None
    assert g.steps == []
    g.decide(20.0, 14.6, {"syscalls": 14.0, "file_opens": 0.01, "read_latency": 0.3})
    assert g.detached == ("syscalls",)  # the only one worth it (>= 10% of the budget)


def test_without_the_latency_probes_it_detaches_at_once():
    g = governor(latency=False)
    step = g.decide(20.0, 19.0, COSTS)
    assert (step.kind, step.value) == ("detach", ("syscalls",))
    assert g.sample_1_in == 1


def test_a_detached_latency_set_is_not_sampled_further():
    g = governor()
    costs = {"read_latency": 30.0}
    for _ in range(4):
        g.decide(50.0, 30.0, costs)
    assert g.detached == ("read_latency",) and g.sample_1_in == 64
    assert g.decide(50.0, 30.0, costs) is None  # nothing left that costs anything


def test_restores_the_last_step_first_when_the_load_falls():
    g = governor()
    g.decide(10.0, 9.0, COSTS)  # sample 4
    g.decide(8.0, 7.0, COSTS)  # sample 16; the first saved 9 - 7
    assert g.decide(3.0, 2.0, COSTS) is None  # under: but 3 + (7 - 2) = 8 would be over: kept
    assert g.decide(1.0, 0.5, COSTS) is None  # 1 + 5 > 4 still, and held 2 intervals of 3
    undone = g.decide(1.0, 0.5, COSTS)  # held long enough, and the probes are quiet: tried
    assert (undone.kind, undone.value) == ("sample", 16) and g.sample_1_in == 4
    assert g.steps[-1].saved == 2.0
    assert (undone.kind, undone.value) == ("sample", 16) and g.sample_1_in == 4
    undone = g.decide(1.0, 0.5, COSTS)  # 1 + 2 <= 4
    assert (undone.kind, undone.value) == ("sample", 4) and g.sample_1_in == 1
    assert g.steps == []


def test_a_steady_flood_does_not_flap_while_held():
    g = governor(max_cpu=5.0, latency=False)
    g.decide(20.0, 19.0, COSTS)  # detach syscalls
    for _ in range(budget.HOLD_INTERVALS - 1):
        assert g.decide(0.4, 0.01, COSTS) is None  # 0.4 + 18.99 would be over: kept while held


def test_held_steps_are_tried_again_and_held_longer_after_each_failed_try():
    g = governor(max_cpu=5.0, latency=False)
    costs = {"syscalls": 15.0}
    g.decide(20.0, 19.0, costs)  # detach syscalls
    waits = []
    for _ in range(4):
        n = 0
        while g.detached:  # held: under the budget, but 2 + 18 would not be
            n += 1
            g.decide(2.0, 1.0, costs)
        waits.append(n)
        assert g.decide(20.0, 19.0, costs).value == ("syscalls",)  # the flood is still on: taken again
    assert waits == [budget.HOLD_INTERVALS, 2 * budget.HOLD_INTERVALS, 4 * budget.HOLD_INTERVALS,
                     8 * budget.HOLD_INTERVALS]


def test_the_flood_ending_with_the_step_restores_after_the_hold():
    g = governor(max_cpu=5.0, latency=False)
    g.decide(20.0, 19.0, COSTS)
    # the flood stopped in the very interval the step was taken: 0.3 + (19 - 0.05) says over; the hold ends that
    results = [g.decide(0.3, 0.05, COSTS) for _ in range(budget.HOLD_INTERVALS)]
    assert results[:-1] == [None] * (budget.HOLD_INTERVALS - 1)
    assert results[-1].value == ("syscalls",) and g.detached == ()


def test_a_busy_tui_over_the_budget_does_not_keep_a_step_forever():
    """ebpftop's own CPU stays over the budget after the flood: what was shed
    still comes back once the probes are quiet."""
    g = governor(max_cpu=3.0, latency=False)
    g.decide(30.0, 26.0, {"syscalls": 25.0})
    restored = [g.decide(3.5, 0.02, {"syscalls": 0.0}) for _ in range(budget.HOLD_INTERVALS)]
    assert restored[-1].value == ("syscalls",) and g.steps == []
    assert g.decide(3.5, 0.05, {"syscalls": 0.04}) is None  # over, but nothing worth shedding


SHARED = {"raw_tracepoint__sys_enter": ("syscalls", "read_latency", "file_opens"),  # sys_enter.c
          "tracepoint__syscalls__sys_exit_read": ("read_latency",),
          "tracepoint__syscalls__sys_exit_openat": ("file_opens",)}


def test_the_sets_of_a_costly_shared_program_are_detached_together():
    """A syscall flood: the raw sys_enter costs the most, and detaching any
    one of its sets alone would not stop it."""
    g = governor(max_cpu=3.0, latency=False, owners=SHARED)
    costs = {"raw_tracepoint__sys_enter": 20.0, "tracepoint__syscalls__sys_exit_read": 5.0,
             "tracepoint__syscalls__sys_exit_openat": 0.1}
    step = g.decide(30.0, 25.1, costs)
    assert step.value == ("file_opens", "read_latency", "syscalls")  # one interval, not three
    assert g.state(4.0, 0.0, 4.0).describe() == "detached: file_opens, read_latency, syscalls"


def test_the_smallest_group_that_fits_the_budget_is_taken():
    g = governor(max_cpu=5.0, latency=False, owners=SHARED)
    costs = {"raw_tracepoint__sys_enter": 3.0, "tracepoint__syscalls__sys_exit_read": 6.0}
    # 11 > 5: read_latency alone saves 6 and fits; all three would save 9
    assert g.decide(11.0, 9.0, costs).value == ("read_latency",)
    # still over: the raw sys_enter's remaining sets go (read_latency's part of it is not counted twice)
    assert g.decide(8.0, 3.0, {"raw_tracepoint__sys_enter": 3.0}).value == ("file_opens", "syscalls")
    assert g.saving(frozenset(), {"raw_tracepoint__sys_enter": 3.0}) == 0.0


def test_a_set_whose_programs_are_all_shared_saves_nothing_alone():
    g = governor(max_cpu=5.0, latency=False, owners=SHARED)
    costs = {"raw_tracepoint__sys_enter": 9.0}
    assert g.saving(frozenset({"syscalls"}), costs) == 0.0
    assert g.saving(frozenset({"syscalls", "read_latency", "file_opens"}), costs) == 9.0
    assert g.decide(12.0, 9.0, costs).value == ("file_opens", "read_latency", "syscalls")


def test_program_costs_are_shares_of_a_cpu():
    costs = budget.program_costs({"raw_tracepoint__sys_enter": 200_000_000, "x": 50_000_000}, interval_s=2.0)
    assert costs == pytest.approx({"raw_tracepoint__sys_enter": 10.0, "x": 2.5})


def test_sampled_latency_is_marked_through_filters_and_json():
    # the kernel counted each timed call as the 16 it stands for: not scaled again here
    lat = aggregate.latency([("dd", 7, 10, 48, 48000, 0), ("cat", 8, 12, 16, 40000, 0)], sampled_1_in=16)
    assert lat.estimated and lat.total.count == 64 and lat.total.sum_ns == 88000
    assert snapshots.rows_filtered("read_latency", lat, filters.Filter(comm="dd"), {}).sampled_1_in == 16
    snap = snapshots.new(1e9, 5.0, read_latency=lat,
                    budget=Budget(5.0, 7.5, 6.0, 1.5, latency_sampled_1_in=16, detached=("file_opens",)))
    d = json.loads(json.dumps(snapshots.to_dict(snap)))
    assert d["read_latency"]["sampled_1_in"] == 16 and d["read_latency"]["estimated"] is True
    assert d["budget"]["degraded"] is True and d["budget"]["detached"] == ["file_opens"]
    again = snapshots.from_dict(d)
    assert again.read_latency.sampled_1_in == 16 and again.budget == snap.budget
    assert again.budget.describe() == "latency sampled 1 in 16; detached: file_opens"
    assert snapshots.by_container(again).read_latency.sampled_1_in == 16


def test_snapshots_without_a_budget_say_null():
    d = snapshots.to_dict(snapshots.new(1e9, 5.0))
    assert d["budget"] is None and d["read_latency"]["estimated"] is False
    assert snapshots.from_dict(d).budget is None


@pytest.mark.parametrize("value,message", [("0", "above 0"), ("-3", "above 0"), ("lots", "not a number"),
                                           ("nan", "above 0"), ("1e9", "at most")])
def test_max_cpu_rejects_what_is_not_a_share_of_a_cpu(value, message, capsys):
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args([f"--max-cpu={value}"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "--max-cpu" in err and message in err


def test_max_cpu_takes_a_percent_sign():
    assert build_parser().parse_args(["--max-cpu", "2.5%"]).max_cpu == 2.5


def _overhead(interval_s: float):
    import threading

    from ebpftop.sources.overhead import Overhead
    from ebpftop.sources.program_stats import ProgramStats

    stats = ProgramStats(lambda: {}, lambda name: "")
    return Overhead(5.0, interval_s, None, stats, {}, {}, (), {}, threading.Lock())


def test_the_budget_window_turns_the_statistics_on_for_a_part_of_the_interval(monkeypatch):
    """--max-cpu without --probe-cost: the statistics' fd is held for the
    window only, and what the window measured is the next poll's load."""
    import os
    import time

    from ebpftop.sources import bpf_syscall

    opened = []

    def enable():
        r, w = os.pipe()
        os.close(w)
        opened.append(r)
        return r

    monkeypatch.setattr(bpf_syscall, "enable_run_time_stats", enable)
    overhead = _overhead(interval_s=0.5)
    assert overhead.window_s == pytest.approx(0.1)  # a fifth of a short interval
    with overhead.lock:
        overhead.open_window()
        overhead.open_window()  # one window at a time
    assert len(opened) == 1 and overhead._window_fd == opened[0]
    time.sleep(0.3)
    assert overhead._window_fd is None  # closed by its timer
    seconds, run_times = overhead._window
    assert 0.09 < seconds < 0.3 and run_times == {}  # no programs loaded here
    assert _overhead(interval_s=5.0).window_s == budget.WINDOW_S


def test_without_the_statistics_the_budget_says_so_once(monkeypatch):
    import errno

    from ebpftop.sources import bpf_syscall

    def enable():
        raise OSError(errno.EINVAL, "Invalid argument")

    monkeypatch.setattr(bpf_syscall, "enable_run_time_stats", enable)
    overhead = _overhead(interval_s=5.0)
    for _ in range(3):
        with overhead.lock:
            overhead.open_window()
    assert len(overhead.notices) == 1 and "only ebpftop's own CPU is measured" in overhead.notices[0]
    assert overhead._window_fd is None
