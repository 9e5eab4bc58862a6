"""The Page faults tab: user page faults by process, in the interval and since start."""

from __future__ import annotations

from textual.app import ComposeResult

from ebpftop.panes.base import View, ViewInput
from ebpftop.panes.table import Column, SortableTable, num, safe
from ebpftop.render import count
from ebpftop.sets.page_faults import PageFaultRow


class PageFaultTable(SortableTable):
    COLUMNS = (
        Column("comm", "COMM", lambda r: r[0].comm, lambda r: safe(r[0].comm)),
        Column("pid", "PID", lambda r: r[0].pid, lambda r: num(r[0].pid, str(r[0].pid)), numeric=True),
        Column("count", "FAULTS", lambda r: r[0].count, lambda r: num(r[0].count), numeric=True),
        Column("rate", "PER SEC", lambda r: r[0].count, lambda r: num(r[0].count / r[1]), numeric=True),
        Column("total", "SINCE START", lambda r: r[2], lambda r: num(r[2]), numeric=True),
    )
    DEFAULT_SORT = 2
    TREND_KEY = staticmethod(lambda r: (r[0].comm, r[0].pid, r[0].cgroup))

    def row_key(self, r: tuple[PageFaultRow, float, int]) -> str:
        return f"{r[0].pid}\0{r[0].comm}\0{r[0].cgroup}"

    def row_process(self, r):
        return (r[0].pid, r[0].comm)


class PageFaultView(View):
    PROBE_SET = "page_faults"
    TIMELINE = "faults"
    TITLE = "user page faults (exceptions:page_fault_user)"

    def body(self) -> ComposeResult:
        yield PageFaultTable(id="table")

    def draw(self, view: ViewInput) -> None:
        rows = view.snapshot.page_faults
        self.table.trends = self.trends(view, lambda s: {(r.comm, r.pid, r.cgroup): r.count for r in s.page_faults})
        totals = view.history.since_start_at("page_faults", view.until)
        self.table.show([(r, view.snapshot.interval_s, totals.get((r.comm, r.pid), r.count)) for r in rows])
        self.set_summary(f"[Page faults: {count(sum(r.count for r in rows))} in {view.snapshot.interval_s:g} s, "
                 f"{len(rows)} {'containers' if view.grouped else 'processes'}]")
