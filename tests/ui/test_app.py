"""Pilot tests: every key, the filter, sorting, pause, help, replay, and
untrusted names that must stay plain text."""

from __future__ import annotations

import pytest
from rich.text import Text
from textual.widgets import DataTable, Input, Static, TabbedContent

from ebpftop.app import EbpftopApp
from ebpftop.filters import Filter
from ebpftop.panes.help import HelpScreen
from ebpftop.panes.network import TcpTable, TcpTrafficTable, UdpTable
from ebpftop.panes.table import SortableTable
from ebpftop.panes.tabs import TABS
from ebpftop.render import duration
from ebpftop.sets.file_opens import FileOpenRow
from ebpftop.sets.syscalls import SyscallRow
from ebpftop.sets.udp import UdpFlow
from tests.ui.harness import KEY, SIZE, ListSource, feed, replay_app
from tests.unit.snapshots import replace, sample_snapshot


def table_of(app, pane: str) -> SortableTable:
    return app.query_one(f"#view-{pane}").table  # the table the view shows


def column_values(table: DataTable, col: int) -> list[str]:
    out = []
    for r in range(table.row_count):
        v = table.get_row_at(r)[col]
        out.append((v.plain if isinstance(v, Text) else str(v)).strip())
    return out


async def test_number_keys_and_tab_switch_panes():
    app = replay_app()
    async with app.run_test(size=SIZE) as pilot:
        await feed(app, pilot)
        tabs = app.query_one(TabbedContent)
        assert tabs.active == TABS[0].id
        for t in TABS:
            await pilot.press(t.key)
            assert tabs.active == t.id
        await pilot.press("tab")
        assert tabs.active == TABS[0].id
        await pilot.press("shift+tab")
        assert tabs.active == TABS[-1].id
        await pilot.press("shift+tab", "shift+tab", "shift+tab")
        assert tabs.active == TABS[-4].id
        assert app.focused is table_of(app, TABS[-4].id)


async def test_w_switches_the_latency_pane_between_read_and_write():
    app = EbpftopApp(ListSource([sample_snapshot()]), auto_poll=False, clock=lambda: 0.0)
    async with app.run_test(size=SIZE) as pilot:
        await feed(app, pilot)
        await pilot.press(KEY["latency"])
        hist = app.query_one("#view-latency").query_one("#histogram", Static)
        assert "read() latency" in str(hist.render())
        assert column_values(table_of(app, "latency"), 0) == ["postgres", "nginx"]
        await pilot.press(KEY["network"], "w")  # the Latency tab's key: nothing in another tab
        assert app.query_one(TabbedContent).active == "network"
        await pilot.press(KEY["latency"])
        assert "read() latency" in str(hist.render())
        await pilot.press("w")
        assert "write() latency" in str(hist.render())
        assert "8 writes" in str(hist.render())
        assert column_values(table_of(app, "latency"), 0) == ["postgres"]
        await pilot.press("w")
        assert "read() latency" in str(hist.render())


async def test_arrow_keys_move_in_the_table():
    app = replay_app()
    async with app.run_test(size=SIZE) as pilot:
        await feed(app, pilot)
        await pilot.press(KEY["syscalls"])
        table = table_of(app, "syscalls")
        assert table.cursor_row == 0
        await pilot.press("down", "down")
        assert table.cursor_row == 2
        await pilot.press("pagedown")
        assert table.cursor_row > 2


async def test_filter_applies_to_every_pane_at_each_keystroke():
    app = replay_app()
    async with app.run_test(size=SIZE) as pilot:
        await feed(app, pilot)
        await pilot.press(KEY["network"], "t", "t", "t")  # network: new connections (the recording predates TCP traffic)
        await pilot.press(KEY["syscalls"])
        assert table_of(app, "syscalls").row_count > 3
        await pilot.press("slash", "w", "e", "b")
        # no poll happened: the filter works on the snapshot in hand
        assert column_values(table_of(app, "syscalls"), 0) == ["webserver"]
        # Tab moves between panes while the filter keeps the keys: each pane
        # is filtered the moment it is shown
        await pilot.press("tab")
        assert column_values(table_of(app, "latency"), 0) == ["webserver"]
        await pilot.press("tab")
        assert table_of(app, "file_opens").row_count >= 1
        assert set(column_values(table_of(app, "file_opens"), 3)) == {"webserver"}
        await pilot.press("tab")
        assert set(column_values(table_of(app, "page_faults"), 0)) == {"webserver"}
        await pilot.press("tab")
        assert set(column_values(table_of(app, "processes"), 4)) <= {"webserver"}
        for _ in TABS:  # on round to the Network tab (probes and alerts: never filtered by name)
            if app.query_one(TabbedContent).active == "network":
                break
            await pilot.press("tab")
        assert set(column_values(table_of(app, "network"), 2)) == {"webserver"}
        await pilot.press("tab")
        # case-insensitive, and digits go to the filter, not to the pane keys
        await pilot.press("backspace", "backspace", "backspace", "D", "B", "-")
        assert column_values(table_of(app, "syscalls"), 0) == ["db-writer"]
        await pilot.press("backspace", "backspace", "backspace", "1", "2")  # typed into the filter
        assert app.query_one(TabbedContent).active == "syscalls"
        assert app.query_one("#filter", Input).value == "12"


async def test_a_huge_pane_shows_the_first_rows_and_says_so():
    from ebpftop.panes.table import MAX_TABLE_ROWS

    rows = tuple(SyscallRow(f"p{i}", i + 1, ((i + 1, i + 1),)) for i in range(MAX_TABLE_ROWS + 250))
    snap = replace(sample_snapshot(), syscalls=rows)
    app = EbpftopApp(ListSource([snap]), auto_poll=False, clock=lambda: 0.0)
    async with app.run_test(size=SIZE) as pilot:
        await feed(app, pilot)
        await pilot.press(KEY["syscalls"])
        table = table_of(app, "syscalls")
        assert table.row_count == MAX_TABLE_ROWS
        assert column_values(table, 0)[0] == f"p{MAX_TABLE_ROWS + 249}"  # the busiest first
        summary = str(app.query_one("#view-syscalls").query_one("#summary", Static).render())
        assert f"showing the first {MAX_TABLE_ROWS} of {MAX_TABLE_ROWS + 250} rows" in summary
        await pilot.press("slash", "p", "1", "7")
        assert set(column_values(table, 0)) >= {"p17", "p170", "p171"}


async def test_enter_keeps_the_filter_and_escape_clears_it():
    app = replay_app()
    async with app.run_test(size=SIZE) as pilot:
        await feed(app, pilot)
        await pilot.press(KEY["syscalls"], "slash", "c", "a", "c", "h", "e", "enter")
        assert app.flt.comm == "cache"
        assert app.focused is table_of(app, "syscalls")
        status = app.query_one("#status-line", Static).render()
        assert "filter: name ~ cache" in str(status)
        await pilot.press(KEY["latency"])  # keys are pane keys again
        assert app.query_one(TabbedContent).active == "latency"
        await pilot.press("slash", "escape")
        assert app.flt.comm == ""
        await pilot.press(KEY["syscalls"])
        assert table_of(app, "syscalls").row_count > 3


