"""The File opens tab: opens by process and path, with their failures."""

from __future__ import annotations

from textual.app import ComposeResult

from ebpftop.panes.base import View, ViewInput
from ebpftop.panes.table import Column, SortableTable, num, safe
from ebpftop.render import count
from ebpftop.sets.file_opens import FileOpenRow


class FileOpenTable(SortableTable):
    COLUMNS = (
        Column("count", "OPENS", lambda r: r.count, lambda r: num(r.count), numeric=True),
        Column("errors", "FAILED", lambda r: r.errors, lambda r: num(r.errors), numeric=True),
        Column("pid", "PID", lambda r: r.pid, lambda r: num(r.pid, str(r.pid)), numeric=True),
        Column("comm", "COMM", lambda r: r.comm, lambda r: safe(r.comm)),
        Column("path", "PATH", lambda r: r.path, lambda r: safe(r.path + ("…" if r.truncated else ""))),
    )

    TREND_KEY = staticmethod(lambda r: (r.comm, r.pid, r.cgroup, r.path))

    def row_key(self, r: FileOpenRow) -> str:
        return f"{r.pid}\0{r.comm}\0{r.cgroup}\0{r.truncated}\0{r.path}"

    def row_process(self, r: FileOpenRow):
        return (r.pid, r.comm)


class FileOpenView(View):
    PROBE_SET = "file_opens"
    TIMELINE = "opens"
    TITLE = "file opens (open, openat, openat2)"

    def body(self) -> ComposeResult:
        yield FileOpenTable(id="table")

    def draw(self, view: ViewInput) -> None:
        rows = view.snapshot.file_opens
        self.table.trends = self.trends(view, lambda s: {(r.comm, r.pid, r.cgroup, r.path): r.count
                                                         for r in s.file_opens})
        self.table.show(rows)
        self.set_summary(f"[Opens: {count(sum(r.count for r in rows))}, failed {count(sum(r.errors for r in rows))}, "
                 f"{len(rows)} distinct (process, path) · … marks a path longer than 255 bytes]")
