"""File opens by process and path, and watched-file alerts (bpf/file_opens.c):
open, openat, openat2 and creat, counted per (process, path) with their
failures; every open of a watched path, successful or not, an alert."""

from __future__ import annotations

import ctypes
import errno
import sys
from collections import deque
from operator import itemgetter
from typing import NamedTuple

from ebpftop import cdefs
from ebpftop import watch as watchlist
from ebpftop.aggregate import busiest_first, decode_c_string
from ebpftop.model import iso_time, parse_iso_time
from ebpftop.render import count
from ebpftop.sets.base import (
    Collector,
    CounterFamily,
    Figure,
    Headline,
    ProbeSet,
    Rows,
    by_label,
    container_labels,
    per_s,
    wall_time,
)

PATH_CACHE_SIZE = 65536  # paths by hash, read from the kernel once
MAX_ALERTS = 1000  # kept for the TUI between two of its reads, and shown in the Alerts tab


class FileOpenRow(NamedTuple):
    comm: str
    pid: int
    path: str
    count: int
    errors: int
    truncated: bool = False  # the path was longer than the probe reads
    cgroup: int = 0  # cgroup v2 id (0: unknown); Snapshot.containers says what it is

    def to_dict(self) -> dict:
        return {
            "comm": self.comm,
            "pid": self.pid,
            "path": self.path,
            "count": self.count,
            "errors": self.errors,
            "truncated": self.truncated,
            "cgroup": self.cgroup,
        }

    @classmethod
    def from_dict(cls, d: dict) -> FileOpenRow:
        return cls(
            comm=str(d["comm"]),
            pid=int(d["pid"]),
            path=str(d["path"]),
            count=int(d["count"]),
            errors=int(d["errors"]),
            truncated=bool(d.get("truncated", False)),
            cgroup=int(d.get("cgroup", 0)),
        )


class Alert(NamedTuple):
    """An open of a watched path, successful or not."""

    time: float
    pid: int
    ppid: int  # 0 when the process was gone before it could be read
    uid: int
    comm: str
    path: str
    ret: int  # the fd, or -errno
    cgroup: int = 0  # cgroup v2 id (0: unknown); Snapshot.containers says what it is

    # what it is as an alert (the app's toast, the Alerts tab)
    PART = "alerts"
    ALERT_TITLE = "watched file opened"

    @property
    def result(self) -> str:
        if self.ret >= 0:
            return "ok"
        return errno.errorcode.get(-self.ret, str(self.ret))

    @property
    def alert_what(self) -> str:
        return f"opened: {self.result}"

    @property
    def alert_detail(self) -> str:
        return self.path

    @property
    def alert_cause(self) -> str:
        """What set off a flight recording, in its notice."""
        return f"{self.comm} opened {self.path}"

    def alert_text(self) -> str:
        return f"{self.comm} (pid {self.pid}, uid {self.uid}) opened {self.path}: {self.result}"

    def to_dict(self) -> dict:
        return {
            "time": iso_time(self.time),
            "pid": self.pid,
            "ppid": self.ppid,
            "uid": self.uid,
            "comm": self.comm,
            "path": self.path,
            "result": self.result,
            "ret": self.ret,
            "cgroup": self.cgroup,
        }

    @classmethod
    def from_dict(cls, d: dict) -> Alert:
        return cls(
            time=parse_iso_time(d["time"]),
            pid=int(d["pid"]),
            ppid=int(d["ppid"]),
            uid=int(d["uid"]),
            comm=str(d["comm"]),
            path=str(d["path"]),
            ret=int(d["ret"]),
            cgroup=int(d.get("cgroup", 0)),
        )