async def test_sort_key_cycles_columns_and_reverses():
    app = replay_app()
    async with app.run_test(size=SIZE) as pilot:
        await feed(app, pilot)
        await pilot.press(KEY["syscalls"])
        table = table_of(app, "syscalls")
        counts = [int(x.replace(",", "")) for x in column_values(table, 1)]
        assert counts == sorted(counts, reverse=True)
        await pilot.press("s")  # next column: PER SEC
        assert table.sort_index == 2
        await pilot.press("S")
        rates = [int(x.replace(",", "")) for x in column_values(table, 2)]
        assert rates == sorted(rates)
        await pilot.press("s", "s", "s", "s")  # PIDS, SHARE, TREND, then wraps to COMM, ascending
        assert table.sort_index == 0
        names = column_values(table, 0)
        assert names == sorted(names)


async def test_clicking_a_header_sorts_by_it_and_again_reverses():
    app = replay_app()
    async with app.run_test(size=SIZE) as pilot:
        await feed(app, pilot)
        await pilot.press(KEY["page_faults"])
        table = table_of(app, "page_faults")
        table.post_message(DataTable.HeaderSelected(table, table.ordered_columns[1].key, 1, Text("PID")))
        await pilot.pause()
        assert table.sort_index == 1
        first = column_values(table, 1)
        table.post_message(DataTable.HeaderSelected(table, table.ordered_columns[1].key, 1, Text("PID")))
        await pilot.pause()
        assert column_values(table, 1) == list(reversed(first))


async def test_pause_holds_the_display_and_resume_shows_the_latest():
    snaps = [sample_snapshot(t=1000.0), sample_snapshot(t=1005.0, scale=2)]
    app = EbpftopApp(ListSource(snaps), auto_poll=False, clock=lambda: 0.0)
    async with app.run_test(size=SIZE) as pilot:
        await feed(app, pilot)
        await pilot.press(KEY["syscalls"], "p")
        app.accept_snapshot(app.source.poll())
        await pilot.pause()
        assert column_values(table_of(app, "syscalls"), 1)[0] == "9,000"
        assert "PAUSED" in str(app.query_one("#status-line", Static).render())
        await pilot.press("p")
        assert column_values(table_of(app, "syscalls"), 1)[0] == "18,000"


async def test_help_lists_every_binding_and_closes():
    app = replay_app()
    async with app.run_test(size=SIZE) as pilot:
        await feed(app, pilot)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        from ebpftop.panes.help import key_label
        from ebpftop.panes.tabs import TABS

        documented = " ".join(k for k, _ in app.screen.rows)
        views = [b for t in TABS for b in t.view.BINDINGS]
        for b in [*app.BINDINGS, *SortableTable.BINDINGS, *views]:
            assert key_label(b.key.split(",")[0]) in documented, f"key {b.key} is not on the help screen"
        lines = [what for _, what in app.screen.rows]
        assert "Latency tab: switch the histogram and table to the next series (read() and write())" in lines
        assert "Probes tab: measure ebpftop's own BPF programs, and every other (on/off)" in lines
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


async def test_a_poll_while_help_is_open_updates_the_panes_behind_it():
    snaps = [sample_snapshot(t=1000.0), sample_snapshot(t=1005.0, scale=2)]
    app = EbpftopApp(ListSource(snaps), auto_poll=False, clock=lambda: 0.0)
    async with app.run_test(size=SIZE) as pilot:
        await feed(app, pilot)
        await pilot.press(KEY["syscalls"], "question_mark")
        app.accept_snapshot(app.source.poll())
        app.update_status_line()
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert column_values(table_of(app, "syscalls"), 1)[0] == "18,000"


async def test_enter_scopes_every_pane_to_the_process_and_backspace_returns():
    app = replay_app()
    async with app.run_test(size=SIZE) as pilot:
        await feed(app, pilot)
        await pilot.press(KEY["page_faults"])  # page faults: one row per process
        faults = table_of(app, "page_faults")
        pid = int(column_values(faults, 1)[0])
        comm = column_values(faults, 0)[0]
        await pilot.press("enter")
        assert app.flt.pid == pid
        assert set(column_values(faults, 1)) == {str(pid)}
        assert f"scope pid {pid}" in str(app.query_one("#status-line", Static).render())
        await pilot.press(KEY["file_opens"])
        assert set(column_values(table_of(app, "file_opens"), 2)) <= {str(pid)}
        await pilot.press(KEY["syscalls"])
        # the process's syscalls, under its name (and, before its exec, its parent's)
        assert comm in column_values(table_of(app, "syscalls"), 0)
        assert set(column_values(table_of(app, "syscalls"), 3)) == {"1"}  # one pid each
        await pilot.press("backspace")
        assert app.flt.pid is None
        assert table_of(app, "syscalls").row_count > 1


async def test_enter_on_a_name_with_many_pids_scopes_to_that_exact_name():
    app = replay_app()
    async with app.run_test(size=SIZE) as pilot:
        await feed(app, pilot)
        await pilot.press(KEY["syscalls"], "slash", *"er", "enter")  # webserver, db-writer, cache-warmer ...
        names = column_values(table_of(app, "syscalls"), 0)
        assert len(names) > 1
        await pilot.press("enter")
        assert column_values(table_of(app, "syscalls"), 0) == [names[0]]
        await pilot.press(KEY["latency"])
        assert column_values(table_of(app, "latency"), 0) in ([names[0]], [])
        await pilot.press("backspace")
        assert app.flt.exact_comm is None and app.flt.comm == "er"


class StatsSource(ListSource):
    probe_stats = "off"

    def set_probe_stats(self, on):
        self.probe_stats = "ok" if on else "off"
        return self.probe_stats


async def test_probes_pane_and_the_c_key():
    from ebpftop.model import ProbeCost

    snap = replace(sample_snapshot(), probe_stats="ok", probes=(
        ProbeCost("raw_tracepoint__sys_enter", 1000, 60_000, hook_name="raw_syscalls:sys_enter (raw)"),
        ProbeCost("tracepoint__syscalls__sys_exit_read", 10, 900)))
    app = EbpftopApp(StatsSource([snap]), auto_poll=False, clock=lambda: 0.0)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(KEY["probes"])
        state = app.query_one("#view-probes").query_one("#probe-state", Static)
        assert "off: press c" in str(state.render())
        await pilot.press("c")
        assert app.source.probe_stats == "ok"
        assert "measuring" in str(state.render())
        await feed(app, pilot)
        await pilot.press(KEY["probes"])
        assert column_values(table_of(app, "probes"), 2) == ["raw_syscalls:sys_enter (raw)", "syscalls:sys_exit_read"]
        assert column_values(table_of(app, "probes"), 5) == ["60", "90"]
        await pilot.press("c")
        assert app.source.probe_stats == "off"


