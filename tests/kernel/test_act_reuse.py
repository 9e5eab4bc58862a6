"""The pid-reuse race, for real (root: /proc/sys/kernel/ns_last_pid steers
which pid the next process gets).  A row shows process A; A exits; B is
given A's pid; the signal confirmed on A's row must not reach B.  No BPF
here, but root and a real kernel: this tier."""

from __future__ import annotations

import os
import subprocess
import time

from ebpftop import act

NS_LAST_PID = "/proc/sys/kernel/ns_last_pid"


def _spawn_at(pid: int) -> subprocess.Popen | None:
    """A `sleep` given this pid, or None if another process took it first."""
    with open(NS_LAST_PID, "w") as f:
        f.write(str(pid - 1))
    proc = subprocess.Popen(["sleep", "60"])
    if proc.pid == pid:
        return proc
    proc.kill()
    proc.wait()
    return None


def test_a_signal_confirmed_on_a_row_never_reaches_the_process_that_took_its_pid():
    a = subprocess.Popen(["sleep", "60"])
    time.sleep(0.05)
    row = act.Target(a.pid, "sleep", act.start_time(a.pid))  # as the interval was read
    assert row.start is not None
    a.kill()
    a.wait()  # A is gone, its pid free
    b = None
    for _ in range(50):  # a busy machine may take the pid in between: try again
        b = _spawn_at(row.pid)
        if b is not None:
            break
    assert b is not None, "could not hand the pid to a new process"
    try:
        time.sleep(0.05)
        assert b.pid == row.pid and act.start_time(b.pid) != row.start
        # the same pid, another process: refused, said, and B untouched
        for sig in ("KILL", "TERM"):
            try:
                act.send_signal(row, sig)
            except act.RefusedError as e:
                assert "its pid now belongs to another process" in str(e) and "nothing done" in str(e)
            else:
                raise AssertionError("a signal was sent")
        try:
            act.renice(row, 1)
        except act.RefusedError as e:
            assert "another process" in str(e)
        else:
            raise AssertionError("a renice was done")
        time.sleep(0.1)
        assert b.poll() is None
        assert os.getpriority(os.PRIO_PROCESS, b.pid) == 0
        # the row of B itself still works
        assert act.send_signal(act.Target(b.pid, "sleep", act.start_time(b.pid)), "TERM").startswith("sent SIGTERM")
        assert b.wait(timeout=5) == -15
    finally:
        if b.poll() is None:
            b.kill()
            b.wait()
