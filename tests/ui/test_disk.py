"""The Disk tab (per process, per device with its histograms, slow I/O and
its threshold keys), the Network tab's drops, and OOM kills in the
Processes and Alerts tabs, from hand-built snapshots (no kernel)."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from ebpftop.app import EbpftopApp
from ebpftop.panes.disk import DiskDeviceTable, DiskProcessTable, DiskSlowTable
from ebpftop.panes.network import DropTable
from ebpftop.sets.oom import OomKill
from tests.ui.harness import KEY, ListSource, feed
from tests.unit.snapshots import every_part_snapshot

SIZE = (150, 30)


class ReplayListSource(ListSource):
    kind = "replay"


def _app(source=None) -> EbpftopApp:
    return EbpftopApp(source or ListSource([every_part_snapshot()]), auto_poll=False, clock=lambda: 0.0)


def _cells(table, col: int) -> list[str]:
    return [(table.get_row_at(r)[col].plain if isinstance(table.get_row_at(r)[col], Text)
             else str(table.get_row_at(r)[col])).strip() for r in range(table.row_count)]


def _summary(view) -> str:
    return str(view.query_one("#summary", Static).render())


async def test_the_disk_tab_lists_processes_by_bytes_then_devices_with_histograms_then_slow_io():
    app = _app()
    async with app.run_test(size=SIZE) as pilot:
        await feed(app, pilot)
        await pilot.press(KEY["disk"])
        view = app.query_one("#view-disk")
        assert isinstance(view.table, DiskProcessTable) and app.focused is view.table
        assert _cells(view.table, 1) == ["kworker/u8:2 [wb_workfn]", "postgres", "postgres", "curl"]  # most bytes first
        assert _cells(view.table, 2)[:2] == ["vda", "vda"]
        assert _cells(view.table, 8)[1] == "900.0 µs"  # its average latency
        assert "8.0 MiB by kernel threads for others" in _summary(view)
        await pilot.press("t")
        assert isinstance(view.table, DiskDeviceTable) and app.focused is view.table
        assert _cells(view.table, 0) == ["vda", "vda", "loop3"]
        histograms = str(view.query_one("#device-histograms", Static).render())
        assert "vda write: 184 I/Os" in histograms and "queued (start to issue)" in histograms
        view.table.move_cursor(row=2)
        await pilot.pause()
        histograms = str(view.query_one("#device-histograms", Static).render())
        assert "loop3 read" in histograms and "not measured (no issue seen)" in histograms
        await pilot.press("t")
        assert isinstance(view.table, DiskSlowTable)
        assert _cells(view.table, 2) == ["kworker/u8:2 [wb_workfn]", "postgres"]  # newest first
        assert "I/O of 10.0 ms or more: 2 this interval" in _summary(view)
        await pilot.press("t")
        assert isinstance(view.table, DiskProcessTable)


async def test_the_slow_io_keys_change_the_threshold_live_and_the_list_at_once():
    source = ListSource([every_part_snapshot()])
    app = _app(source)
    async with app.run_test(size=SIZE) as pilot:
        await feed(app, pilot)
        await pilot.press(KEY["disk"], "t", "t")
        view = app.query_one("#view-disk")
        await pilot.press("greater_than_sign")
        assert source.options == [("slow_io_ms", 20.0)]
        assert _cells(view.table, 2) == []  # 14 and 11 ms: under 20 ms
        assert "I/O of 20.0 ms or more" in _summary(view)
        await pilot.press("less_than_sign", "less_than_sign")
        assert source.options[-1] == ("slow_io_ms", 5.0)
        assert len(_cells(view.table, 2)) == 2


async def test_a_recording_keeps_its_threshold_and_says_so():
    app = _app(ReplayListSource([every_part_snapshot()]))
    async with app.run_test(size=SIZE) as pilot:
        await feed(app, pilot)
        await pilot.press(KEY["disk"], "t", "t", "greater_than_sign")
        await pilot.pause()
        assert any("a recording was made with the options it shows" in n.message for n in app._notifications)
        assert "I/O of 10.0 ms or more" in _summary(app.query_one("#view-disk"))  # the view's threshold as well


async def test_drops_per_connection_then_the_hosts_rest_and_d_returns():
    app = _app()
    async with app.run_test(size=SIZE) as pilot:
        await feed(app, pilot)
        await pilot.press(KEY["network"], "d")
        view = app.query_one("#view-network")
        assert isinstance(view.table, DropTable) and app.focused is view.table
        assert _cells(view.table, 2) == ["NETFILTER_DROP", "SOCKET_FILTER", "TCP_OLD_DATA"]
        assert _cells(view.table, 1) == ["host (no socket)", "postgres", "? (not a followed TCP socket)"]
        assert "54 in 5 s, 12 on sockets of known processes" in _summary(view)
        await pilot.press("slash", "p", "o", "s", "t", "enter")
        assert _cells(view.table, 1) == ["postgres"]  # the host's rest belongs to no process
        await pilot.press("escape", "d")
        assert not isinstance(view.table, DropTable)


async def test_an_oom_kill_is_a_process_event_and_an_alert():
    snap = every_part_snapshot()
    kill = OomKill(snap.time - 1, 6000, "evil\x1b]0;PWNED\x07", 0, 100, 50, 0, 0, 4, 0, 6001, "hog")
    snap = snap.replace(oom_kills=(*snap.oom_kills, kill))
    app = _app(ListSource([snap]))
    async with app.run_test(size=SIZE) as pilot:
        await feed(app, pilot)
        (toast,) = [n for n in app._notifications if n.title == "OOM kill"]
        assert "\x1b" not in toast.message and "\\x1b]0;PWNED" in toast.message
        await pilot.press(KEY["processes"])
        view = app.query_one("#view-processes")
        kinds = _cells(view.table, 1)
        assert kinds.count("oom-kill") == 2 and "2 OOM kills" in _summary(view)
        await pilot.press(KEY["alerts"])
        view = app.query_one("#view-alerts")
        assert "killed by the OOM killer" in _cells(view.table, 5)
        assert "opened: EACCES" in _cells(view.table, 5)


async def _one_poll(pilot):
    await feed(pilot.app, pilot)


def _quiet_app() -> EbpftopApp:
    """Without alerts: no toast over the table."""
    return _app(ListSource([every_part_snapshot().replace(oom_kills=(), alerts=())]))


def test_disk_tab(snap_compare):
    assert snap_compare(_quiet_app(), press=[KEY["disk"]], terminal_size=SIZE, run_before=_one_poll)


def test_disk_devices(snap_compare):
    assert snap_compare(_quiet_app(), press=[KEY["disk"], "t"], terminal_size=SIZE, run_before=_one_poll)


def test_disk_slow_io(snap_compare):
    assert snap_compare(_quiet_app(), press=[KEY["disk"], "t", "t"], terminal_size=SIZE, run_before=_one_poll)


def test_network_drops(snap_compare):
    assert snap_compare(_quiet_app(), press=[KEY["network"], "d"], terminal_size=SIZE, run_before=_one_poll)
