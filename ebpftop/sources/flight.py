"""--flight-recorder DIR: a source that keeps the last snapshots (the
--history window, bounded in rows as the TUI's) and, when an alert fires (a
watched file opened) or a --trigger threshold is crossed, writes them to a
new recording in DIR, then the snapshots of the next --flight-after seconds
(a further cause meanwhile extends that).  Each recording replays with
--replay; a notice in the snapshot says where it went (the TUI shows it,
--json prints it).

DIR follows ebpftop's rule for files written as root (safefile.py): it
belongs to root (or you) and no one else may write in it.  Each recording is
a new file (O_EXCL) with a name no other recording has: the time to the
millisecond, ebpftop's pid and a counter, then the cause.

Whoever can make an alert fire (any user opening /etc/shadow) decides how
often recordings start, so their disk use is bounded:
- each interval is written once at most: a recording started while the
  previous one's intervals are still kept holds only those not written yet,
  so a burst of alerts never copies the whole window again and again;
- this run's recordings take at most --flight-max-size in all (default: the
  smaller of 256 MiB and a tenth of the file system's free space at the
  start), the oldest removed first.  Only this run's own recordings count
  and are ever removed: earlier runs' are evidence someone may still want
  (and the default's tenth of what is free at the start leaves the rest for
  them), and no file of another's is touched.  A recording that reaches a
  quarter of the budget goes on in a new file (its name ends -partN), so
  that there is always an older one to remove;
- writing can fail (a full disk): the intervals not yet written stay kept
  and are written once it works again, if still in the window; what could
  not be recorded is counted and said.  Monitoring never stops for it."""

from __future__ import annotations

import datetime as _dt
import math
import os
import re
import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from ebpftop import sets
from ebpftop.history import MAX_KEPT_ROWS, snapshot_rows
from ebpftop.model import Snapshot
from ebpftop.recording import LineFile, RecordingError, dumps, why
from ebpftop.render import byte_size as show_size
from ebpftop.safefile import TrustedDir, UnsafePathError
from ebpftop.sources.base import Wrapper
from ebpftop.triggers import Trigger

MAX_BUDGET = 256 << 20
SHARE_OF_FREE_SPACE = 0.10
PARTS = 4  # a recording goes on in a new file at a quarter of the budget


def prepare_dir(path: str) -> TrustedDir:
    """DIR, made 0700 if missing; RecordingError if the rule for files
    written as root refuses it."""
    try:
        return TrustedDir(path, what=f"--flight-recorder {path}", create=True)
    except UnsafePathError as e:
        raise RecordingError(str(e)) from None


def default_budget(directory: TrustedDir) -> int:
    return min(MAX_BUDGET, int(directory.free_bytes() * SHARE_OF_FREE_SPACE))


@dataclass
class _Recording:
    """One of this run's recordings (the only files it may remove)."""

    name: str
    inode: int
    size: int = 0


