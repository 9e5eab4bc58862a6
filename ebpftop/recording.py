"""Recordings: one snapshot per line, the same JSON objects as --json prints
(unfiltered, so a replay can be filtered any way).

A recording holds every user's process names, paths and arguments, and is
written by root: it is created 0600, never through a symlink, and only as a
regular file.  Replaying needs no root, so a recording is untrusted input:
every value is checked for type and range, and what does not fit is one
error line, never a traceback."""

from __future__ import annotations

import json
import math
import os
import stat
import sys
from pathlib import Path
from typing import IO

from ebpftop.model import Snapshot

MAX_LINE_BYTES = 64 << 20  # one snapshot; a busy host's is a few MB
MAX_DEPTH = 16  # the deepest real snapshot nests 5 levels
MAX_COUNT = (1 << 64) - 1  # every count and bound comes from a u64 in the kernel


class RecordingError(Exception):
    """A recording that cannot be read or written; the message names the file (and line)."""


def dumps(snapshot: Snapshot) -> str:
    """A snapshot as one JSON line; never NaN or Infinity (invalid JSON)."""
    return json.dumps(snapshot.to_dict(), separators=(",", ":"), allow_nan=False)


def open_for_writing(path: str | Path) -> IO[str]:
    """A new or truncated regular file, 0600, refusing a symlink (a link
    planted in /tmp by another user must not make root write its target)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
    try:
        fd = os.open(path, flags, 0o600)
    except OSError as e:
        why = "it is a symbolic link" if e.errno == 40 else e.strerror  # ELOOP
        raise RecordingError(f"cannot write {path}: {why}") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise RecordingError(f"cannot write {path}: not a regular file")
    if st.st_mode & 0o077:  # it existed with wider permissions
        os.fchmod(fd, 0o600)
    os.set_blocking(fd, True)
    return os.fdopen(fd, "w", encoding="utf-8")


class Recorder:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._file: IO[str] = open_for_writing(path)

    def write(self, snapshot: Snapshot) -> None:
        """One whole line, flushed: a crash, Ctrl-C or a full disk keeps every
        interval recorded so far replayable (a cut last line is skipped)."""
        try:
            self._file.write(dumps(snapshot) + "\n")
            self._file.flush()
        except OSError as e:
            raise RecordingError(f"cannot write {self.path}: {e.strerror or e}") from None

    def close(self) -> None:
        try:
            self._file.close()
        except OSError:
            pass  # the error was reported by write()


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


def _check(value, depth: int = 0) -> None:
    """Depth, and every number finite and within a u64's range."""
    if depth > MAX_DEPTH:
        raise ValueError("nested too deeply")
    if isinstance(value, dict):
        for v in value.values():
            _check(v, depth + 1)
    elif isinstance(value, list):
        for v in value:
            _check(v, depth + 1)
    elif isinstance(value, bool) or value is None or isinstance(value, str):
        return
    elif isinstance(value, int):
        if not -MAX_COUNT <= value <= MAX_COUNT:
            raise ValueError(f"number out of range: {str(value)[:20]}…")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("number out of range")


def _validate(snap: Snapshot) -> None:
    """The ranges the panes rely on (a negative bucket bound once looped the
    latency view forever; a negative interval spun a timer at 100% CPU)."""
    if not (0 < snap.interval_s <= 86400):
        raise ValueError(f"interval_s must be within (0, 86400], not {snap.interval_s}")
    for latency in (snap.read_latency, snap.write_latency):
        for p in latency.by_process:
            for b in p.histogram.buckets:
                if not (0 <= b.low_ns < b.high_ns <= MAX_COUNT) or not (0 < b.count <= MAX_COUNT):
                    raise ValueError(f"bad latency bucket [{b.low_ns}, {b.high_ns}) count {b.count}")
    for name in ("status", "lost", "capabilities"):
        if not isinstance(getattr(snap, name), dict):
            raise TypeError(f"{name} must be an object")
    notes = snap.capabilities.get("notes", {})
    if not isinstance(notes, dict) or not all(isinstance(v, str) for v in notes.values()):
        raise TypeError("capabilities.notes must map names to text")
    for n in snap.lost.values():
        if n < 0:
            raise ValueError("a lost count is negative")


def parse_line(line: str) -> Snapshot:
    if len(line) > MAX_LINE_BYTES:
        raise ValueError(f"line longer than {MAX_LINE_BYTES >> 20} MiB")
    data = json.loads(line, parse_constant=_reject_constant)
    _check(data)
    if not isinstance(data, dict):
        raise TypeError("not a JSON object")
    snap = Snapshot.from_dict(data)
    _validate(snap)
    return snap


def read_recording(path: str | Path) -> list[Snapshot]:
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.readlines()
    except OSError as e:
        raise RecordingError(f"cannot read recording {path}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise RecordingError(f"recording {path} is not UTF-8 text") from None
    snapshots = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        last_cut = n == len(lines) and not line.endswith("\n")
        try:
            snapshots.append(parse_line(line))
        except json.JSONDecodeError as e:
            if last_cut and snapshots:
                # the recorder died mid-line (a full disk, a kill): keep the whole intervals
                print(f"ebpftop: warning: recording {path} line {n} is cut short; replaying the "
                      f"{len(snapshots)} whole intervals before it", file=sys.stderr)
                break
            what = "truncated" if last_cut else "not valid JSON"
            raise RecordingError(f"recording {path} line {n}: {what} ({e.msg})") from None
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError, RecursionError) as e:
            raise RecordingError(
                f"recording {path} line {n}: not an ebpftop snapshot ({type(e).__name__}: {str(e)[:200]})") from None
    if not snapshots:
        raise RecordingError(f"recording {path} holds no snapshot")
    return snapshots
