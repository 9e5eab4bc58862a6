"""Recordings: one snapshot per line, the same JSON objects as --json prints
(unfiltered, so a replay can be filtered any way).

A recording holds every user's process names, paths and arguments, and is
written by root: it is created 0600, never through a symlink, and only as a
regular file.  Replaying needs no root, so a recording is untrusted input:
every value is checked for type and range, and what does not fit is one
error line, never a traceback."""

from __future__ import annotations

import gzip
import io
import json
import math
import os
import stat
import sys
from pathlib import Path
from typing import IO

from ebpftop import snapshots
from ebpftop.model import Snapshot
from ebpftop.sets import PARTS
from ebpftop.sets.base import Histograms

MAX_LINE_BYTES = 64 << 20  # one snapshot; a busy host's is a few MB
MAX_RECORDING_BYTES = 16 << 30  # a compressed recording, decompressed
MAX_DEPTH = 16  # the deepest real snapshot nests 5 levels
MAX_COUNT = (1 << 64) - 1  # every count and bound comes from a u64 in the kernel


class RecordingError(Exception):
    """A recording that cannot be read or written; the message names the file (and line)."""


def dumps(snapshot: Snapshot) -> str:
    """A snapshot as one JSON line; never NaN or Infinity (invalid JSON)."""
    return json.dumps(snapshots.to_dict(snapshot), separators=(",", ":"), allow_nan=False)


def open_for_writing(path: str | Path) -> IO[str]:
    """A new or truncated regular file, 0600, refusing a symlink (a link
    planted in /tmp by another user must not make root write its target);
    gzip-compressed when its name ends in .gz."""
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
    if str(path).endswith(".gz"):
        return io.TextIOWrapper(_SyncGzip(fileobj=os.fdopen(fd, "wb"), mode="wb"), encoding="utf-8")
    return os.fdopen(fd, "w", encoding="utf-8")


class _SyncGzip(gzip.GzipFile):
    """A gzip stream whose every flush is a sync flush: each recorded line
    is readable even if ebpftop dies before closing the file."""

    def flush(self, zlib_mode=None):
        import zlib

        super().flush(zlib.Z_SYNC_FLUSH)
        self.fileobj.flush()

    def close(self):
        fileobj = self.fileobj
        super().close()
        if fileobj is not None:
            fileobj.close()


class Recorder:
    """Writes a recording; with max_bytes, a file that reaches that size is
    rotated (FILE -> FILE.1 -> ... -> FILE.<keep>, the oldest deleted; for
    FILE.gz: FILE.1.gz ...) and a new FILE begun."""

    def __init__(self, path: str | Path, max_bytes: int | None = None, keep: int = 5):
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.keep = keep
        self._file: IO[str] = open_for_writing(path)
        self._bytes = 0

    def rotated(self, k: int) -> Path:
        name = self.path.name
        if name.endswith(".gz"):
            return self.path.with_name(f"{name[:-3]}.{k}.gz")
        return self.path.with_name(f"{name}.{k}")

    def write(self, snapshot: Snapshot) -> None:
        """One whole line, flushed: a crash, Ctrl-C or a full disk keeps every
        interval recorded so far replayable (a cut last line is skipped)."""
        line = dumps(snapshot) + "\n"
        try:
            self._file.write(line)
            self._file.flush()
            self._bytes = os.fstat(self._fd()).st_size
        except OSError as e:
            raise RecordingError(f"cannot write {self.path}: {e.strerror or e}") from None
        if self.max_bytes is not None and self._bytes >= self.max_bytes:
            self._rotate()

    def _fd(self) -> int:
        raw = self._file.buffer
        return (raw.fileobj if isinstance(raw, gzip.GzipFile) else raw).fileno()

    def _rotate(self) -> None:
        self.close()
        try:
            self.rotated(self.keep).unlink(missing_ok=True)
            for k in range(self.keep - 1, 0, -1):
                if self.rotated(k).exists():
                    os.replace(self.rotated(k), self.rotated(k + 1))
            if self.keep > 0:
                os.replace(self.path, self.rotated(1))
        except OSError as e:
            raise RecordingError(f"cannot rotate {self.path}: {e.strerror or e}") from None
        self._file = open_for_writing(self.path)
        self._bytes = 0

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
    """The ranges the views rely on (a negative bucket bound once looped the
    latency view forever; a negative interval spun a timer at 100% CPU)."""
    if not (0 < snap.interval_s <= 86400):
        raise ValueError(f"interval_s must be within (0, 86400], not {snap.interval_s}")
    for latency in (getattr(snap, name) for name, part in PARTS.items() if isinstance(part, Histograms)):
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
    snap = snapshots.from_dict(data)
    _validate(snap)
    return snap


def _read_lines(path: str | Path) -> list[str]:
    """The recording's lines; a gzip-compressed one (by its magic number)
    decompressed, up to where it was cut if ebpftop died while writing it."""
    with open(path, "rb") as f:
        compressed = f.read(2) == b"\x1f\x8b"
    if not compressed:
        with open(path, encoding="utf-8") as f:
            return f.readlines()
    # zlib, not gzip.open: gzip raises at a cut stream and drops what it had
    # decompressed; a cut recording keeps its whole lines (each was flushed)
    import zlib

    inflate = zlib.decompressobj(wbits=31)
    data = bytearray()
    with open(path, "rb") as f:
        try:
            while chunk := f.read(1 << 20):
                data += inflate.decompress(chunk)
                if len(data) > MAX_RECORDING_BYTES:
                    raise RecordingError(f"recording {path} decompresses to more than "
                                         f"{MAX_RECORDING_BYTES >> 30} GiB")
        except zlib.error as e:
            raise RecordingError(f"recording {path} is not a readable gzip file ({e})") from None
    return data.decode("utf-8").splitlines(keepends=True)


def read_recording(path: str | Path) -> list[Snapshot]:
    try:
        lines = _read_lines(path)
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
