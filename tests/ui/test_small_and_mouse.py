"""An 80x24 terminal (htop's and a serial console's size) and the mouse:
every tab on the bar and labelled, lines wrapped rather than cut, the
Latency tab stacked; a click on a tab shows it, a click on a column header
sorts by it, the wheel scrolls the table."""

from __future__ import annotations

from textual import events
from textual.widgets import Static, TabbedContent

from ebpftop.app import EbpftopApp
from ebpftop.panes.tabs import TABS, TABS_FULL_WIDTH
from tests.ui.harness import KEY, ListSource, feed, replay_app
from tests.unit.snapshots import every_part_snapshot, replace


async def test_at_80_columns_every_tab_is_on_the_bar_with_its_short_label_and_wider_the_full_one():
    app = replay_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await feed(app, pilot, polls=2)
        tabbed = app.query_one(TabbedContent)
        for t in TABS:
            tab = tabbed.get_tab(t.id)
            assert str(tab.label) == t.label(True) and 0 < tab.region.right <= 80, (t.id, tab.region)
        await pilot.resize_terminal(TABS_FULL_WIDTH + 2, 24)
        await pilot.pause()
        assert [str(tabbed.get_tab(t.id).label) for t in TABS][:3] == ["1 CPU", "2 Disk", "3 Network"]
        assert all(tabbed.get_tab(t.id).region.right <= TABS_FULL_WIDTH + 2 for t in TABS)


async def test_at_80_columns_the_summary_wraps_at_a_word_and_the_latency_tab_is_stacked():
    app = replay_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await feed(app, pilot, polls=2)
        await pilot.press(KEY["network"])
        summary = app.query_one("#view-network #summary", Static)
        text = str(summary.render())
        assert summary.region.height >= 2  # wrapped, not cut
        assert "t: " in text  # its last key hint, cut off before
        await pilot.press(KEY["latency"])
        view = app.query_one("#view-latency")
        histogram, table = view.query_one(".histogram-box"), view.table
        assert histogram.region.bottom <= table.region.y  # above it, not beside it
        assert [c.label.plain for c in table.columns.values()][-3:] == ["P50", "P90", "P99"]
        assert table.region.right <= 80


def _many_rows_app() -> EbpftopApp:
    from ebpftop.sets.syscalls import SyscallRow

    rows = tuple(SyscallRow(f"proc{i:02d}", 1000 - i, ((1000 + i, 1000 - i),)) for i in range(60))
    return EbpftopApp(ListSource([replace(every_part_snapshot(), syscalls=rows)]), auto_poll=False, clock=lambda: 0.0)


async def test_a_click_on_a_tab_shows_it_and_on_a_header_sorts_by_it_again_reverses():
    app = _many_rows_app()
    async with app.run_test(size=(120, 30)) as pilot:
        await feed(app, pilot)
        tabbed = app.query_one(TabbedContent)
        await pilot.click(tabbed.get_tab("syscalls"))
        assert tabbed.active == "syscalls"
        table = app.query_one("#view-syscalls").table
        first = [table.get_row_at(r)[0].plain for r in range(3)]
        assert first == ["proc00", "proc01", "proc02"]  # by count, the most first
        keys = [c.key.value for c in table.columns.values()]
        x = sum(c.get_render_width(table) for c in list(table.columns.values())[:keys.index("comm")]) + 1
        await pilot.click(table, offset=(x, 0))  # the COMM header
        assert table.cols[table.sort_index].key == "comm"
        names = [table.get_row_at(r)[0].plain for r in range(3)]
        await pilot.click(table, offset=(x, 0))
        again = [table.get_row_at(r)[0].plain for r in range(3)]
        assert sorted([names[0], again[0]]) == ["proc00", "proc59"]  # one way, then the other
        await pilot.click(tabbed.get_tab("cpu"))
        assert tabbed.active == "cpu"


async def test_the_wheel_scrolls_the_table():
    app = _many_rows_app()
    async with app.run_test(size=(120, 30)) as pilot:
        await feed(app, pilot)
        await pilot.press(KEY["syscalls"])
        table = app.query_one("#view-syscalls").table
        assert table.scroll_y == 0
        for _ in range(3):
            await pilot._post_mouse_events([events.MouseScrollDown], table, offset=(5, 5))
        await pilot.pause()
        assert table.scroll_y > 0


async def test_a_replays_tabs_say_they_replay_not_that_they_run():
    app = replay_app()
    async with app.run_test(size=(120, 30)) as pilot:
        await feed(app, pilot)
        for tab in ("syscalls", "latency"):
            await pilot.press(KEY[tab])
            state = str(app.query_one(f"#view-{tab} #probe-state", Static).render())
            assert state.startswith("▶ replaying · ") and "running" not in state, state
