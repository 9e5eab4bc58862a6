"""The Alerts tab: opens of watched files, newest first, never filtered."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import Static

from ebpftop.panes.base import View, ViewInput
from ebpftop.panes.table import Column, SortableTable, clock, num, safe
from ebpftop.render import count


class AlertTable(SortableTable):
    COLUMNS = (
        Column("time", "TIME", lambda a: a.time, lambda a: Text(clock(a.time)), numeric=True),
        Column("pid", "PID", lambda a: a.pid, lambda a: num(a.pid, str(a.pid)), numeric=True),
        Column("ppid", "PPID", lambda a: a.ppid, lambda a: num(a.ppid, str(a.ppid) if a.ppid else "?"), numeric=True),
        Column("uid", "UID", lambda a: a.uid, lambda a: num(a.uid, str(a.uid)), numeric=True),
        Column("comm", "COMM", lambda a: a.comm, lambda a: safe(a.comm)),
        Column("result", "RESULT", lambda a: a.result,
               lambda a: safe(a.result, style="bold red" if a.ret >= 0 else "yellow")),
        Column("path", "PATH", lambda a: a.path, lambda a: safe(a.path)),
    )

    def row_key(self, a) -> str:
        return f"{a.time:.9f}/{a.pid}/{a.ret}/{a.path}"

    def row_process(self, a):
        return (a.pid, a.comm)


class AlertsView(View):
    PROBE_SET = "file_opens"  # alerts ride on the file opens probes
    TITLE = "opens of watched files (successful or not), newest first"

    def update_from(self, view: ViewInput) -> None:
        self._input = view
        status = self.status_of(view)
        state = self.query_one("#probe-state", Static)
        if status in ("ok", "starting"):
            View.update_from(self, view)
            if view.snapshot is None:
                self.draw(view)  # alerts can come before the first poll
        else:
            state.update(Text("✖ not running (it rides on the file opens probe): ", style="bold red") + safe(status))

    def body(self) -> ComposeResult:
        yield AlertTable(id="table")

    def draw(self, view: ViewInput) -> None:
        self.table.show(list(view.kept("alerts")))
        lost = view.history.lost_total.get("alerts", 0)
        self.set_summary(f"[Alerts: {count(view.history.totals_at(view.until)['alerts'])} since start"
                         + (f" · {count(lost)} LOST in bursts" if lost else "")
                         + " · never hidden by the name filter]")
