"""Recordings: one snapshot per line, the same JSON objects as --json prints
(unfiltered, so a replay can be filtered any way).

A recording holds every user's process names, paths and arguments, and is
written by root: it is created 0600, never through a symlink, and only as a
regular file.  Replaying needs no root, so a recording is untrusted input:
every value is checked for type and range, and what does not fit is one
error line, never a traceback."""

from __future__ import annotations

import errno
import json
import math
import os
import select
import stat
import threading
import zlib
from pathlib import Path

from ebpftop import snapshots
from ebpftop.model import Snapshot
from ebpftop.safefile import TrustedDir, UnsafePathError
from ebpftop.sets import PARTS
from ebpftop.sets.base import Histograms
from ebpftop.text import to_stderr

MAX_LINE_BYTES = 64 << 20  # one snapshot; a busy host's is a few MB
MAX_RECORDING_BYTES = 16 << 30  # a compressed recording, decompressed
MAX_DEPTH = 16  # the deepest real snapshot nests 5 levels
MAX_COUNT = (1 << 64) - 1  # every count and bound comes from a u64 in the kernel


class RecordingError(Exception):
    """A recording that cannot be read or written; the message names the file (and line)."""


def dumps(snapshot: Snapshot) -> str:
    """A snapshot as one JSON line; never NaN or Infinity (invalid JSON)."""
    return json.dumps(snapshots.to_dict(snapshot), separators=(",", ":"), allow_nan=False)


class LineFile:
    """An open recording: whole lines or nothing.  A line whose write fails
    (a full disk) is taken back (the file truncated to its last whole line,
    and the compressor's state restored), so the file stays replayable and
    the next line can be tried again.  Gzip-compressed if asked, each line
    flushed on its own (Z_SYNC_FLUSH): a recording cut short (ebpftop
    killed) still decompresses up to its last whole line."""

    def __init__(self, fd: int, compressed: bool):
        self.fd = fd
        self.size = 0  # the bytes of its whole lines
        self.broken = False  # a failed write could not be taken back: nothing more may go in
        self._zip = zlib.compressobj(6, zlib.DEFLATED, 31) if compressed else None  # wbits 31: a gzip stream

    def write_line(self, line: bytes) -> None:
        """OSError (after taking the line back) if it cannot be written."""
        if self.broken:
            raise OSError(errno.EIO, "an earlier write could not be taken back")
        saved = self._zip.copy() if self._zip is not None else None
        data = memoryview(self._zip.compress(line) + self._zip.flush(zlib.Z_SYNC_FLUSH) if self._zip else line)
        done = 0
        try:
            while done < len(data):
                done += os.pwrite(self.fd, data[done:], self.size + done)
        except BaseException:  # an error, or a signal (SIGTERM unwinds as SystemExit) in the middle of a line
            self._zip = saved
            try:
                os.ftruncate(self.fd, self.size)
            except OSError:
                self.broken = True  # its last line may be cut: replay tolerates that, but not a line after it
            raise
        self.size += len(data)

    def close(self) -> None:
        if self.fd < 0:
            return
        fd, self.fd = self.fd, -1
        try:
            if self._zip is not None and self.size and not self.broken:
                os.pwrite(fd, self._zip.flush(zlib.Z_FINISH), self.size)
        except OSError:
            pass  # the end of the gzip stream is missing: every line before it still replays
        finally:
            os.close(fd)


def why(e: BaseException) -> str:
    """An error's reason, for a notice."""
    if isinstance(e, OSError):
        return e.strerror or str(e)
    return str(e)


