"""The Alerts tab: every alert (opens of watched files, OOM kills: the
parts sets.STREAMED names), newest first, never filtered."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import Static

from ebpftop import sets
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
        Column("what", "WHAT", lambda a: a.alert_what,
               lambda a: safe(a.alert_what, style="yellow" if getattr(a, "ret", 0) < 0 else "bold red")),
        Column("detail", "DETAIL", lambda a: a.alert_detail, lambda a: safe(a.alert_detail)),
    )

    def row_key(self, a) -> str:
        return f"{a.PART}/{a.time:.9f}/{a.pid}/{a.alert_what}/{a.alert_detail}"

    def row_process(self, a):
        return (a.pid, a.comm)


class AlertsView(View):
    PROBE_SET = "file_opens"  # watched-file alerts ride on the file opens probes (its state line)
    TITLE = "opens of watched files (successful or not) and OOM kills, newest first"

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
        rows = sorted((a for part in sets.STREAMED for a in view.kept(part)), key=lambda a: a.time, reverse=True)
        self.table.show(rows)
        lost = sum(view.history.lost_total.get(part, 0) for part in sets.STREAMED)
        totals = view.history.totals_at(view.until)
        self.set_summary(f"[Alerts: {count(sum(totals[part] for part in sets.STREAMED))} since start"
                         + (f" · {count(lost)} LOST in bursts" if lost else "")
                         + " · never hidden by the name filter]")
