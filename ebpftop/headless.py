"""Headless mode: one JSON object per interval on stdout."""

from __future__ import annotations

import sys
import time

from ebpftop import filters, snapshots
from ebpftop.recording import dumps
from ebpftop.text import to_stderr

# Ring buffers (connections, processes, alerts) are read this often between
# polls, as the TUI reads them: once per interval, a burst of events between
# two reads overran them (at 200 forks/s, 2,574 process events lost in one
# 5 s interval, none with reads every half second).
DRAIN_EVERY_S = 0.5


def sleep_until(source, deadline: float) -> None:
    while (left := deadline - time.monotonic()) > 0:
        time.sleep(min(left, DRAIN_EVERY_S))
        source.drain_events()


def run(source, flt: filters.Filter, count: int | None, paced: bool = True) -> int:
    """Print each snapshot (filtered) as a JSON line; a RecordedSource
    writes the recording."""
    status = source.start()
    failed = {p: s for p, s in status.items() if s != "ok"}
    for name, reason in failed.items():
        to_stderr(f"{name}: {reason}")
    if status and len(failed) == len(status):
        to_stderr("error: no probe could be started")
        return 2
    emitted = 0
    deadline = time.monotonic() + source.interval_s
    while count is None or emitted < count:
        if paced:
            sleep_until(source, deadline)
            deadline += source.interval_s
        snap = source.poll()
        if snap is None:  # a recording has ended
            break
        for notice in snap.notices:  # a flight recording written, say (the JSON line carries it too)
            to_stderr(notice)
        try:
            sys.stdout.write(dumps(snapshots.filtered(snap, flt)) + "\n")
            sys.stdout.flush()
        except BrokenPipeError:
            # the reader went away (ebpftop --json | head -1): done, quietly
            _silence_stdout()
            return 0
        emitted += 1
    return 0


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's own flush at exit does
    not print a second BrokenPipeError."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
