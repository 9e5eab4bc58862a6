"""The CPU tab: where ebpftop opens, its keys, its drill-down to threads,
and SVG snapshots of its views (hand-built snapshots: no kernel)."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static, TabbedContent

from ebpftop.app import EbpftopApp
from ebpftop.panes.cpu import CpuProcessTable, CpuThreadTable, split_bar
from ebpftop.panes.latency import LatencyTable
from ebpftop.sets.cpu import CpuThread
from tests.ui.harness import KEY, ListSource, feed
from tests.unit.snapshots import every_part_snapshot

SIZE = (150, 30)


def _app() -> EbpftopApp:
    return EbpftopApp(ListSource([every_part_snapshot()]), auto_poll=False, clock=lambda: 0.0)


def _cells(table, col: int) -> list[str]:
    return [(table.get_row_at(r)[col].plain if isinstance(table.get_row_at(r)[col], Text)
             else str(table.get_row_at(r)[col])).strip() for r in range(table.row_count)]


async def test_ebpftop_opens_on_the_cpu_tab_the_busiest_first_and_t_shows_the_run_queue():
    app = _app()
    async with app.run_test(size=SIZE) as pilot:
        await feed(app, pilot)
        assert app.query_one(TabbedContent).active == "cpu"
        view = app.query_one("#view-cpu")
        assert isinstance(view.table, CpuProcessTable) and app.focused is view.table
        assert _cells(view.table, 1) == ["postgres", "curl"]  # by CPU%, the most first
        assert _cells(view.table, 2) == ["82.0", "0.4"]  # 4.1 s of 5 s on CPU, its two threads
        summary = str(view.query_one("#summary", Static).render())
        assert "cpu0 84% · cpu1 18% · 51% of 2 CPUs" in summary and "≈ 3 slices estimated" in summary
        await pilot.press("t")
        assert isinstance(view.table, LatencyTable) and app.focused is view.table
        assert "run queue latency" in str(view.query_one("#histogram", Static).render())
        assert _cells(view.table, 0) == ["postgres", "curl"]
        await pilot.press(KEY["network"], KEY["cpu"], "t")  # the key is the CPU tab's own, and goes round
        assert isinstance(view.table, CpuProcessTable)


async def test_enter_on_a_process_shows_its_threads_which_sum_to_it_and_backspace_returns():
    app = _app()
    async with app.run_test(size=SIZE) as pilot:
        await feed(app, pilot)
        view = app.query_one("#view-cpu")
        await pilot.press("enter")
        assert app.flt.pid == 100
        assert isinstance(view.table, CpuThreadTable) and view.table.display
        assert _cells(view.table, 0) == ["100", "101"]
        threads = [t for t in app.latest.cpu_threads if t.pid == 100]
        assert sum(t.on_cpu_ns for t in threads) == 4_100_000_000  # the process row's ON CPU
        await pilot.press("backspace")
        assert isinstance(view.table, CpuProcessTable) and view.table.display and app.flt.pid is None


def test_the_split_bar_gives_each_state_its_share_of_the_cells():
    t = CpuThread(1, 1, "x", 500, 250, 125, 125, 0, 0)
    bar = split_bar(t, width=16)
    assert bar.plain == "█" * 8 + "▓" * 4 + "▒" * 2 + "·" * 2
    assert split_bar(CpuThread(1, 1, "x", 1, 1, 1, 0, 0, 0), width=16).cell_len == 16  # remainders fill it
    assert split_bar(CpuThread(1, 1, "x", 0, 0, 0, 0, 0, 0)).plain == ""


async def _one_poll(pilot):
    await feed(pilot.app, pilot)


def test_cpu_tab(snap_compare):
    assert snap_compare(_app(), terminal_size=SIZE, run_before=_one_poll)


def test_cpu_threads_of_a_process(snap_compare):
    assert snap_compare(_app(), press=["enter"], terminal_size=SIZE, run_before=_one_poll)


def test_cpu_run_queue_latency(snap_compare):
    assert snap_compare(_app(), press=["t"], terminal_size=SIZE, run_before=_one_poll)