async def test_alerts_show_at_once_whatever_pane_is_open():
    from ebpftop.sets.file_opens import Alert

    hostile = Alert(1000.0, 66, 1, 1000, "[@click=app.quit]x", "/root/.ssh/\x1b[2Jid_rsa", 3)
    snap = replace(sample_snapshot(), alerts=(Alert(999.0, 42, 1, 0, "cat", "/etc/shadow", -13), hostile))
    app = EbpftopApp(ListSource([snap]), auto_poll=False, clock=lambda: 0.0)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(KEY["syscalls"])
        await feed(app, pilot)
        assert app.query_one(TabbedContent).active == "syscalls"  # no pane switch needed...
        messages = [n.message for n in app._notifications]
        # ...one notification per burst says it: the latest, and how many more
        assert len(messages) == 1
        assert "\\x1b[2Jid_rsa" in messages[0]  # escaped, and markup=False: no action ran
        assert f"(and 1 more: see {KEY['alerts']} Alerts)" in messages[0]
        assert f"alerts: 2 ({KEY['alerts']})" in str(app.query_one("#status-line", Static).render())
        await pilot.press(KEY["alerts"])
        table = table_of(app, "alerts")
        assert column_values(table, 6) == ["/root/.ssh/\\x1b[2Jid_rsa", "/etc/shadow"]
        assert column_values(table, 5) == ["opened: ok", "opened: EACCES"]
        await pilot.press("slash", "z", "z", "z", "enter")  # the name filter never hides an alert
        await pilot.press(KEY["alerts"])
        assert table.row_count == 2
        assert app.is_running


class LiveAlertsSource(ListSource):
    def __init__(self, snapshots, alerts):
        super().__init__(snapshots)
        self.alerts = list(alerts)

    def poll_alerts(self):
        out, self.alerts = self.alerts, []
        return out


async def test_live_alerts_arrive_between_polls_and_are_not_counted_twice():
    from ebpftop.sets.file_opens import Alert

    a = Alert(999.0, 42, 1, 0, "cat", "/etc/shadow", 3)
    snap = replace(sample_snapshot(), alerts=(a,))
    app = EbpftopApp(LiveAlertsSource([snap], [a]), auto_poll=False, clock=lambda: 0.0)
    async with app.run_test(size=SIZE) as pilot:
        await feed(app, pilot, polls=0)
        app.take_alerts(app.source.poll_alerts())
        await pilot.pause()
        assert app.history.alerts_total == 1
        app.accept_snapshot(app.source.poll())  # the interval's snapshot holds the same alert
        await pilot.pause()
        assert app.history.alerts_total == 1


async def test_q_quits():
    app = replay_app()
    async with app.run_test(size=SIZE) as pilot:
        await feed(app, pilot)
        await pilot.press("q")
    assert app.return_code == 0


async def test_replay_plays_to_the_end_and_says_so():
    app = replay_app()
    async with app.run_test(size=SIZE) as pilot:
        await feed(app, pilot, polls=4)
        assert app.ended
        line = str(app.query_one("#status-line", Static).render())
        assert "replay" in line and "recording ended" in line
        assert app.history.polls == 3


async def test_replay_with_timers_polls_by_itself(recording):
    from ebpftop.sources.replay import ReplaySource

    app = EbpftopApp(ReplaySource.from_file(recording, speed=40.0))
    async with app.run_test(size=SIZE) as pilot:
        for _ in range(200):
            if app.ended:
                break
            await pilot.pause(0.02)
        assert app.ended and app.history.polls == 3


async def test_resizing_to_80x24_and_back():
    app = replay_app()
    async with app.run_test(size=SIZE) as pilot:
        await feed(app, pilot)
        for size in ((80, 24), (40, 10), (200, 60), (80, 24)):
            await pilot.resize_terminal(*size)
            await pilot.press(KEY["latency"])
            await pilot.pause()
        assert app.query_one(TabbedContent).active == "latency"


HOSTILE = ["[/]", "[bold red]x", "[@click=app.quit]x", "\x1b[2J\x1b]52;c;aGk=\x07", "rtl\u202eexe"]


@pytest.mark.parametrize("name", HOSTILE)
async def test_hostile_names_and_paths_are_plain_text(name):
    snap = sample_snapshot()
    snap = replace(
        snap,
        syscalls=(SyscallRow(name, 10, ((7, 10),)),) + snap.syscalls,
        file_opens=(FileOpenRow(name, 7, "/tmp/" + name, 1, 0),),
    )
    app = EbpftopApp(ListSource([snap]), auto_poll=False, clock=lambda: 0.0)
    async with app.run_test(size=SIZE) as pilot:
        await feed(app, pilot)
        await pilot.press(KEY["syscalls"])
        cell = table_of(app, "syscalls").get_cell_at((3, 0))
        from ebpftop.text import visible

        assert isinstance(cell, Text)
        assert cell.plain == visible(name)
        assert not cell.spans  # no style came from the name
        assert "\x1b" not in cell.plain and "\u202e" not in cell.plain
        # clicking the row must not run an action hidden in the name
        await pilot.click(table_of(app, "syscalls"), offset=(3, 4))
        await pilot.press(KEY["file_opens"])
        path_cell = table_of(app, "file_opens").get_cell_at((0, 4))
        assert path_cell.plain == visible("/tmp/" + name)
        # the filter takes the hostile text too, and shows it escaped
        await pilot.press("slash")
        await pilot.press(*[c for c in name if c.isprintable() and c != "\u202e"][:6])
        await pilot.press("enter")
        assert app.is_running
    assert app.return_code in (None, 0)