def file_open_rows(entries) -> tuple[FileOpenRow, ...]:
    """(comm, pid, path, flag, count, errors, cgroup) entries into rows, most
    opened first.  The flag (cdefs.PATH_CUT, PATH_UNREADABLE) says what was read."""
    totals: dict[tuple[str, int, str, bool, int], list[int]] = {}
    get = totals.get
    unreadable, cut = cdefs.PATH_UNREADABLE, cdefs.PATH_CUT
    for comm, pid, path, flag, n, errors, cgroup in entries:
        if flag == unreadable:
            path = "<unreadable>"
        key = (comm, pid, path, flag == cut, cgroup)
        t = get(key)
        if t is None:
            totals[key] = [n, errors]
        else:
            t[0] += n
            t[1] += errors
    new = tuple.__new__  # FileOpenRow(...) without its Python-level __new__
    rows = [new(FileOpenRow, (c, p, path, n, e, trunc, cg)) for (c, p, path, trunc, cg), (n, e) in totals.items()]
    return busiest_first(rows, 3, itemgetter(2, 0, 1))


def grouped(rows, label) -> tuple[FileOpenRow, ...]:
    opens: dict[tuple[str, str, bool], list[int]] = {}
    for r in rows:
        t = opens.setdefault((label(r), r.path, r.truncated), [0, 0, r.cgroup])
        t[0] += r.count
        t[1] += r.errors
    return tuple(sorted((FileOpenRow(name, 0, path, n, e, trunc, cgroup=cg)
                         for (name, path, trunc), (n, e, cg) in opens.items()),
                        key=lambda r: (-r.count, r.path, r.comm)))


def alert_of(e, ppid: int) -> Alert:
    """A file_opens.c alert_event; ppid from the event, or read by the caller."""
    return Alert(time=wall_time(e.ts_ns), pid=e.pid, ppid=ppid, uid=e.uid, comm=decode_c_string(e.comm),
                 path=decode_c_string(e.path), ret=e.ret, cgroup=e.cgroup)


