"""SVG snapshots of each pane, unfiltered and filtered, replaying the
real-kernel recording.  After an intended change: make snapshots, then look
at tests/ui/__snapshots__/ before committing."""

from __future__ import annotations

import pytest

from ebpftop.filters import Filter
from ebpftop.panes.tabs import TABS
from tests.ui.harness import KEY, RECORDING, SIZE, feed, replay_app

DATA = RECORDING.parent

# The recording predates TCP traffic: its Network snapshots show the new
# connections (t t t); the traffic views have their own, from hand-built data.
PANE_PRESS = {"network": [KEY["network"], "t", "t", "t"]}
PANE_KEYS = {t.id: t.key for t in TABS}  # a snapshot of every tab, unfiltered and filtered


async def _two_polls(pilot):
    await feed(pilot.app, pilot, polls=2)


@pytest.mark.parametrize("pane", list(PANE_KEYS))
def test_pane(snap_compare, pane):
    press = PANE_PRESS.get(pane, [PANE_KEYS[pane]])
    assert snap_compare(replay_app(), press=press, terminal_size=SIZE, run_before=_two_polls)


@pytest.mark.parametrize("pane", list(PANE_KEYS))
def test_pane_filtered(snap_compare, pane):
    press = [*PANE_PRESS.get(pane, [PANE_KEYS[pane]]), "slash", *"db-", "enter"]
    if pane in ("network",):
        press = [*PANE_PRESS[pane], "slash", *"web", "enter"]
    assert snap_compare(replay_app(), press=press, terminal_size=SIZE, run_before=_two_polls)


# At 80x24 (htop's and a serial console's size) every tab, from the
# recording that has its probe set: every tab on the bar, labelled, no line
# cut mid-word, the Latency tab stacked.
RECORDING_OF = {"cpu": DATA / "cpu.jsonl", "disk": DATA / "disk.jsonl"}


@pytest.mark.parametrize("pane", list(PANE_KEYS))
def test_pane_at_80x24(snap_compare, pane):
    press = PANE_PRESS.get(pane, [PANE_KEYS[pane]])
    app = replay_app(RECORDING_OF.get(pane, RECORDING))
    assert snap_compare(app, press=press, terminal_size=(80, 24), run_before=_two_polls)


def test_started_filtered_from_the_command_line(snap_compare):
    assert snap_compare(replay_app(flt=Filter(comm="cache")), press=[KEY["page_faults"]], terminal_size=SIZE, run_before=_two_polls)


def test_udp_flows(snap_compare):
    assert snap_compare(replay_app(), press=[KEY["network"], "u"], terminal_size=SIZE, run_before=_two_polls)


def test_udp_flows_filtered(snap_compare):
    assert snap_compare(replay_app(), press=[KEY["network"], "u", "slash", *"stats", "enter"], terminal_size=SIZE,
                        run_before=_two_polls)


def test_latency_side_by_side_on_a_wide_terminal(snap_compare):
    assert snap_compare(replay_app(), press=[KEY["latency"]], terminal_size=(170, 40), run_before=_two_polls)


def test_write_latency(snap_compare):
    assert snap_compare(replay_app(), press=[KEY["latency"], "w"], terminal_size=SIZE, run_before=_two_polls)


def test_help(snap_compare):
    assert snap_compare(replay_app(), press=["question_mark"], terminal_size=SIZE, run_before=_two_polls)


def _sample_app():
    from ebpftop.app import EbpftopApp
    from tests.ui.harness import ListSource
    from tests.unit.snapshots import sample_snapshot

    return EbpftopApp(ListSource([sample_snapshot()]), auto_poll=False, clock=lambda: 0.0)


async def _one_poll(pilot):
    await feed(pilot.app, pilot, polls=1)


def test_tcp_connections_with_traffic(snap_compare):
    assert snap_compare(_sample_app(), press=[KEY["network"]], terminal_size=(150, 30), run_before=_one_poll)


def test_tcp_traffic_per_process(snap_compare):
    assert snap_compare(_sample_app(), press=[KEY["network"], "t"], terminal_size=(150, 30), run_before=_one_poll)


def test_closed_tcp_connections(snap_compare):
    assert snap_compare(_sample_app(), press=[KEY["network"], "t", "t"], terminal_size=(150, 30), run_before=_one_poll)


def _container_app():
    from ebpftop.app import EbpftopApp
    from tests.ui.harness import ListSource
    from tests.unit.snapshots import container_snapshot

    return EbpftopApp(ListSource([container_snapshot()]), auto_poll=False, clock=lambda: 0.0)


def test_container_column(snap_compare):
    assert snap_compare(_container_app(), press=[KEY["syscalls"]], terminal_size=SIZE, run_before=_one_poll)


def test_grouped_by_container(snap_compare):
    assert snap_compare(_container_app(), press=[KEY["syscalls"], "g"], terminal_size=SIZE, run_before=_one_poll)


def test_file_opens_grouped_by_container(snap_compare):
    assert snap_compare(_container_app(), press=[KEY["file_opens"], "g"], terminal_size=SIZE, run_before=_one_poll)


def _timeline_app():
    from ebpftop.app import EbpftopApp
    from tests.ui.harness import ListSource
    from tests.ui.test_app import _timeline

    return EbpftopApp(ListSource(_timeline(12)), auto_poll=False, clock=lambda: 0.0)


async def _twelve_polls(pilot):
    await feed(pilot.app, pilot, polls=12)


def test_rewound_four_intervals(snap_compare):
    assert snap_compare(_timeline_app(), press=[KEY["syscalls"], *["left_square_bracket"] * 4], terminal_size=SIZE,
                        run_before=_twelve_polls)


def test_latency_heatmap(snap_compare):
    assert snap_compare(replay_app(), press=[KEY["latency"], "h"], terminal_size=SIZE, run_before=_two_polls)


def test_latency_sampled_under_max_cpu(snap_compare):
    from tests.ui.export_screenshots import degraded_app

    assert snap_compare(degraded_app(), press=[KEY["latency"]], terminal_size=SIZE, run_before=_two_polls)


def test_a_pane_detached_under_max_cpu(snap_compare):
    from tests.ui.export_screenshots import degraded_app

    assert snap_compare(degraded_app(), press=[KEY["syscalls"]], terminal_size=SIZE, run_before=_two_polls)
