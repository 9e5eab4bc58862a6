"""--flight-recorder DIR: a source that keeps the last snapshots (the
--history window, bounded in rows as the TUI's) and, when an alert fires (a
watched file opened) or a --trigger threshold is crossed, writes them to a
new recording in DIR, then the snapshots of the next --flight-after seconds
(a further cause meanwhile extends that).  Each recording is named by its
time and cause and replays with --replay; a notice in the snapshot says
where it went (the TUI shows it, --json prints it)."""

from __future__ import annotations

import datetime as _dt
import os
import re
from collections import deque
from pathlib import Path

from ebpftop.history import MAX_KEPT_ROWS, snapshot_rows
from ebpftop.model import Snapshot
from ebpftop.recording import Recorder, RecordingError
from ebpftop.sources.base import Wrapper
from ebpftop.triggers import Trigger


def prepare_dir(path: str) -> Path:
    """DIR, made 0700 if missing; RecordingError if it cannot be written."""
    d = Path(path)
    try:
        d.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as e:
        raise RecordingError(f"cannot make the flight recorder's directory {d}: {e.strerror}") from None
    if not d.is_dir() or not os.access(d, os.W_OK | os.X_OK):
        raise RecordingError(f"cannot write in the flight recorder's directory {d}")
    return d


class FlightRecorderSource(Wrapper):
    def __init__(self, inner, directory: Path, triggers: list[Trigger], window_s: float = 3600.0,
                 after_s: float = 60.0, max_rows: int = MAX_KEPT_ROWS):
        super().__init__(inner)
        self.directory = directory
        self.triggers = list(triggers)
        self.window_s = window_s
        self.after_s = after_s
        self.max_rows = max_rows
        self._kept: deque[tuple[Snapshot, int]] = deque()
        self._rows = 0
        self._recorder: Recorder | None = None
        self._until = 0.0  # the open recording takes snapshots up to this time
        self.written: list[Path] = []

    def causes(self, snap: Snapshot) -> list[str]:
        out = [f"alert: {a.comm} opened {a.path}" for a in snap.alerts[:1]]
        out += [f"trigger: {t.text}" for t in self.triggers if t.fires(snap)]
        return out

    def poll(self) -> Snapshot | None:
        snap = self.inner.poll()
        if snap is None:
            self._finish()
            return None
        notices = []
        causes = self.causes(snap)
        if self._recorder is not None:
            self._recorder.write(snap)
            if causes:
                self._until = max(self._until, snap.time + self.after_s)
            elif snap.time >= self._until:
                notices.append(f"flight recording {self._recorder.path} complete")
                self._finish()
        elif causes:
            path = self.directory / self._name(snap, causes[0])
            self._recorder = Recorder(path)
            for kept, _ in self._kept:
                self._recorder.write(kept)
            self._recorder.write(snap)
            self._until = snap.time + self.after_s
            self.written.append(path)
            minutes = (snap.time - self._kept[0][0].time) / 60 if self._kept else 0
            notices.append(f"flight recorder: {causes[0]}: the last {minutes:.1f} min and the next "
                           f"{self.after_s:g} s go to {path}")
        self._keep(snap)
        return snap.replace(notices=snap.notices + tuple(notices)) if notices else snap

    def _keep(self, snap: Snapshot) -> None:
        rows = snapshot_rows(snap)
        self._kept.append((snap, rows))
        self._rows += rows
        while len(self._kept) > 1 and (self._rows > self.max_rows or snap.time - self._kept[0][0].time > self.window_s):
            _, n = self._kept.popleft()
            self._rows -= n

    @staticmethod
    def _name(snap: Snapshot, cause: str) -> str:
        when = _dt.datetime.fromtimestamp(snap.time).strftime("%Y%m%d-%H%M%S")
        kind = cause.split(":", 1)[0]
        detail = cause.split(":", 1)[1] if kind == "trigger" else ""
        slug = re.sub(r"[^A-Za-z0-9.]+", "-", f"{kind} {detail}").strip("-")[:60]
        return f"ebpftop-{when}-{slug}.jsonl"

    def _finish(self) -> None:
        if self._recorder is not None:
            self._recorder.close()
            self._recorder = None

    def close(self) -> None:
        try:
            self.inner.close()
        finally:
            self._finish()