async def test_u_switches_the_network_pane_between_tcp_and_udp():
    app = EbpftopApp(ListSource([sample_snapshot()]), auto_poll=False, clock=lambda: 0.0)
    async with app.run_test(size=SIZE) as pilot:
        await feed(app, pilot)
        await pilot.press(KEY["network"])
        pane = app.query_one("#view-network")
        state = pane.query_one("#probe-state", Static)
        assert "TCP connections" in str(state.render())
        await pilot.press(KEY["file_opens"], "u")  # the Network tab's key: nothing in another tab
        assert app.query_one(TabbedContent).active == "file_opens" and "TCP connections" in str(state.render())
        await pilot.press(KEY["network"], "u")
        assert app.query_one(TabbedContent).active == "network"
        assert isinstance(pane.table, UdpTable) and pane.table.display and not pane.query_one(TcpTable).display
        assert app.focused is pane.table
        assert "UDP flows" in str(state.render())
        assert column_values(pane.table, 1) == ["systemd-resolve", "curl", "?"]  # most bytes first
        assert column_values(pane.table, 7) == ["12", "12", "0"]  # datagrams sent
        assert column_values(pane.table, 8) == ["1.4 KiB", "480 B", "0 B"]
        assert "u: TCP" in str(pane.query_one("#summary", Static).render())
        await pilot.press("enter")  # drill down from a flow to its process
        assert app.flt.pid == 53
        assert column_values(pane.table, 1) == ["systemd-resolve"]
        await pilot.press("backspace", "u")  # back to the TCP view it came from
        assert isinstance(pane.table, TcpTrafficTable) and pane.table.display
        await pilot.press("t", "t", "t")  # connections -> per process -> closed -> new connections
        assert isinstance(pane.table, TcpTable) and pane.table.display


async def test_the_udp_view_says_why_udp_is_not_running():
    snap = sample_snapshot()
    snap = replace(snap, udp=(), status={**snap.status, "udp": "needs the cgroup v2 hierarchy mounted"})
    app = EbpftopApp(ListSource([snap]), auto_poll=False, clock=lambda: 0.0)
    async with app.run_test(size=SIZE) as pilot:
        await feed(app, pilot)
        await pilot.press(KEY["network"])
        state = app.query_one("#view-network").query_one("#probe-state", Static)
        assert "running" in str(state.render()) and "not running" not in str(state.render())
        await pilot.press("u")
        assert "not running: needs the cgroup v2 hierarchy mounted" in str(state.render())


async def test_port_filter_keeps_udp_flows_on_that_port():
    app = EbpftopApp(ListSource([sample_snapshot()]), flt=Filter(port=5353), auto_poll=False, clock=lambda: 0.0)
    async with app.run_test(size=SIZE) as pilot:
        await feed(app, pilot)
        await pilot.press(KEY["network"], "u")
        table = app.query_one("#view-network").table
        assert column_values(table, 4) == ["5353"] and column_values(table, 6) == ["5353"]
        assert column_values(table, 0) == ["-"]  # owner unknown


@pytest.mark.parametrize("name", HOSTILE)
async def test_hostile_names_in_udp_flows_are_plain_text(name):
    snap = replace(sample_snapshot(), udp=(UdpFlow(7, name, "ipv4", "127.0.0.1", 1, "127.0.0.1", 2, 1, 1, 0, 0),))
    app = EbpftopApp(ListSource([snap]), auto_poll=False, clock=lambda: 0.0)
    async with app.run_test(size=SIZE) as pilot:
        await feed(app, pilot)
        await pilot.press(KEY["network"], "u")
        from ebpftop.text import visible

        cell = app.query_one("#view-network").table.get_cell_at((0, 1))
        assert cell.plain == visible(name) and not cell.spans


async def test_latency_histograms_go_side_by_side_when_the_terminal_widens():
    app = EbpftopApp(ListSource([sample_snapshot()]), auto_poll=False, clock=lambda: 0.0)
    async with app.run_test(size=SIZE) as pilot:
        await feed(app, pilot)
        await pilot.press(KEY["latency"])
        hist = app.query_one("#view-latency").query_one("#histogram", Static)
        assert "write() latency" not in str(hist.render())
        await pilot.resize_terminal(170, 40)
        await pilot.pause()
        both = str(hist.render())
        assert "read() latency" in both and "write() latency" in both
        first = both.splitlines()[0]
        assert first.index("write() latency") > first.index("read() latency")  # one line, two columns
        assert column_values(table_of(app, "latency"), 0) == ["postgres", "nginx"]  # the table: read()
        await pilot.press("w")
        assert column_values(table_of(app, "latency"), 0) == ["postgres"]
        await pilot.resize_terminal(*SIZE)
        await pilot.pause()
        assert "read() latency" not in str(hist.render())  # narrow again: the one w chose


async def test_keys_typed_faster_than_a_redraw_after_slash_go_to_the_filter():
    """A fast typist (or a paste) sends "/sql" before the app has moved the
    focus: the letters must still go to the filter, not to s (sort), q (quit)."""
    from textual import events

    app = EbpftopApp(ListSource([sample_snapshot()]), auto_poll=False, clock=lambda: 0.0)
    async with app.run_test(size=SIZE) as pilot:
        await feed(app, pilot)
        await pilot.press(KEY["syscalls"])
        for key, char in (("slash", "/"), ("c", "c"), ("u", "u"), ("q", "q"), ("l", "l")):
            app.post_message(events.Key(key, char))  # all queued before any is handled
        await pilot.pause()
        assert app.is_running
        assert app.query_one("#filter", Input).value == "cuql"
        assert app.flt.comm == "cuql"
        assert app.query_one(TabbedContent).active == "syscalls"


async def test_rows_that_look_the_same_never_crash_the_app():
    """Two threads failing the same watched open within a microsecond, or a
    recording's millisecond times, made identical row keys: DataTable raised
    DuplicateKey and the app exited (any user could end the live TUI)."""
    from ebpftop.sets.file_opens import Alert
    from ebpftop.sets.processes import ProcessEvent
    from ebpftop.sets.tcp import TcpConnection

    alert = Alert(999.0, 42, 1, 65534, "reader", "/etc/shadow", -13)
    exec_row = ProcessEvent(1000.0, "exec", 77, 1, "env", "/usr/bin/env", ("env", "true"))
    conn = TcpConnection(1000.0, 5, "c", "ipv4", "127.0.0.1", 1, "127.0.0.1", 2, "connect")
    snap = replace(sample_snapshot(), alerts=(alert,) * 3, processes=(exec_row, exec_row), tcp=(conn, conn))
    app = EbpftopApp(ListSource([snap, snap]), auto_poll=False, clock=lambda: 0.0)
    async with app.run_test(size=SIZE) as pilot:
        await feed(app, pilot, polls=2)
        for tab in ("alerts", "processes", "network"):
            await pilot.press(KEY[tab])
        assert table_of(app, "alerts").row_count == 6  # all kept: alerts are history
        assert table_of(app, "processes").row_count >= 2
        assert table_of(app, "network").row_count >= 2
        await pilot.press("enter")  # drill-down on a duplicated row names its process
        assert app.is_running


async def test_no_toast_covers_the_tables_on_a_small_terminal():
    from ebpftop.sets.file_opens import Alert

    snap = replace(sample_snapshot(), alerts=(Alert(999.0, 42, 1, 0, "cat", "/etc/shadow", 3),) * 3)
    app = EbpftopApp(ListSource([snap]), auto_poll=False, clock=lambda: 0.0)
    async with app.run_test(size=(80, 24)) as pilot:
        await feed(app, pilot)
        assert list(app._notifications) == []
        assert f"alerts: 3 ({KEY['alerts']})" in str(app.query_one("#status-line", Static).render())