class Recorder:
    """--record FILE: every snapshot, one line each.  FILE is made under
    ebpftop's rule for files written as root (safefile.py): a new file put
    in FILE's place.  With max_bytes, a file that reaches that size is
    rotated (FILE -> FILE.1 -> ... -> FILE.<keep>, the oldest dropped; for
    FILE.gz: FILE.1.gz ...) and a new FILE begun.

    Writing can fail (a full disk, a directory planted at a rotated name)
    without stopping the monitor: an interval that cannot be written is not
    recorded, the failure is said once (take_notices()), writing is tried
    again at each interval, and when it works, how many were missed is said.
    Only a FILE that cannot be made at the start is an error
    (RecordingError).  write() and close() may come from different threads
    (the TUI's poll worker, and the exit path)."""

    def __init__(self, path: str | Path, max_bytes: int | None = None, keep: int = 5):
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.keep = keep
        self._lock = threading.Lock()
        self._notices: list[str] = []
        self._missed = 0  # intervals not recorded since the last one that was
        self._closed = False
        try:
            self.directory = TrustedDir(self.path.parent, what=f"--record {path}")
        except UnsafePathError as e:
            raise RecordingError(str(e)) from None
        try:
            self._file: LineFile | None = self._open()
        except (OSError, UnsafePathError) as e:
            self.directory.close()
            raise RecordingError(str(e) if isinstance(e, UnsafePathError) else f"cannot write {path}: {why(e)}") from None

    def rotated(self, k: int) -> Path:
        name = self.path.name
        if name.endswith(".gz"):
            return self.path.with_name(f"{name[:-3]}.{k}.gz")
        return self.path.with_name(f"{name}.{k}")

    def _open(self) -> LineFile:
        return LineFile(self.directory.replace_with_new(self.path.name), compressed=self.path.name.endswith(".gz"))

    def write(self, snapshot: Snapshot) -> bool:
        """One whole line, written at once: a crash, Ctrl-C or a full disk
        keeps every interval recorded so far replayable.  Whether it was
        recorded."""
        line = (dumps(snapshot) + "\n").encode()
        with self._lock:
            if self._closed:
                return False
            try:
                if self._file is None:
                    self._file = self._open()
                self._file.write_line(line)
            except (OSError, UnsafePathError) as e:
                self._missed += 1
                if self._missed == 1:
                    self._notices.append(f"cannot write {self.path}: {why(e)}: intervals are not recorded until it "
                                         "can write again (it tries at each interval); monitoring goes on")
                if self._file is not None and self._file.broken:
                    self._rotate()
                return False
            if self._missed:
                self._notices.append(f"recording to {self.path} again; {self._missed} interval"
                                     f"{'s' if self._missed > 1 else ''} could not be recorded")
                self._missed = 0
            if self.max_bytes is not None and self._file.size >= self.max_bytes:
                self._rotate()
            return True

    def take_notices(self) -> tuple[str, ...]:
        """What went wrong (or right again) since the last call, to be said once."""
        with self._lock:
            out, self._notices = tuple(self._notices), []
        return out

    def _rotate(self) -> None:
        """Only regular files move along: what else is at a rotated name (a
        directory, a device) is left alone, and the recording that was to go
        there is dropped (replaced by the next one).  The next write begins
        a new FILE: ebpftop ending meanwhile leaves no empty one."""
        closing, self._file = self._file, None
        closing.close()
        blocked = []
        for k in range(self.keep, 0, -1):
            src = self.path.name if k == 1 else self.rotated(k - 1).name
            dst = self.rotated(k).name
            if self.directory.kind(src) != "file":
                continue
            in_the_way = self.directory.kind(dst)
            if in_the_way in ("directory", "other"):
                blocked.append(f"{dst} (a {in_the_way} is there)" if in_the_way == "directory" else f"{dst} (not a regular file)")
                continue
            try:
                self.directory.replace(src, dst)  # a link at dst is replaced, never followed
            except OSError as e:
                blocked.append(f"{dst} ({why(e)})")
        if blocked:
            self._notices.append(f"rotating {self.path}: cannot move a recording to {', '.join(blocked)}: what is "
                                 "there is left alone, and the recording meant for it is dropped")

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._file is not None:
                self._file.close()
            self.directory.close()


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
    for name in ("status", "lost", "skipped", "capabilities"):
        if not isinstance(getattr(snap, name), dict):
            raise TypeError(f"{name} must be an object")
    notes = snap.capabilities.get("notes", {})
    if not isinstance(notes, dict) or not all(isinstance(v, str) for v in notes.values()):
        raise TypeError("capabilities.notes must map names to text")
    for what in ("lost", "skipped"):
        if any(n < 0 for n in getattr(snap, what).values()):
            raise ValueError(f"a {what} count is negative")


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


READ_BYTES = 1 << 20  # read, and decompressed, this much at a time
MAX_BLANK_LINES = 1000  # ebpftop writes none; a file of nothing else is not a recording


def _open_input(path: str) -> int:
    """A file descriptor to read a recording from: '-' is stdin, a FIFO is
    waited on (said on stderr), anything else but a regular file refused
    (/dev/zero is endless)."""
    if path == "-":
        return os.dup(0)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)  # a FIFO's open must not wait before we know
    mode = os.fstat(fd).st_mode
    if stat.S_ISREG(mode):
        os.set_blocking(fd, True)
        return fd
    if stat.S_ISFIFO(mode):
        # Wait on the descriptor in hand, not by opening the FIFO again: a
        # writer may open it (our open end lets it), write everything and
        # close before a second open, which would then wait for ever (a test
        # saw it once in a loaded run).  poll() wakes once a writer has come
        # (Linux reports no hang-up for a FIFO no writer has opened yet);
        # from then on a blocking read returns its data, then end of file.
        to_stderr(f"recording {path} is a FIFO: waiting for a writer")
        waiter = select.poll()
        waiter.register(fd, select.POLLIN)
        waiter.poll()
        os.set_blocking(fd, True)
        return fd
    os.close(fd)
    raise RecordingError(f"recording {path}: not a regular file (a FIFO, or - for stdin, are read too)")


