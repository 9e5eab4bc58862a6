"""Acting on a process (act.py) without the pid-reuse race: real child
processes, no privilege.  The reuse itself (a pid handed to a new process)
needs root to steer: tests/kernel/test_act_reuse.py."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from ebpftop import act


@pytest.fixture
def child():
    proc = subprocess.Popen(["sleep", "60"])
    yield proc
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def _target(proc) -> act.Target:
    for _ in range(100):  # the stat file appears with the process; its comm is sleep once exec'd
        start = act.start_time(proc.pid)
        if start is not None:
            return act.Target(proc.pid, "sleep", start)
        time.sleep(0.01)
    raise AssertionError("no start time")


def _fake_proc(tmp_path, pid: int, start: int, comm: str = "sleep") -> str:
    (tmp_path / str(pid)).mkdir()
    fields = ["S"] + ["0"] * 18 + [str(start)] + ["0"] * 30  # field 22 (starttime) is the 20th after the comm
    (tmp_path / str(pid) / "stat").write_text(f"{pid} ({comm}) " + " ".join(fields) + "\n")
    return str(tmp_path)


def test_the_start_time_is_read_after_the_last_parenthesis(tmp_path):
    proc = _fake_proc(tmp_path, 42, 123456, comm="a) b (c) 9 9")
    assert act.start_time(42, proc) == 123456
    assert act.start_time(43, proc) is None
    assert act.start_time(os.getpid()) == act.start_time(os.getpid())  # the real file parses
    assert act.start_times([os.getpid(), 2**22 + 1]).keys() == {os.getpid()}


def test_a_confirmed_signal_reaches_the_process_the_row_showed(child):
    said = act.send_signal(_target(child), "TERM")
    assert said == f"sent SIGTERM to pid {child.pid} (sleep)"
    assert child.wait(timeout=5) == -signal.SIGTERM


def test_a_pid_whose_start_time_changed_gets_no_signal(child, tmp_path):
    # the pid is now held by a process that started later than the row's
    real = _target(child)
    row = act.Target(child.pid, "sleep", real.start - 500)
    with pytest.raises(act.RefusedError, match="its pid now belongs to another process .* nothing done"):
        act.send_signal(row, "KILL")
    time.sleep(0.1)
    assert child.poll() is None  # not signalled


def test_an_exited_process_gets_a_clear_message(child):
    row = _target(child)
    child.kill()
    child.wait()
    with pytest.raises(act.RefusedError, match=f"pid {child.pid} \\(sleep\\) has exited: nothing done"):
        act.send_signal(row, "TERM")
    with pytest.raises(act.RefusedError, match="had exited before its row was drawn"):
        act.send_signal(act.Target(child.pid, "sleep", None), "TERM")


def _nice(pid: int, tid: int) -> int:
    data = open(f"/proc/{pid}/task/{tid}/stat", "rb").read()
    return int(data[data.rfind(b")") + 2:].split()[16])  # field 19 (nice)


def test_renice_moves_every_thread_of_the_process_and_stops_at_19():
    code = "import threading,time\n[threading.Thread(target=time.sleep,args=(60,),daemon=True).start() for _ in range(2)]\n" \
           "print('ready',flush=True)\ntime.sleep(60)"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "ready\n"
        row = act.Target(proc.pid, "python3", act.start_time(proc.pid))
        tids = sorted(int(t) for t in os.listdir(f"/proc/{proc.pid}/task"))
        assert len(tids) == 3
        said = act.renice(row, 1)
        assert said == f"reniced pid {proc.pid} (python3) from 0 to 1 (3 threads)"
        assert [_nice(proc.pid, t) for t in tids] == [1, 1, 1]
        for tid in tids:
            os.setpriority(os.PRIO_PROCESS, tid, 19)
        with pytest.raises(act.RefusedError, match="already at nice 19, the lowest priority"):
            act.renice(row, 1)
        stale = act.Target(proc.pid, "python3", row.start + 7)
        with pytest.raises(act.RefusedError, match="another process"):
            act.renice(stale, 1)
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.skipif(os.geteuid() == 0, reason="as root, a higher priority is allowed")
def test_a_renice_the_kernel_refuses_says_so(child):
    with pytest.raises(act.RefusedError, match="renice of .* refused: Permission denied"):
        act.renice(_target(child), -1)