async def test_every_field_of_a_crafted_recording_is_drawn_escaped():
    """Addresses, direction, the event kind and probe names came from a
    recording straight to the terminal (OSC 52 set the clipboard)."""
    from ebpftop.model import ProbeCost
    from ebpftop.sets.processes import ProcessEvent
    from ebpftop.sets.tcp import TcpConnection

    esc = "\x1b]52;c;aGk=\x07"
    conn = TcpConnection(1000.0, 5, "c", "ipv4", esc, 1, esc, 2, esc)
    event = ProcessEvent(1000.0, esc, 77, 1, "x")
    snap = replace(sample_snapshot(), tcp=(conn,), processes=(event,), probes=(ProbeCost(esc, 1, 1),),
                   probe_stats="ok", lost={esc: 1}, skipped={esc: 2})
    app = EbpftopApp(ListSource([snap]), auto_poll=False, clock=lambda: 0.0)
    async with app.run_test(size=SIZE) as pilot:
        await feed(app, pilot)
        cells = []
        for pane in ("network", "processes", "probes"):
            await pilot.press(KEY[pane])
            table = table_of(app, pane)
            cells += [table.get_cell_at((0, c)) for c in range(len(table.columns))]
        cells.append(app.query_one("#status-line", Static).render())
        for cell in cells:
            assert "\x1b" not in str(cell) and "\x07" not in str(cell), cell
        assert app.is_running


async def test_the_network_pane_opens_on_tcp_traffic_busiest_first_and_t_sums_it_per_process():
    app = EbpftopApp(ListSource([sample_snapshot()]), auto_poll=False, clock=lambda: 0.0)
    async with app.run_test(size=(160, 36)) as pilot:
        await feed(app, pilot)
        await pilot.press(KEY["network"])
        pane = app.query_one("#view-network")
        assert isinstance(pane.table, TcpTrafficTable)
        assert column_values(pane.table, 1) == ["nginx", "curl", "curl"]  # most bytes in the interval first
        assert column_values(pane.table, 2) == ["[::1]:8080", "10.0.0.2:51000", "10.0.0.2:50990"]
        assert column_values(pane.table, 4) == ["ESTABLISHED", "ESTABLISHED", "CLOSE"]
        assert column_values(pane.table, 5) == ["30s", "1.0s", "2.0s"]  # age; a closed one: its lifetime
        assert column_values(pane.table, 6) == ["976.6 KiB/s", "160 B/s", "20 B/s"]  # sent / 5 s
        assert column_values(pane.table, 10) == ["2", "0", "0"]  # retransmits
        assert column_values(pane.table, 11) == ["0/0", "0/0", "0/1"]  # resets sent/received
        summary = str(pane.query_one("#summary", Static).render())
        assert "2 open, 1 closed" in summary and "3 resets to closed ports" in summary
        await pilot.press("t")
        assert column_values(pane.table, 1) == ["nginx", "curl"]
        assert column_values(pane.table, 2) == ["1", "2"]  # connections
        assert column_values(pane.table, 4) == ["3.9 KiB/s", "293.4 KiB/s"]  # received per second: 20,000 B / 5 s
        await pilot.press("slash", *"cur", "enter")  # the filter and drill-down work here too
        assert column_values(pane.table, 1) == ["curl"]
        await pilot.press("enter")
        assert app.flt.pid == 4242


async def test_closed_connections_are_kept_across_intervals_newest_first():
    from ebpftop.panes.network import TcpClosedTable

    first = sample_snapshot()
    later = replace(sample_snapshot(t=first.time + 5), tcp_closed=(
        first.tcp_connections[1]._replace(state="CLOSE", closed=first.time + 4, tx_total=900),))
    app = EbpftopApp(ListSource([first, later]), auto_poll=False, clock=lambda: 0.0)
    async with app.run_test(size=(160, 36)) as pilot:
        await feed(app, pilot, polls=2)
        await pilot.press(KEY["network"], "t", "t")
        pane = app.query_one("#view-network")
        assert isinstance(pane.table, TcpClosedTable)
        assert column_values(pane.table, 4) == ["10.0.0.2:51000", "10.0.0.2:50990"]  # newest first, both kept
        assert column_values(pane.table, 6) == ["5.0s", "2.0s"]  # lifetimes
        assert column_values(pane.table, 7) == ["900 B", "700 B"]
        assert "2 since start" in str(pane.query_one("#summary", Static).render())


async def test_the_probes_pane_shows_other_tools_programs_with_their_holders():
    from ebpftop.model import ProbeCost

    hostile = "x\x1b[31m"
    snap = replace(sample_snapshot(), probe_stats="ok", probes=(
        ProbeCost("raw_tracepoint__sys_enter", 1000, 60_000, prog_id=7, prog_type="raw_tracepoint",
                  hook_name="raw_syscalls:sys_enter (raw)"),
        ProbeCost("trace_connect", 50, 200_000, prog_id=9, prog_type="kprobe", ours=False,
                  holders=((4321, "falco"), (4322, hostile))),
        ProbeCost("sd_fw_egress", 0, 0, prog_id=3, prog_type="cgroup_skb", ours=False)))
    app = EbpftopApp(ListSource([snap]), auto_poll=False, clock=lambda: 0.0)
    async with app.run_test(size=(160, 36)) as pilot:
        await feed(app, pilot)
        await pilot.press(KEY["probes"])
        table = table_of(app, "probes")
        assert column_values(table, 0) == ["9", "7", "3"]  # the most CPU first
        assert column_values(table, 1) == ["falco[4321], x\\x1b[31m[4322]", "ebpftop", "-"]
        assert column_values(table, 2) == ["kprobe trace_connect", "raw_syscalls:sys_enter (raw)", "cgroup_skb sd_fw_egress"]
        summary = str(app.query_one("#view-probes").query_one("#summary", Static).render())
        assert "3 programs, 1 of them ebpftop's" in summary


def _container_app(*snapshots):
    from tests.unit.snapshots import container_snapshot

    return EbpftopApp(ListSource(list(snapshots) or [container_snapshot()]), auto_poll=False, clock=lambda: 0.0)


async def test_the_container_column_shows_when_a_row_is_in_a_container():
    app = _container_app()
    async with app.run_test(size=SIZE) as pilot:
        await feed(app, pilot)
        await pilot.press(KEY["syscalls"])
        table = table_of(app, "syscalls")
        assert [c.key for c in table.cols][:2] == ["comm", "container"]
        rows = dict(zip(column_values(table, 0), column_values(table, 1)))
        assert rows == {"postgres": "db", "nginx": "web", "python3": "shop-7d9f/api", "sh": "web", "curl": "host",
                        "sshd": "host"}
        for pane, col in (("file_opens", 4), ("page_faults", 1), ("processes", 5), ("latency", 1)):
            await pilot.press(KEY[pane])
            assert "web" in column_values(table_of(app, pane), col), pane
    # a host with no containers: no column
    app = _container_app(sample_snapshot())
    async with app.run_test(size=SIZE) as pilot:
        await feed(app, pilot)
        await pilot.press(KEY["syscalls"])
        assert "container" not in [c.key for c in table_of(app, "syscalls").cols]


