"""The Processes tab: fork, exec, exit and OOM kills, newest first."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult

from ebpftop import snapshots
from ebpftop.panes.base import View, ViewInput
from ebpftop.panes.table import Column, SortableTable, clock, num, safe
from ebpftop.render import byte_size, count
from ebpftop.sets.oom import OomKill
from ebpftop.sets.processes import ProcessEvent


def oom_event(k: OomKill) -> ProcessEvent:
    """An OOM kill as the table's row: its figures where exec shows its program."""
    return ProcessEvent(k.time, "oom-kill", k.pid, 0, k.comm,
                        filename=f"anon-rss {byte_size(k.anon_rss_kb * 1024)}" if k.anon_rss_kb else "",
                        args=("",) + ((f"(triggered by {k.trigger_comm} pid {k.trigger_pid})",)
                                      if k.trigger_pid and k.trigger_pid != k.pid else ()),
                        cgroup=k.cgroup)


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
               lambda e: safe(e.kind, style={"fork": "cyan", "exec": "green", "exit": "magenta",
                                             "oom-kill": "bold red"}.get(e.kind, ""))),
        Column("pid", "PID", lambda e: e.pid, lambda e: num(e.pid, str(e.pid)), numeric=True),
        Column("ppid", "PPID", lambda e: e.ppid, lambda e: num(e.ppid, str(e.ppid) if e.ppid else "-"), numeric=True),
        Column("comm", "COMM", lambda e: e.comm, lambda e: safe(e.comm)),
        Column("code", "EXIT", lambda e: -1 if e.exit_code is None else e.exit_code,
               lambda e: num(0, "" if e.kind != "exit" else ("signal" if e.exit_code is None else str(e.exit_code)))),
        Column("life", "LIFETIME", lambda e: e.lifetime_s or 0, lambda e: num(0, _lifetime(e.lifetime_s) if e.kind == "exit" else ""),
               numeric=True),
        Column("what", "PROGRAM ARGS (argv[1:])", lambda e: (e.filename, e.args),
               lambda e: safe(" ".join(x for x in (e.filename, *e.args[1:]) if x) if e.kind in ("exec", "oom-kill") else "")),
    )

    def row_key(self, e) -> str:
        return f"{e.time:.9f}/{e.kind}/{e.pid}"

    def row_process(self, e):
        return (e.pid, e.comm)


class ProcessesView(View):
    PROBE_SET = "processes"
    TIMELINE = "processes"
    TITLE = "fork, exec, exit and OOM kills (task:task_newtask, sched:sched_process_exec/exit, oom:mark_victim)"

    def body(self) -> ComposeResult:
        yield ProcessTable(id="table")

    def draw(self, view: ViewInput) -> None:
        kept = view.kept("processes")
        kills = snapshots.rows_filtered("oom_kills", view.kept("oom_kills"), view.flt, view.containers)
        rows = list(snapshots.rows_filtered("processes", kept, view.flt, view.containers))
        if kills:
            rows = sorted(rows + [oom_event(k) for k in kills], key=lambda e: e.time, reverse=True)
        self.table.show(rows)
        kinds = {k: sum(1 for e in view.snapshot.processes if e.kind == k) for k in ("fork", "exec", "exit")}
        ooms = len(view.snapshot.oom_kills)
        self.set_summary(f"[This interval: {kinds['fork']} forks, {kinds['exec']} execs, {kinds['exit']} exits"
                         + (f", {ooms} OOM kill{'s' if ooms > 1 else ''}" if ooms else "") +
                         f" · the last {count(len(kept))} events kept]")
