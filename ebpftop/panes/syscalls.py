"""The Syscalls tab: syscall counts by process name."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult

from ebpftop.panes.base import View, ViewInput
from ebpftop.panes.table import Column, SortableTable, num, safe
from ebpftop.render import count
from ebpftop.sets.syscalls import SyscallRow


class SyscallTable(SortableTable):
    COLUMNS = (
        Column("comm", "COMM", lambda r: r[0].comm, lambda r: safe(r[0].comm)),
        Column("count", "SYSCALLS", lambda r: r[0].count, lambda r: num(r[0].count), numeric=True),
        Column("rate", "PER SEC", lambda r: r[0].count, lambda r: num(r[0].count / r[1]), numeric=True),
        Column("pids", "PIDS", lambda r: r[0].pids, lambda r: num(r[0].pids), numeric=True),
        Column("share", "SHARE", lambda r: r[0].count, lambda r: Text(_bar(r[0].count, r[2])), numeric=True),
    )
    DEFAULT_SORT = 1
    TREND_KEY = staticmethod(lambda r: (r[0].comm, r[0].cgroup))

    def row_key(self, r: tuple[SyscallRow, float, int]) -> str:
        return f"{r[0].comm}\0{r[0].cgroup}"

    def row_process(self, r):
        # one pid: that process; several: every process of that name
        return (r[0].by_pid[0][0], r[0].comm) if r[0].pids == 1 else (None, r[0].comm)


def _bar(n: int, peak: int, width: int = 20) -> str:
    filled = round(n * width / peak) if peak else 0
    return "█" * filled + "·" * (width - filled)


class SyscallView(View):
    PROBE_SET = "syscalls"
    TIMELINE = "syscalls"
    TITLE = "syscalls by process name (raw_syscalls:sys_enter)"

    def body(self) -> ComposeResult:
        yield SyscallTable(id="table")

    def draw(self, view: ViewInput) -> None:
        rows = view.snapshot.syscalls
        self.table.trends = self.trends(view, lambda s: {(r.comm, r.cgroup): r.count for r in s.syscalls})
        peak = max((r.count for r in rows), default=0)
        self.table.show([(r, view.snapshot.interval_s, peak) for r in rows])
        total = sum(r.count for r in rows)
        what = "containers" if view.grouped else "process names"
        self.set_summary(f"[Syscalls: {count(total)} in {view.snapshot.interval_s:g} s, "
                 f"{count(round(total / view.snapshot.interval_s))}/s, {len(rows)} {what}]")
