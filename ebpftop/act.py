"""Acting on a process a row shows: a signal, or a nudge of its nice value,
without the pid-reuse race every top shares.

A row is drawn from an interval that ended up to one poll ago, and the key
is pressed seconds later: by then the process may have exited and its pid
gone to another one.  A tool that signals the pid (htop, btop, csysdig)
then, as root, signals whatever process has it now.  Here each process a
row names carries the start time it had when the interval was read
(``Snapshot.starts``, from /proc/PID/stat); an action opens a pidfd for the
pid, then checks that the process holding the pid still has that start
time.  The process the row showed held the pid when the interval was read
and still holds it at the check, so it is the one the pidfd was opened on:
a pidfd names one process for good, and a signal sent through it reaches
that process or fails (ESRCH), never another (pidfd_open and
pidfd_send_signal: Linux >= 5.3).

There is no pidfd form of setpriority(): a renice is checked the same way
before, and the pidfd is looked at after it; if the process exited in that
window of microseconds, the message says the nice value may have reached a
process that took its pid.

Pure of the TUI: panes/act.py asks, this acts, the app logs."""

from __future__ import annotations

import os
import select
import signal
from collections.abc import Iterable
from dataclasses import dataclass

# The signal picker's choices, in its order: SIGTERM first (the default).
SIGNALS = ("TERM", "KILL", "INT", "HUP", "QUIT", "STOP", "CONT", "USR1", "USR2")
NICE_MIN, NICE_MAX = -20, 19


@dataclass(frozen=True)
class Target:
    pid: int
    comm: str
    start: int | None  # clock ticks after boot (/proc/PID/stat field 22) when the row's interval was read; None: gone by then


class RefusedError(Exception):
    """Nothing was done, and why (one line)."""


def start_time(pid: int, proc: str = "/proc") -> int | None:
    """The process's start time in clock ticks after boot, or None if there
    is no such process.  Field 22 of /proc/PID/stat, counted after the
    command's closing parenthesis (the command may hold spaces and ')')."""
    try:
        with open(f"{proc}/{int(pid)}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rfind(b")") + 2:].split()
    try:
        return int(fields[19])  # fields[0] is field 3 (state)
    except (IndexError, ValueError):
        return None


def start_times(pids: Iterable[int], proc: str = "/proc") -> dict[int, int]:
    """Each live pid's start time (those that exited are left out)."""
    out = {}
    for pid in pids:
        t = start_time(pid, proc)
        if t is not None:
            out[pid] = t
    return out


def _name(t: Target) -> str:
    # raw: every place a message goes escapes it (a toast, the status line, syslog)
    return f"pid {t.pid} ({t.comm})"


def _open_checked(t: Target, proc: str) -> int:
    """A pidfd for the process the row showed, or RefusedError."""
    if t.start is None:
        raise RefusedError(f"{_name(t)} had exited before its row was drawn: nothing done")
    try:
        fd = os.pidfd_open(t.pid)
    except ProcessLookupError:
        raise RefusedError(f"{_name(t)} has exited: nothing done") from None
    except OSError as e:
        raise RefusedError(f"{_name(t)}: pidfd_open failed ({e.strerror}; it needs Linux 5.3): nothing done") from None
    now = start_time(t.pid, proc)
    if now != t.start:
        os.close(fd)
        if now is None:
            raise RefusedError(f"{_name(t)} has exited: nothing done")
        raise RefusedError(f"{_name(t)} has exited and its pid now belongs to another process "
                      f"(started {(now - t.start) / os.sysconf('SC_CLK_TCK'):.2f} s later): nothing done")
    return fd


def send_signal(t: Target, name: str, proc: str = "/proc") -> str:
    """Send SIG<name> to the process the row showed; what was done, or RefusedError."""
    signum = signal.Signals[f"SIG{name}"]
    fd = _open_checked(t, proc)
    try:
        signal.pidfd_send_signal(fd, signum)
    except ProcessLookupError:
        raise RefusedError(f"{_name(t)} exited before the signal: nothing sent") from None
    except OSError as e:
        raise RefusedError(f"SIG{name} to {_name(t)} failed: {e.strerror}") from None
    finally:
        os.close(fd)
    return f"sent SIG{name} to {_name(t)}"


def _exited(fd: int) -> bool:
    """A pidfd is readable once its process has exited."""
    p = select.poll()
    p.register(fd, select.POLLIN)
    return bool(p.poll(0))


def renice(t: Target, delta: int, proc: str = "/proc") -> str:
    """Change the nice value of every thread of the process the row showed
    by delta (as htop does: on Linux each thread has its own)."""
    fd = _open_checked(t, proc)
    try:
        try:
            tids = [int(x) for x in os.listdir(f"{proc}/{t.pid}/task")]
        except OSError:
            tids = [t.pid]
        old = os.getpriority(os.PRIO_PROCESS, t.pid)
        new = max(NICE_MIN, min(NICE_MAX, old + delta))
        if new == old:
            raise RefusedError(f"{_name(t)} is already at nice {old}, the {'lowest' if delta > 0 else 'highest'} priority")
        done = 0
        for tid in tids:
            try:
                os.setpriority(os.PRIO_PROCESS, tid, new)
                done += 1
            except ProcessLookupError:
                pass  # that thread exited meanwhile
            except PermissionError as e:
                raise RefusedError(f"renice of {_name(t)} refused: {e.strerror}") from None
        if _exited(fd):
            return (f"{_name(t)} exited during its renice to {new}: the new nice value may have reached "
                    f"a process that took its pid")
        return f"reniced {_name(t)} from {old} to {new} ({done} thread{'s' if done != 1 else ''})"
    finally:
        os.close(fd)