def ppid_of(pid: int) -> int:
    """The parent of pid, read at once (0 if it is already gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return int(f.read().rsplit(b")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return 0


def to_syslog(alert: Alert) -> None:
    import syslog

    syslog.syslog(syslog.LOG_AUTHPRIV | syslog.LOG_WARNING, watchlist.syslog_message(alert))


class FileOpensCollector(Collector):
    """options: "watch" (the paths to alert on), "syslog" (also write each alert there)."""

    rings = {"alert_events": "on_alert"}

    def __init__(self, kernel, options):
        super().__init__(kernel, options)
        self.paths: dict[int, str] = {}  # path hash -> path (see bpf/file_opens.c)
        self._path_reader = None
        self._alerts_interval: list[Alert] = []  # for the next snapshot
        self._alerts_new: deque[Alert] = deque(maxlen=MAX_ALERTS)  # for take_alerts(), bounded

    def start(self) -> None:
        watched = self.kernel.table("watched_paths")
        for h in watchlist.hashes(self.options.get("watch", watchlist.DEFAULT_WATCH)):
            watched[ctypes.c_ulonglong(h)] = ctypes.c_ubyte(1)

    def on_alert(self, data, _size) -> None:
        e = self.kernel.table("alert_events").event(data)
        alert = alert_of(e, e.ppid or ppid_of(e.pid))
        self._alerts_new.append(alert)
        self._alerts_interval.append(alert)
        if self.options.get("syslog"):
            to_syslog(alert)

    def take_alerts(self) -> list[Alert]:
        new = list(self._alerts_new)
        self._alerts_new.clear()
        return new

    def collect(self, ctx) -> dict:
        # Summed on the map's own bytes (a key's path once its hash is
        # known), the comm decoded once per row: one pass over the entries.
        known = self.paths.get  # nearly every path is cached: no method call per entry for it
        unreadable, cut = cdefs.PATH_UNREADABLE, cdefs.PATH_CUT
        totals: dict[tuple, list[int]] = {}
        get = totals.get
        for (comm, tgid, path_hash, flags, cgroup), (n, errors) in self.kernel.drain(
                "file_opens", ("comm", "tgid", "path_hash", "flags", "cgroup"), ("count", "errors")):
            if flags == unreadable:
                key = (comm, tgid, "<unreadable>", False, cgroup)
            else:
                key = (comm, tgid, known(path_hash) or self.path(path_hash), flags == cut, cgroup)
            t = get(key)
            if t is None:
                totals[key] = [n, errors]
            else:
                t[0] += n
                t[1] += errors
        decode = decode_c_string
        new = tuple.__new__  # FileOpenRow(...) without its Python-level __new__
        rows = [new(FileOpenRow, (decode(c), p, path, n, e, trunc, cg)) for (c, p, path, trunc, cg), (n, e) in totals.items()]
        alerts, self._alerts_interval = tuple(self._alerts_interval), []
        return {"file_opens": busiest_first(rows, 3, itemgetter(2, 0, 1)), "alerts": alerts}

    def path(self, path_hash: int) -> str:
        """The path behind a hash, from the kernel's LRU map of paths, cached:
        a path is read from the kernel once, not at every poll."""
        path = self.paths.get(path_hash)
        if path is None:
            if self._path_reader is None:
                self._path_reader = self.kernel.reader("open_paths")
            raw = self._path_reader.get(path_hash.to_bytes(8, sys.byteorder))
            if raw is None:
                return "<path evicted before it was read>"
            path = decode_c_string(raw)
            if len(self.paths) >= PATH_CACHE_SIZE:
                self.paths.clear()
            self.paths[path_hash] = path
        return path


def _opens(s) -> int:
    return sum(r.count for r in s.file_opens)


def _errors(s) -> int:
    return sum(r.errors for r in s.file_opens)


SET = ProbeSet(
    name="file_opens", c_file="file_opens.c", title="file opens by process and path, and watched-file alerts",
    parts=(
        Rows("file_opens", FileOpenRow, group=grouped),
        # never filtered: an open of a watched file is shown whoever made it;
        # the TUI takes them from the source as they come (take_alerts)
        Rows("alerts", Alert, filter=None, kept=MAX_ALERTS, newest_first=False, streamed=True),
    ),
    collector=FileOpensCollector,
    tracepoints=("syscalls/sys_enter_openat", "syscalls/sys_exit_openat", "task/task_newtask"),
    fields={"syscalls/sys_enter_openat": ("filename",), "syscalls/sys_exit_openat": ("ret",),
            "task/task_newtask": ("pid", "clone_flags")},
    map_sizes={"FILE_OPENS_MAP_SIZE": 16384},
    lost_counters=("file_opens", "alerts"),
    shared_hooks=("task/task_newtask", "raw_syscalls/sys_enter"),
    counters=(
        CounterFamily("ebpftop_file_opens", "open/openat/openat2 calls by process name.", ("comm",),
                      lambda s, _: by_label(((r.comm,), r.count) for r in s.file_opens)),
        CounterFamily("ebpftop_file_open_errors", "Failed open/openat/openat2 calls by process name.", ("comm",),
                      lambda s, _: by_label(((r.comm,), r.errors) for r in s.file_opens)),
        CounterFamily("ebpftop_container_file_opens", "open/openat/openat2 calls by container.",
                      ("container", "kind"),
                      lambda s, _: by_label((container_labels(s, r.cgroup), r.count) for r in s.file_opens)),
        CounterFamily("ebpftop_watched_file_opens", "Opens of watched (sensitive) files, by process name and "
                      "result (ok or the errno).", ("comm", "result"),
                      lambda s, _: by_label(((a.comm, a.result), 1) for a in s.alerts)),
    ),
    headlines={"opens": Headline("opens/s", lambda s: per_s(_opens(s), s), lambda v: count(round(v)),
                                 lambda s: f"{count(_errors(s))} failed in {s.interval_s:g} s")},
    figures={
        "file_opens_per_s": Figure("opens per second", lambda s: per_s(_opens(s), s)),
        "file_open_errors": Figure("failed opens in the interval", lambda s: float(_errors(s))),
    },
)