async def test_the_filter_matches_container_names():
    app = _container_app()
    async with app.run_test(size=SIZE) as pilot:
        await feed(app, pilot)
        await pilot.press(KEY["syscalls"], "slash", *"web", "enter")
        assert sorted(column_values(table_of(app, "syscalls"), 0)) == ["nginx", "sh"]


async def test_g_groups_every_pane_by_container_enter_scopes_to_one_and_backspace_returns():
    app = _container_app()
    async with app.run_test(size=SIZE) as pilot:
        await feed(app, pilot)
        await pilot.press(KEY["syscalls"], "g")
        table = table_of(app, "syscalls")
        assert [c.label.split(" ")[0] for c in table.cols][:2] == ["CONTAINER", "SYSCALLS"]
        assert dict(zip(column_values(table, 0), column_values(table, 1))) == {
            "db": "9,000", "web": "4,300", "shop-7d9f/api": "2,500", "host": "200"}
        assert "by container" in str(app.query_one("#status-line", Static).render())
        await pilot.press(KEY["page_faults"])
        assert dict(zip(column_values(table_of(app, "page_faults"), 0), column_values(table_of(app, "page_faults"), 1))) \
            == {"db": "700", "host": "90", "web": "60"}
        await pilot.press(KEY["syscalls"])
        table.move_cursor(row=column_values(table, 0).index("web"))
        await pilot.press("enter")
        assert app.flt.container == "web" and not app.grouped
        assert sorted(column_values(table, 0)) == ["nginx", "sh"]
        assert "scope container web" in str(app.query_one("#status-line", Static).render())
        await pilot.press(KEY["file_opens"])
        assert set(column_values(table_of(app, "file_opens"), 4)) == {"web"}
        await pilot.press("backspace")
        assert app.flt.container is None and app.grouped
        assert len(column_values(table_of(app, "file_opens"), 0)) == 3  # web's path, api's, the host's


async def test_hostile_container_names_are_plain_text():
    from ebpftop.model import Container
    from tests.unit.snapshots import WEB, container_snapshot

    name = "[red]x[/]\x1b[2J\u202e"
    snap = container_snapshot()
    snap = replace(snap, containers={**snap.containers, WEB: Container("docker", "a" * 64, name)})
    app = _container_app(snap)
    async with app.run_test(size=SIZE) as pilot:
        await feed(app, pilot)
        await pilot.press(KEY["syscalls"])
        from ebpftop.text import visible

        cells = [table_of(app, "syscalls").get_cell_at((r, 1)) for r in range(table_of(app, "syscalls").row_count)]
        assert visible(name) in [c.plain for c in cells]
        assert all("\x1b" not in c.plain for c in cells)
        await pilot.press("g")
        assert visible(name) in column_values(table_of(app, "syscalls"), 0)


async def test_a_recording_of_real_containers_groups_into_them():
    """tests/ui/data/containers.jsonl: Docker containers web, db and cache
    (tests/ui/make_container_recording.py) next to the host's processes."""
    from tests.ui.harness import HERE

    app = replay_app(HERE / "data" / "containers.jsonl")
    async with app.run_test(size=SIZE) as pilot:
        await feed(app, pilot)
        await pilot.press(KEY["syscalls"])
        table = table_of(app, "syscalls")
        keys = [c.key for c in table.cols]
        named = {(r[0], r[keys.index("container")]) for r in
                 [[table.get_cell_at((i, j)).plain.strip() for j in range(len(keys))] for i in range(table.row_count)]}
        assert {("db-writer", "db"), ("webserver", "web"), ("cache-warmer", "cache")} <= named
        await pilot.press("g")
        assert {"web", "db", "cache", "host"} <= set(column_values(table, 0))


def _timeline(n: int = 5):
    """n snapshots 5 s apart; snapshot i has one process "s<i>" with i+1
    syscalls x 100, a page-fault row and a new connection of its own."""
    from ebpftop.sets.page_faults import PageFaultRow
    from ebpftop.sets.tcp import TcpConnection
    from tests.unit.snapshots import T0

    snaps = []
    for i in range(n):
        t = T0 + 5 * i
        snaps.append(replace(
            sample_snapshot(t), syscalls=(SyscallRow(f"s{i}", 100 * (i + 1), ((10 + i, 100 * (i + 1)),)),),
            page_faults=(PageFaultRow("pf", 7, 10),),
            tcp=(TcpConnection(t - 1, 40 + i, f"c{i}", "ipv4", "10.0.0.2", 50000 + i, "10.0.0.9", 443, "connect"),)))
    return snaps


async def test_brackets_step_back_and_forward_in_time_and_l_returns_live():
    app = EbpftopApp(ListSource(_timeline()), auto_poll=False, clock=lambda: 0.0)
    async with app.run_test(size=SIZE) as pilot:
        await feed(app, pilot, polls=5)
        await pilot.press(KEY["syscalls"])
        table = table_of(app, "syscalls")
        assert column_values(table, 0) == ["s4"]
        await pilot.press("left_square_bracket")
        assert column_values(table, 0) == ["s3"]
        status = str(app.query_one("#status-line", Static).render())
        assert "◀" in status and "5 s before the latest" in status
        await pilot.press("left_square_bracket", "left_square_bracket")
        assert column_values(table, 0) == ["s1"] and column_values(table, 1) == ["200"]
        await pilot.press("right_square_bracket")
        assert column_values(table, 0) == ["s2"]
        # a poll while in the past keeps the past on screen
        app.accept_snapshot(replace(sample_snapshot(app.latest.time + 5),
                                    syscalls=(SyscallRow("s5", 1, ((1, 1),)),)))
        await pilot.pause()
        assert column_values(table, 0) == ["s2"]
        # the history-kept panes show that moment too: new connections up to it
        await pilot.press(KEY["network"], "t", "t", "t")
        assert sorted(column_values(table_of(app, "network"), 2)) == ["c0", "c1", "c2"]
        await pilot.press(KEY["page_faults"])
        assert column_values(table_of(app, "page_faults"), 4) == ["30"]  # since start, at that moment
        await pilot.press("left_curly_bracket")  # a minute back: the oldest kept
        await pilot.press(KEY["syscalls"])
        assert column_values(table, 0) == ["s0"]
        await pilot.press("slash", "s", "0", "enter")  # the filter works in the past
        assert column_values(table, 0) == ["s0"]
        await pilot.press("escape", "l")
        assert not app.rewound
        await pilot.press("slash", "escape")
        assert column_values(table_of(app, "syscalls"), 0) == ["s5"]
        assert "◀" not in str(app.query_one("#status-line", Static).render())
        await pilot.press("left_square_bracket", "right_curly_bracket")  # a minute forward from the past: live
        assert not app.rewound and column_values(table, 0) == ["s5"]


