"""k, n and N on a row: the signal picker, its confirmation, what is logged,
and what is refused (a replay, a rewound view).  A real child process
stands behind the row (no privilege needed to signal one's own child)."""

from __future__ import annotations

import signal
import subprocess

import pytest
from textual.widgets import Static

from ebpftop import act
from ebpftop.app import EbpftopApp
from ebpftop.panes.act import SignalScreen
from ebpftop.sets.cpu import CpuThread
from tests.ui.harness import ListSource, feed, replay_app
from tests.unit.snapshots import every_part_snapshot, replace

SIZE = (150, 30)


@pytest.fixture
def child():
    proc = subprocess.Popen(["sleep", "60"])
    for _ in range(100):
        if act.start_time(proc.pid) is not None and open(f"/proc/{proc.pid}/comm").read() == "sleep\n":
            break
    yield proc
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def _app_with(proc, start_shift: int = 0, snapshots: int = 1) -> EbpftopApp:
    """The CPU tab's busiest row is `proc` (its start time as read, shifted
    to play a pid taken over by another process)."""
    row = CpuThread(proc.pid, proc.pid, "sleep", 4_900_000_000, 0, 0, 100_000_000, 5, 0)
    snaps = [replace(every_part_snapshot(1000.0 + 5 * i), cpu_threads=(row,),
                     starts={proc.pid: act.start_time(proc.pid) + start_shift}) for i in range(snapshots)]
    return EbpftopApp(ListSource(snaps), auto_poll=False, clock=lambda: 0.0)


def _status(app) -> str:
    return str(app.query_one("#status-line", Static).render())


async def test_k_picks_sigterm_and_y_sends_it_to_the_rows_process_and_logs_it(child):
    app = _app_with(child)
    async with app.run_test(size=SIZE) as pilot:
        await feed(app, pilot)
        await pilot.press("k")
        assert isinstance(app.screen, SignalScreen)
        assert f"Send a signal to pid {child.pid} (sleep)" in str(app.screen.query_one("#signal-whom").render())
        await pilot.press("y")
        assert child.wait(timeout=5) == -signal.SIGTERM
        assert not isinstance(app.screen, SignalScreen)
        assert app.actions_log[-1][1] == f"sent SIGTERM to pid {child.pid} (sleep)"
        assert f"sent SIGTERM to pid {child.pid} (sleep)" in _status(app)


async def test_the_picker_moves_to_another_signal_and_esc_or_n_sends_nothing(child):
    app = _app_with(child)
    async with app.run_test(size=SIZE) as pilot:
        await feed(app, pilot)
        for cancel in ("escape", "n"):
            await pilot.press("k", "down", cancel)
            assert not isinstance(app.screen, SignalScreen)
        assert child.poll() is None and app.actions_log == []
        await pilot.press("k", "down", "enter")  # the second choice: KILL
        assert child.wait(timeout=5) == -signal.SIGKILL


async def test_a_row_whose_pid_went_to_another_process_is_refused_and_said(child):
    app = _app_with(child, start_shift=-300)  # the row's process started 3 s before the one holding the pid now
    async with app.run_test(size=SIZE) as pilot:
        await feed(app, pilot)
        await pilot.press("k", "y")
        assert child.poll() is None
        said = app.actions_log[-1][1]
        assert "its pid now belongs to another process" in said and "nothing done" in said
        await pilot.press("n")  # a renice is checked the same way
        assert "another process" in app.actions_log[-1][1]


async def test_n_renices_the_rows_process(child):
    app = _app_with(child)
    async with app.run_test(size=SIZE) as pilot:
        await feed(app, pilot)
        await pilot.press("n")
        assert app.actions_log[-1][1] == f"reniced pid {child.pid} (sleep) from 0 to 1 (1 thread)"


async def test_rewound_or_replayed_rows_are_from_the_past_and_nothing_is_sent(child):
    app = _app_with(child, snapshots=2)
    async with app.run_test(size=SIZE) as pilot:
        await feed(app, pilot, polls=2)
        await pilot.press("left_square_bracket", "k")
        assert app.rewound and not isinstance(app.screen, SignalScreen)
        assert child.poll() is None and app.actions_log == []
    replay = replay_app()
    async with replay.run_test(size=SIZE) as pilot:
        await feed(replay, pilot)
        await pilot.press("k", "n")
        assert not isinstance(replay.screen, SignalScreen) and replay.actions_log == []


async def test_on_a_container_row_the_picker_says_how_many_processes_it_reaches_and_each_is_checked():
    from ebpftop.model import Container

    procs = [subprocess.Popen(["sleep", "60"]) for _ in range(2)]
    try:
        for p in procs:
            for _ in range(100):
                if act.start_time(p.pid) is not None and open(f"/proc/{p.pid}/comm").read() == "sleep\n":
                    break
        rows = tuple(CpuThread(p.pid, p.pid, "sleep", 1_000_000_000, 0, 0, 4_000_000_000, 5, 0, cgroup=77)
                     for p in procs)
        snap = replace(every_part_snapshot(), cpu_threads=rows, containers={77: Container("docker", "ab12", "web")},
                       starts={procs[0].pid: act.start_time(procs[0].pid),
                               procs[1].pid: act.start_time(procs[1].pid) + 9})  # the second's pid was reused
        app = EbpftopApp(ListSource([snap]), auto_poll=False, clock=lambda: 0.0)
        async with app.run_test(size=SIZE) as pilot:
            await feed(app, pilot)
            await pilot.press("g")
            app.query_one("#view-cpu").table.move_cursor(row=[r[0].comm for r in app.query_one(
                "#view-cpu").table._shown].index("web"))
            await pilot.press("k")
            whom = str(app.screen.query_one("#signal-whom").render())
            assert f"2 processes of container web: pids {min(p.pid for p in procs)}, {max(p.pid for p in procs)}" \
                in whom, whom
            await pilot.press("y")
            assert procs[0].wait(timeout=5) == -signal.SIGTERM
            assert procs[1].poll() is None  # its start time did not match: refused, said
            said = [s for _, s in app.actions_log]
            assert any("another process" in s and str(procs[1].pid) in s for s in said), said
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


async def test_with_syslog_each_action_is_logged_there_escaped(child, monkeypatch):
    import syslog

    logged = []
    monkeypatch.setattr(syslog, "syslog", lambda prio, msg: logged.append((prio, msg)))
    app = _app_with(child)
    app.syslog = True
    async with app.run_test(size=SIZE) as pilot:
        await feed(app, pilot)
        await pilot.press("n")
    assert logged and logged[0][0] == syslog.LOG_AUTHPRIV | syslog.LOG_NOTICE
    assert f"reniced pid {child.pid} (sleep) from 0 to 1" in logged[0][1] and logged[0][1].startswith("uid ")