class FlightRecorderSource(Wrapper):
    def __init__(self, inner, directory: TrustedDir, triggers: list[Trigger], window_s: float = 3600.0,
                 after_s: float = 60.0, max_rows: int = MAX_KEPT_ROWS, max_bytes: int | None = None):
        super().__init__(inner)
        self.directory = directory
        self.triggers = list(triggers)
        self.window_s = window_s
        self.after_s = after_s
        self.max_rows = max_rows
        self.max_bytes = default_budget(directory) if max_bytes is None else max_bytes
        self._kept: deque[tuple[Snapshot, int]] = deque()
        self._rows = 0
        self._lock = threading.Lock()  # poll() in the TUI's worker thread, close() on the way out
        self._active = False  # a cause was seen: recording until _until
        self._until = 0.0
        self._cause = ""
        self._part = 0  # of the active recording's files
        self._file: LineFile | None = None  # the open one, the last of _own
        self._own: deque[_Recording] = deque()  # this run's recordings, oldest first
        self._own_bytes = 0  # their sizes, summed
        self._written_until = -math.inf  # the newest snapshot written (or given up on)
        self._failing = False  # a write failed and has not worked since: said once
        self._too_big_said = False
        self._unrecorded = 0  # of the active recording: intervals it should hold and cannot
        self._counter = 0
        self.written: list[Path] = []

    def causes(self, snap: Snapshot) -> list[str]:
        out = [f"alert: {a.alert_cause}" for part in sets.STREAMED for a in getattr(snap, part)][:1]
        out += [f"trigger: {t.text}" for t in self.triggers if t.fires(snap)]
        return out

    def poll(self) -> Snapshot | None:
        snap = self.inner.poll()
        with self._lock:
            if snap is None:
                self._end([])
                return None
            notices: list[str] = []
            self._keep(snap)
            causes = self.causes(snap)
            if causes:
                if not self._active:
                    self._active, self._cause, self._part, self._unrecorded = True, causes[0], 0, 0
                self._until = max(self._until, snap.time + self.after_s)
            if self._active:
                self._write_pending(snap, notices)
                if not causes and snap.time >= self._until:
                    self._end(notices)
        return snap.replace(notices=snap.notices + tuple(notices)) if notices else snap

    def _keep(self, snap: Snapshot) -> None:
        """The window as it was at the last poll, and this snapshot after it."""
        if self._kept:
            newest = self._kept[-1][0].time
            while len(self._kept) > 1 and (self._rows > self.max_rows or newest - self._kept[0][0].time > self.window_s):
                old, n = self._kept.popleft()
                self._rows -= n
                if self._active and old.time > self._written_until:  # waited for a write that never worked
                    self._unrecorded += 1
        rows = snapshot_rows(snap)
        self._kept.append((snap, rows))
        self._rows += rows

    def _write_pending(self, latest: Snapshot, notices: list[str]) -> None:
        """Every kept snapshot not written yet, oldest first; on a failure,
        the rest waits for the next poll."""
        for snap, _ in [k for k in self._kept if k[0].time > self._written_until]:
            line = (dumps(snap) + "\n").encode()
            if not self._make_room(len(line), notices):
                self._written_until = snap.time  # given up on: counted, never retried
                self._unrecorded += 1
                if not self._too_big_said:
                    self._too_big_said = True
                    notices.append(f"flight recorder: an interval of {show_size(len(line))} does not fit "
                                   f"--flight-max-size {show_size(self.max_bytes)}: not recorded")
                continue
            try:
                if self._file is None:
                    self._open(snap, latest, notices)
                self._file.write_line(line)
            except OSError as e:
                if not self._failing:
                    self._failing = True
                    target = self.directory.path / self._own[-1].name if self._file is not None else self.directory.path
                    notices.append(f"flight recorder: cannot write {target}: {why(e)}; it tries again at each "
                                   "interval, monitoring goes on")
                if self._file is not None and self._file.broken:
                    self._close_file()
                return
            self._own_bytes += self._file.size - self._own[-1].size
            self._own[-1].size = self._file.size
            self._written_until = snap.time
            if self._failing:
                self._failing = False
                notices.append(f"flight recorder: writing to {self.directory.path / self._own[-1].name} again")

    def _make_room(self, n: int, notices: list[str]) -> bool:
        """Whether n more bytes fit the budget, after going on in a new file
        at a quarter of it and removing this run's oldest recordings."""
        if self._file is not None and self._file.size and self._file.size + n > self.max_bytes // PARTS:
            notices.append(f"flight recording {self.directory.path / self._own[-1].name} reached a quarter of "
                           f"--flight-max-size {show_size(self.max_bytes)}: it goes on in a new file")
            self._close_file()
        while self._own_bytes + n > self.max_bytes and len(self._own) > (self._file is not None):
            old = self._own.popleft()
            self._own_bytes -= old.size
            if self.directory.inode(old.name) == old.inode:  # ours still: nothing else is ever removed
                self.directory.unlink(old.name)
            notices.append(f"flight recorder: removed {self.directory.path / old.name}, this run's oldest "
                           f"recording, to stay within --flight-max-size {show_size(self.max_bytes)}")
        return self._own_bytes + n <= self.max_bytes

    def _open(self, first: Snapshot, latest: Snapshot, notices: list[str]) -> None:
        self._part += 1
        for _ in range(1000):
            self._counter += 1
            name = self._name(latest, self._cause, self._counter, self._part)
            try:
                fd = self.directory.open_new(name)
                break
            except FileExistsError:
                continue  # not ours: another name
        else:
            raise FileExistsError(f"no free name in {self.directory.path}")
        self._file = LineFile(fd, compressed=False)
        self._own.append(_Recording(name, os.fstat(fd).st_ino))
        path = self.directory.path / name
        self.written.append(path)
        if self._part == 1:
            minutes = (latest.time - first.time) / 60
            notices.append(f"flight recorder: {self._cause}: the last {minutes:.1f} min and the next "
                           f"{self.after_s:g} s go to {path}")

    @staticmethod
    def _name(snap: Snapshot, cause: str, counter: int, part: int) -> str:
        t = _dt.datetime.fromtimestamp(snap.time)
        when = t.strftime("%Y%m%d-%H%M%S") + f".{t.microsecond // 1000:03d}"
        kind = cause.split(":", 1)[0]
        detail = cause.split(":", 1)[1] if kind == "trigger" else ""
        slug = re.sub(r"[^A-Za-z0-9.]+", "-", f"{kind} {detail}").strip("-")[:60]
        return f"ebpftop-{when}-{os.getpid()}-{counter}-{slug}" + (f"-part{part}" if part > 1 else "") + ".jsonl"

    def _close_file(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def _end(self, notices: list[str]) -> None:
        """The active recording is complete."""
        if self._file is not None:
            notices.append(f"flight recording {self.directory.path / self._own[-1].name} complete")
        self._close_file()
        unwritten = sum(1 for s, _ in self._kept if s.time > self._written_until) if self._active else 0
        if self._unrecorded + unwritten:
            notices.append(f"flight recorder: {self._unrecorded + unwritten} intervals of that recording could not "
                           "be recorded")
        self._written_until = max(self._written_until, self._kept[-1][0].time) if self._kept else self._written_until
        self._active = False

    def close(self) -> None:
        try:
            self.inner.close()
        finally:
            with self._lock:
                self._close_file()
                self.directory.close()
