"""The terminal while the TUI runs.

BCC's compiler and libbpf write diagnostics straight to file descriptor 2,
which is also where Textual draws.  For as long as the TUI runs, Textual gets
its own copy of the terminal (as sys.__stderr__, which its driver writes to)
and fd 2 goes to a log (EBPFTOP_LOG, default /dev/null).  No textual import
here: the probes start compiling before Textual has even loaded."""

from __future__ import annotations

import contextlib
import os
import sys


class LogError(Exception):
    """EBPFTOP_LOG cannot be opened; the message says which and why."""


def open_log() -> int:
    """The file descriptor fd 2 points at while the TUI runs (EBPFTOP_LOG):
    /dev/null, or a file made under the rule for files written as root
    (safefile.open_log)."""
    from ebpftop.safefile import UnsafePathError
    from ebpftop.safefile import open_log as open_safely

    path = os.environ.get("EBPFTOP_LOG", "/dev/null")
    try:
        return open_safely(path)
    except UnsafePathError as e:
        raise LogError(str(e)) from None


@contextlib.contextmanager
def terminal_for_textual(log_fd: int):
    """Takes over log_fd (from open_log())."""
    tty = os.fdopen(os.dup(2), "w", buffering=1, encoding="utf-8", errors="replace")
    saved_fd2 = os.dup(2)
    saved = sys.__stderr__, sys.stderr
    os.dup2(log_fd, 2)
    os.close(log_fd)
    sys.__stderr__ = sys.stderr = tty  # type: ignore[misc]
    try:
        yield
    finally:
        sys.__stderr__, sys.stderr = saved  # type: ignore[misc]
        os.dup2(saved_fd2, 2)
        os.close(saved_fd2)
        tty.close()