def _read_exactly(fd: int, n: int) -> bytes:
    out = b""
    while len(out) < n and (chunk := os.read(fd, n - len(out))):
        out += chunk
    return out


def _pieces(fd: int, path: str):
    """The recording's bytes, decompressed if it is gzip (by its magic
    number), in pieces of at most READ_BYTES, and at most
    MAX_RECORDING_BYTES in all: memory stays bounded whatever the file
    (a gzip bomb decompresses a piece at a time)."""
    head = _read_exactly(fd, 2)
    total = 0

    def counted(piece: bytes) -> bytes:
        nonlocal total
        total += len(piece)
        if total > MAX_RECORDING_BYTES:
            raise RecordingError(f"recording {path} is larger than {MAX_RECORDING_BYTES >> 30} GiB"
                                 + (" decompressed" if head == b"\x1f\x8b" else ""))
        return piece

    if head != b"\x1f\x8b":
        piece = head + os.read(fd, READ_BYTES)
        while piece:
            yield counted(piece)
            piece = os.read(fd, READ_BYTES)
        return
    # zlib, not gzip.open: gzip raises at a cut stream and drops what it had
    # decompressed; a cut recording keeps its whole lines (each was flushed)
    inflate = zlib.decompressobj(wbits=31)
    data = head
    try:
        while True:
            if not data:
                data = os.read(fd, READ_BYTES)
                if not data:
                    if rest := inflate.flush():  # what it still held at the end of the input
                        yield counted(rest)
                    return
            piece = inflate.decompress(data, READ_BYTES)
            data = inflate.unconsumed_tail
            if piece:
                yield counted(piece)
            if inflate.eof:  # the end of a gzip member: another may follow (cat a.gz b.gz)
                data = inflate.unused_data + data
                inflate = zlib.decompressobj(wbits=31)
    except zlib.error as e:
        raise RecordingError(f"recording {path} is not a readable gzip file ({e})") from None


def _lines(pieces, path: str):
    """(line number, its bytes, whether a newline ended it), with the line
    limit enforced as bytes arrive: a line is never held longer than
    MAX_LINE_BYTES."""
    pending = bytearray()
    n = 0
    for piece in pieces:
        start = 0
        while True:
            end = piece.find(b"\n", start)
            length = len(pending) + (len(piece) if end < 0 else end) - start
            if length > MAX_LINE_BYTES:
                raise RecordingError(f"recording {path} line {n + 1}: longer than {MAX_LINE_BYTES >> 20} MiB")
            if end < 0:
                pending += piece[start:]
                break
            n += 1
            if pending:
                pending += piece[start:end]
                yield n, bytes(pending), True
                pending.clear()
            else:
                yield n, piece[start:end], True
            start = end + 1
    if pending:
        yield n + 1, bytes(pending), False


def iter_recording(path: str | Path):
    """The recording's snapshots, read and checked one line at a time; a
    RecordingError (naming the file and line) at the first that is wrong.
    Its memory is one line's, whatever the file holds."""
    path = str(path)
    try:
        fd = _open_input(path)
    except OSError as e:
        raise RecordingError(f"cannot read recording {path}: {e.strerror}") from None
    count = blank = 0
    if path == "-":
        path = "from stdin"  # as the messages name it
    try:
        for n, raw, ended in _lines(_pieces(fd, path), path):
            try:
                line = raw.decode("utf-8")
                if not line.strip():
                    blank += 1
                    if blank > MAX_BLANK_LINES:
                        raise RecordingError(f"recording {path}: more than {MAX_BLANK_LINES:,} blank lines: "
                                             "not an ebpftop recording")
                    continue
                snap = parse_line(line)
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                if not ended and count:
                    # the recorder died mid-line (a full disk, a kill): keep the whole intervals
                    to_stderr(f"warning: recording {path} line {n} is cut short; replaying the {count} whole "
                              "intervals before it")
                    return
                if isinstance(e, UnicodeDecodeError):
                    raise RecordingError(f"recording {path} line {n}: not UTF-8 text") from None
                what = "truncated" if not ended else "not valid JSON"
                raise RecordingError(f"recording {path} line {n}: {what} ({e.msg})") from None
            except (KeyError, TypeError, ValueError, AttributeError, OverflowError, RecursionError) as e:
                raise RecordingError(f"recording {path} line {n}: not an ebpftop snapshot "
                                     f"({type(e).__name__}: {str(e)[:200]})") from None
            count += 1
            yield snap
    except OSError as e:
        raise RecordingError(f"cannot read recording {path}: {e.strerror}") from None
    finally:
        os.close(fd)
    if not count:
        raise RecordingError(f"recording {path} holds no snapshot")


def read_recording(path: str | Path) -> list[Snapshot]:
    """Every snapshot of a recording (replay.load() bounds how many are kept)."""
    return list(iter_recording(path))