def _marked(strip: Text) -> int:
    """The position of the shown moment in a timeline strip's sparkline."""
    return next(span.start for span in strip.spans if "reverse" in str(span.style))


async def test_each_pane_has_its_headline_over_time_with_the_shown_moment_marked():
    app = EbpftopApp(ListSource(_timeline()), auto_poll=False, clock=lambda: 0.0)
    async with app.run_test(size=SIZE) as pilot:
        await feed(app, pilot, polls=5)
        await pilot.press(KEY["syscalls"])
        strip = app.query_one("#view-syscalls #timeline", Static).content
        label = "syscalls/s "
        assert strip.plain.startswith(label)
        spark = strip.plain[len(label):len(label) + 5]
        assert spark == "▂▃▅▆█"  # 20, 40, 60, 80, 100 syscalls/s, scaled to the largest
        assert _marked(strip) == len(label) + 4 and " 100 (max 100) · 25 s kept" in strip.plain
        await pilot.press("left_square_bracket", "left_square_bracket")
        strip = app.query_one("#view-syscalls #timeline", Static).content
        assert _marked(strip) == len(label) + 2 and " 60 (max 100)" in strip.plain
        for pane, headline in (("network", "TCP bytes/s"), ("latency", "read() p99"), ("file_opens", "opens/s"),
                               ("page_faults", "page faults/s"), ("processes", "fork/exec/exit")):
            await pilot.press(KEY[pane])
            strip = app.query_one(f"#view-{pane} #timeline", Static).content.plain
            assert strip.startswith(headline), pane
            if pane == "latency":  # p99 over time, the shown interval's p50 beside it
                assert ", p50 " in strip
            if pane == "file_opens":  # and the failures
                assert ", 1 failed in 5 s (max" in strip


async def test_h_shows_latency_over_time_as_a_heatmap_that_follows_the_rewind():
    from ebpftop.model import Bucket, Histogram, Latency, ProcessLatency

    snaps = _timeline(4)
    # interval i: 10 reads in [1K, 2K) and i reads in [1M, 2M)
    snaps = [replace(s, read_latency=Latency((ProcessLatency("db", 1, Histogram(
        (Bucket(1024, 2048, 10),) + ((Bucket(1 << 20, 1 << 21, i),) if i else ()))),)))
        for i, s in enumerate(snaps)]
    app = EbpftopApp(ListSource(snaps), auto_poll=False, clock=lambda: 0.0)
    async with app.run_test(size=SIZE) as pilot:
        await feed(app, pilot, polls=4)
        await pilot.press(KEY["latency"], "h")
        text = app.query_one("#view-latency #histogram", Static).content
        lines = text.plain.split("\n")
        slow = next(line for line in lines if "≥ 1.0 ms" in line)
        fast = next(line for line in lines if "≥ 1.0 µs" in line)
        cells = lambda line: line[12:16]  # noqa: E731 - the four intervals' cells
        assert cells(slow) == cells(fast) == "    "  # coloured backgrounds, no glyphs
        coloured = [s for s in text.spans if str(s.style).startswith("on ")]
        assert len(coloured) == 4 + 3 + 8  # fast row 4 cells, slow row 3 (none in interval 0), the scale 8
        assert "      shown " + "···^" in lines  # the shown (newest) interval marked under its column
        # the axis is continuous: every empty bucket from 1 µs to 1 ms has its row, slowest on top
        axis = [line[:11].strip() for line in lines if line[:11].strip().startswith("≥")]
        assert axis == ["≥ " + duration(1 << k) for k in range(20, 9, -1)], axis  # 1.0 ms, 524.3 µs, ... 1.0 µs
        await pilot.press("left_square_bracket")
        lines = app.query_one("#view-latency #histogram", Static).content.plain.split("\n")
        assert "      shown " + "··^·" in lines
        await pilot.press("h")
        assert "read() latency," in app.query_one("#view-latency #histogram", Static).content.plain


async def test_replay_at_keeps_the_intervals_before_it_to_rewind_into():
    from ebpftop.sources.replay import ReplaySource, split_at

    snaps = _timeline(6)
    before, played = split_at(snaps, "-10s")  # the last three: 10 s before the end and on
    assert [len(before), len(played)] == [3, 3]
    app = EbpftopApp(ReplaySource(played), auto_poll=False, clock=lambda: 0.0, backlog=before)
    async with app.run_test(size=SIZE) as pilot:
        await feed(app, pilot, polls=1)
        await pilot.press(KEY["syscalls"])
        assert column_values(table_of(app, "syscalls"), 0) == ["s3"]
        await pilot.press("left_square_bracket")
        assert column_values(table_of(app, "syscalls"), 0) == ["s2"]
        await pilot.press("left_curly_bracket")
        assert column_values(table_of(app, "syscalls"), 0) == ["s0"]


async def test_rows_that_change_much_carry_their_trend_up_to_the_moment_shown():
    from tests.unit.snapshots import T0

    snaps = [replace(sample_snapshot(T0 + 5 * i), syscalls=(
        SyscallRow("grow", 10 * 2 ** i, ((1, 10 * 2 ** i),)), SyscallRow("flat", 100, ((2, 100),))))
        for i in range(6)]
    app = EbpftopApp(ListSource(snaps), auto_poll=False, clock=lambda: 0.0)
    async with app.run_test(size=SIZE) as pilot:
        await feed(app, pilot, polls=6)
        await pilot.press(KEY["syscalls"])
        table = table_of(app, "syscalls")
        col = [c.key for c in table.cols].index("trend")
        trends = dict(zip(column_values(table, 0), column_values(table, col)))
        assert trends == {"grow": "▁▁▁▂▄█", "flat": ""}
        await pilot.press("left_square_bracket", "left_square_bracket")
        trends = dict(zip(column_values(table, 0), column_values(table, col)))
        assert trends == {"grow": "▁▂▄█", "flat": ""}  # up to the moment shown


async def test_drill_down_in_the_past_scopes_that_moment_and_backspace_returns():
    app = EbpftopApp(ListSource(_timeline()), auto_poll=False, clock=lambda: 0.0)
    async with app.run_test(size=SIZE) as pilot:
        await feed(app, pilot, polls=5)
        await pilot.press(KEY["syscalls"], "left_square_bracket", "left_square_bracket", "enter")
        assert app.rewound and app.flt.pid == 12  # s2's pid
        assert column_values(table_of(app, "syscalls"), 0) == ["s2"]
        await pilot.press(KEY["network"], "t", "t", "t")  # new connections of pid 12 up to that moment: none
        assert column_values(table_of(app, "network"), 2) == []
        await pilot.press("backspace", KEY["syscalls"])
        assert app.flt.pid is None and app.rewound and column_values(table_of(app, "syscalls"), 0) == ["s2"]


