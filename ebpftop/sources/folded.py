"""--folded FILE: the CPU profile's stacks, summed since the start (of the
run, or of the replay) for what the filter matches, as flamegraph.pl and
speedscope read them: one line per stack, `comm;root;...;leaf count`.

The file is written whole at each interval, under a temporary name in the
same directory and then renamed over FILE (safefile's rule: a directory no
one else can write, a new file never opened through a link), so a reader
never sees half of it and a crash leaves the last whole one.  Writing that
fails never stops the monitor: it is said once, and tried again at the
next interval."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from ebpftop import filters, snapshots
from ebpftop.model import Snapshot
from ebpftop.recording import RecordingError, why
from ebpftop.safefile import TrustedDir, UnsafePathError
from ebpftop.sets.profile import OTHER_STACKS, folded_line
from ebpftop.sources.base import Wrapper

MAX_STACKS = 100_000  # distinct lines kept; beyond, a process name's new stacks are summed in one "[other stacks]"


class FoldedStacks:
    """Stacks summed over intervals, bounded."""

    def __init__(self, max_stacks: int = MAX_STACKS):
        self.max_stacks = max_stacks
        self.counts: dict[tuple, int] = {}

    def add(self, rows) -> None:
        counts = self.counts
        for r in rows:
            key = (r.comm, r.user_stack, r.kernel_stack)
            if key not in counts and len(counts) >= self.max_stacks:
                key = (r.comm, (OTHER_STACKS,), ())
            counts[key] = counts.get(key, 0) + r.samples

    def text(self) -> str:
        lines = sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0]))
        return "".join(folded_line(comm, user, kernel, n) + "\n" for (comm, user, kernel), n in lines)


class FoldedFile:
    """FILE, written whole each time."""

    def __init__(self, path: str):
        """RecordingError (one line) if FILE may not be written: checked by
        writing it (empty) at once."""
        self.path = Path(path)
        try:
            self.directory = TrustedDir(self.path.parent, what=f"--folded {path}")
        except UnsafePathError as e:
            raise RecordingError(str(e)) from None
        try:
            self.write("")
        except (OSError, UnsafePathError) as e:
            self.directory.close()
            raise RecordingError(str(e) if isinstance(e, UnsafePathError) else f"cannot write {path}: {why(e)}") from None

    def write(self, text: str) -> None:
        name = self.path.name
        kind = self.directory.kind(name)
        if kind not in (None, "file"):
            raise UnsafePathError(f"cannot write {self.path}: "
                                  f"{'it is a symbolic link' if kind == 'link' else 'not a regular file'}")
        tmp = f".{name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        fd = self.directory.open_new(tmp)
        try:
            with os.fdopen(fd, "w", encoding="utf-8", errors="replace") as f:
                f.write(text)
            self.directory.replace(tmp, name)
        except BaseException:
            self.directory.unlink(tmp)
            raise

    def close(self) -> None:
        self.directory.close()


class FoldedSource(Wrapper):
    def __init__(self, inner, file: FoldedFile, flt: filters.Filter):
        super().__init__(inner)
        self.file = file
        self.flt = flt
        self.stacks = FoldedStacks()
        self._failing = False

    def poll(self) -> Snapshot | None:
        snap = self.inner.poll()
        if snap is None:
            return None
        self.stacks.add(snapshots.rows_filtered("profile_stacks", snap.profile_stacks, self.flt, snap.containers))
        path = self.file.path
        try:
            self.file.write(self.stacks.text())
        except (OSError, UnsafePathError) as e:
            if self._failing:
                return snap
            self._failing = True
            return snap.replace(notices=(*snap.notices, f"cannot write {path}: {why(e)}: it is tried again at "
                                         "each interval; monitoring goes on"))
        if self._failing:
            self._failing = False
            return snap.replace(notices=(*snap.notices, f"writing {path} again"))
        return snap

    def close(self) -> None:
        try:
            self.inner.close()
        finally:
            self.file.close()
