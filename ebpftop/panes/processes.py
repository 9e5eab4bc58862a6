"""The Processes tab: fork, exec and exit, newest first."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult

from ebpftop import snapshots
from ebpftop.panes.base import View, ViewInput
from ebpftop.panes.table import Column, SortableTable, clock, num, safe
from ebpftop.render import count


def _lifetime(s: float | None) -> str:
    if s is None:
        return "-"
    if s < 1:
        return f"{s * 1000:.1f} ms"
    if s < 120:
        return f"{s:.1f} s"
    return f"{s / 60:.0f} min"


class ProcessTable(SortableTable):
    COLUMNS = (
        Column("time", "TIME", lambda e: e.time, lambda e: Text(clock(e.time)), numeric=True),
        Column("kind", "EVENT", lambda e: e.kind,
               lambda e: safe(e.kind, style={"fork": "cyan", "exec": "green", "exit": "magenta"}.get(e.kind, ""))),
        Column("pid", "PID", lambda e: e.pid, lambda e: num(e.pid, str(e.pid)), numeric=True),
        Column("ppid", "PPID", lambda e: e.ppid, lambda e: num(e.ppid, str(e.ppid) if e.ppid else "-"), numeric=True),
        Column("comm", "COMM", lambda e: e.comm, lambda e: safe(e.comm)),
        Column("code", "EXIT", lambda e: -1 if e.exit_code is None else e.exit_code,
               lambda e: num(0, "" if e.kind != "exit" else ("signal" if e.exit_code is None else str(e.exit_code)))),
        Column("life", "LIFETIME", lambda e: e.lifetime_s or 0, lambda e: num(0, _lifetime(e.lifetime_s) if e.kind == "exit" else ""),
               numeric=True),
        Column("what", "PROGRAM ARGS (argv[1:])", lambda e: (e.filename, e.args),
               lambda e: safe(" ".join((e.filename, *e.args[1:])) if e.kind == "exec" else "")),
    )

    def row_key(self, e) -> str:
        return f"{e.time:.9f}/{e.kind}/{e.pid}"

    def row_process(self, e):
        return (e.pid, e.comm)


class ProcessesView(View):
    PROBE_SET = "processes"
    TIMELINE = "processes"
    TITLE = "fork, exec and exit (task:task_newtask, sched:sched_process_exec/exit)"

    def body(self) -> ComposeResult:
        yield ProcessTable(id="table")

    def draw(self, view: ViewInput) -> None:
        kept = view.kept("processes")
        self.table.show(snapshots.rows_filtered("processes", kept, view.flt, view.containers))
        kinds = {k: sum(1 for e in view.snapshot.processes if e.kind == k) for k in ("fork", "exec", "exit")}
        self.set_summary(f"[This interval: {kinds['fork']} forks, {kinds['exec']} execs, {kinds['exit']} exits · "
                         f"the last {count(len(kept))} events kept]")