async def _tables(app, pilot) -> dict:
    """Every pane's table as text, each Network view too."""
    out = {}
    for pane, modes in (("network", ("traffic", "by_process", "closed", "new")), ("syscalls", ("",)),
                        ("latency", ("",)), ("file_opens", ("",)), ("page_faults", ("",)), ("processes", ("",)),
                        ("alerts", ("",))):
        await pilot.press(KEY[pane])
        for i, mode in enumerate(modes):
            if i:
                await pilot.press("t")
            table = table_of(app, pane)
            out[(pane, mode)] = [[table.get_cell_at((r, c)).plain for c in range(len(table.cols))]
                                 for r in range(table.row_count)]
            # and the summary line, with its counts since start
            out[(pane, mode, "summary")] = app.query_one(f"#view-{pane} #summary", Static).content.plain
        if pane == "network":
            await pilot.press("t")  # back to the first view
    return out


async def test_one_interval_back_every_pane_shows_exactly_what_it_showed_then():
    """The real recording: the app that took all three intervals and stepped
    back one shows, in every pane, what an app that took only two showed:
    the tables and the summary lines (their counts since start)."""
    rewound, then = replay_app(), replay_app()
    async with rewound.run_test(size=SIZE) as pilot:
        await feed(rewound, pilot, polls=3)
        live = await _tables(rewound, pilot)
        await pilot.press("left_square_bracket")
        got = await _tables(rewound, pilot)
    async with then.run_test(size=SIZE) as pilot:
        await feed(then, pilot, polls=2)
        want = await _tables(then, pilot)
    assert got == want
    assert live != want  # the third interval differs: the view really moved
    assert sum(len(rows) for rows in want.values()) > 50  # real contents in most panes


async def test_shed_load_shows_in_the_status_line_the_latency_pane_and_a_detached_pane():
    """--max-cpu: a degraded interval says what was shed; estimates are marked."""
    from ebpftop import aggregate
    from ebpftop.model import Budget

    base = sample_snapshot()
    # 3 timed reads, each counted by the kernel as the 16 it stands for
    lat = aggregate.latency([("postgres", 7, 12, 48, 48000, 0)], sampled_1_in=16)
    shed = Budget(5.0, 7.5, 6.4, 1.1, latency_sampled_1_in=16, detached=("file_opens",))
    status = {**base.status, "file_opens": "detached: over the --max-cpu budget of 5% of a CPU (attached again "
                                            "when the load falls)"}
    degraded = replace(base, time=base.time + 5, read_latency=lat, budget=shed, status=status, file_opens=())
    app = EbpftopApp(ListSource([base, degraded]), auto_poll=False, clock=lambda: 0.0)
    async with app.run_test(size=SIZE) as pilot:
        await feed(app, pilot)
        line = str(app.query_one("#status-line", Static).render())
        assert "DEGRADED" not in line
        await feed(app, pilot)
        line = str(app.query_one("#status-line", Static).render())
        assert "DEGRADED over --max-cpu 5% (7.5%): latency sampled 1 in 16; detached: file_opens" in line
        await pilot.press(KEY["latency"])
        hist = str(app.query_one("#view-latency").query_one("#histogram", Static).render())
        assert "≈ estimated: 1 read() in 16 timed (--max-cpu)" in hist
        assert "≈48 reads" in hist
        await pilot.press(KEY["file_opens"])
        state = str(app.query_one("#view-file_opens").query_one("#probe-state", Static).render())
        assert state.startswith("◐ detached: over the --max-cpu budget of 5% of a CPU")


async def test_every_notification_is_escaped_whatever_it_names():
    """Issue 23, finding 1: the flight recorder's notice (a snapshot's
    notices) named the alerting process raw: an OSC 0 set root's terminal
    title, an OSC 52 its clipboard.  Every toast goes through one escape."""
    from ebpftop.sets.file_opens import Alert
    from tests.unit.test_security import HOSTILE, RAW

    notices = tuple(f"flight recorder: alert: {name} opened /etc/shadow: the last 0.1 min go to /x" for name in HOSTILE)
    alerts = tuple(Alert(999.0 + i, 42, 1, 65534, name, f"/etc/{name}", -13) for i, name in enumerate(HOSTILE))
    app = EbpftopApp(ListSource([replace(sample_snapshot(), notices=notices, alerts=alerts)]), auto_poll=False,
                     clock=lambda: 0.0)
    async with app.run_test(size=SIZE) as pilot:
        await feed(app, pilot)
        shown = [(n.title, n.message) for n in app._notifications]
        assert len(shown) == len(HOSTILE) + 1  # each notice, and one toast for the burst of alerts
        assert not [ch for title, message in shown for ch in RAW + ("\n",) if ch in title + message], shown
        assert "\\x1b]52;c;cHdu\\x1b\\\\" in shown[1][1] and "x\\x0a../x opened" in shown[4][1]
        assert app.is_running


async def test_the_owner_of_a_program_held_by_201_processes_stays_narrow():
    """Issue 23, finding 9: every holder in the OWNER cell made it so wide
    that at 180 columns only ID and OWNER showed."""
    from ebpftop.model import ProbeCost

    pool = tuple((1000 + i, "worker") for i in range(201))
    snap = replace(sample_snapshot(), probe_stats="ok", probes=(
        ProbeCost("handle_exec", 500, 90_000, prog_id=11, prog_type="tracepoint", ours=False, holders=pool),
        ProbeCost("raw_tracepoint__sys_enter", 1000, 60_000, prog_id=7, prog_type="raw_tracepoint")))
    app = EbpftopApp(ListSource([snap]), auto_poll=False, clock=lambda: 0.0)
    async with app.run_test(size=(180, 36)) as pilot:
        await feed(app, pilot)
        await pilot.press(KEY["probes"])
        table = table_of(app, "probes")
        assert column_values(table, 1) == ["worker[1000] +200 more", "ebpftop"]
        widths = [c.get_render_width(table) for c in table.columns.values()]
        assert sum(widths) <= 180, widths  # every column on screen, PROGRAM last


async def test_a_replay_before_its_first_interval_says_it_reads_the_recording_not_that_it_compiles():
    """Issue 27: a replay said "starting: compiling and attaching the eBPF
    program…" until its first interval, though nothing is compiled."""
    app = replay_app()
    app.auto_poll = False
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        state = str(app.query_one("#view-cpu").query_one("#probe-state", Static).render())
        assert "reading the recording" in state and "compiling" not in state
