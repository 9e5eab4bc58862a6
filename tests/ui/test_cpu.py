"""The CPU tab: where ebpftop opens, its keys, its drill-down to threads,
and SVG snapshots of its views (hand-built snapshots: no kernel)."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static, TabbedContent

from ebpftop.app import EbpftopApp
from ebpftop.panes.cpu import CpuProcessTable, CpuThreadTable, HotFunctionTable, split_bar
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
        await pilot.press(KEY["network"], KEY["cpu"], "t", "t", "t")  # the key is the CPU tab's own, and goes round
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


def _two_intervals():
    first = every_part_snapshot()
    return [first, every_part_snapshot(first.time + 5)]


def _summary(view) -> str:
    return str(view.query_one("#summary", Static).render())


async def test_t_goes_on_to_the_profiles_hot_functions_and_flame_graph_and_w_sets_its_window():
    app = EbpftopApp(ListSource(_two_intervals()), auto_poll=False, clock=lambda: 0.0)
    async with app.run_test(size=SIZE) as pilot:
        await feed(app, pilot, polls=2)
        view = app.query_one("#view-cpu")
        await pilot.press("t", "t")
        assert isinstance(view.table, HotFunctionTable) and app.focused is view.table
        assert _cells(view.table, 4)[:2] == ["heap_getnextslot", "ExecQual"]  # the most self first
        assert _cells(view.table, 0)[0] == "54.5"  # 120 of 220 samples
        assert "440 samples over the last minute" in _summary(view)  # both intervals
        assert "2 without a stack (marked [stack lost])" not in _summary(view)  # 2 in each: 4 over the window
        assert "4 without a stack" in _summary(view)
        await pilot.press("w")
        assert "440 samples over the last 5 minutes" in _summary(view)
        await pilot.press("w")
        assert "440 samples over every kept interval" in _summary(view)
        await pilot.press("w")
        assert "220 samples over this interval" in _summary(view)
        await pilot.press("w")
        assert "440 samples over the last minute" in _summary(view)  # w goes round
        await pilot.press("t")
        graph = str(view.query_one("#flame", Static).render())
        assert "all (440 samples)" in graph and "heap_getnextslot" in graph and "tcp_recvmsg" in graph
        assert view.query_one("#flame-box").display and not view.table.display
        await pilot.press("t")
        assert isinstance(view.table, CpuProcessTable)


async def test_the_profile_follows_the_scope_and_the_filter():
    app = EbpftopApp(ListSource(_two_intervals()), auto_poll=False, clock=lambda: 0.0)
    async with app.run_test(size=SIZE) as pilot:
        await feed(app, pilot, polls=2)
        view = app.query_one("#view-cpu")
        view.table.move_cursor(row=1)  # curl
        await pilot.press("enter", "t", "t")
        assert app.flt.pid == 4242
        assert _cells(view.table, 4) == ["[unknown in libcurl.so.4]", "_start", "main"]
        assert "18 samples" in _summary(view) and "pid 4242" in _summary(view)
        await pilot.press("t")
        assert "pid 4242 (18 samples)" in str(view.query_one("#flame", Static).render())


async def _one_poll(pilot):
    await feed(pilot.app, pilot)


def test_cpu_tab(snap_compare):
    assert snap_compare(_app(), terminal_size=SIZE, run_before=_one_poll)


def test_cpu_threads_of_a_process(snap_compare):
    assert snap_compare(_app(), press=["enter"], terminal_size=SIZE, run_before=_one_poll)


def test_cpu_run_queue_latency(snap_compare):
    assert snap_compare(_app(), press=["t"], terminal_size=SIZE, run_before=_one_poll)


def test_cpu_hot_functions(snap_compare):
    assert snap_compare(_app(), press=["t", "t"], terminal_size=SIZE, run_before=_one_poll)


def test_cpu_flame_graph(snap_compare):
    assert snap_compare(_app(), press=["t", "t", "t"], terminal_size=SIZE, run_before=_one_poll)
