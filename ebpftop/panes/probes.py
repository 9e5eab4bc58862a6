"""The Probes tab: every BPF program on this machine and its cost, ebpftop's marked."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Static

from ebpftop.panes.base import ProbeStatsRequested, View, ViewInput
from ebpftop.panes.table import Column, SortableTable, num, safe
from ebpftop.render import count


class ProbeTable(SortableTable):
    """Every BPF program on the machine, ebpftop's in green: (ProbeCost, interval_s) rows."""

    COLUMNS = (
        Column("id", "ID", lambda r: r[0].prog_id, lambda r: num(0, str(r[0].prog_id) if r[0].prog_id else "-"), numeric=True),
        Column("owner", "OWNER", lambda r: (not r[0].ours, r[0].owner),
               lambda r: safe(r[0].owner, style="green" if r[0].ours else "")),
        Column("hook", "HOOK", lambda r: r[0].hook, lambda r: safe(r[0].hook)),
        Column("runs", "RUNS", lambda r: r[0].runs, lambda r: num(r[0].runs), numeric=True),
        Column("rate", "PER SEC", lambda r: r[0].runs, lambda r: num(r[0].runs / r[1]), numeric=True),
        Column("avg", "AVG NS", lambda r: r[0].avg_ns or 0,
               lambda r: num(0, "-" if r[0].avg_ns is None else f"{r[0].avg_ns:,.0f}"), numeric=True),
        Column("cpu", "% OF A CPU", lambda r: r[0].run_time_ns,
               lambda r: num(0, f"{r[0].cpu_pct(r[1]):.3f}"), numeric=True),
        Column("name", "PROGRAM", lambda r: r[0].name, lambda r: safe(r[0].name, style="dim")),
    )
    DEFAULT_SORT = 6
    HAS_CONTAINER = False

    def row_key(self, r) -> str:
        return f"{r[0].prog_id}/{r[0].name}"


class ProbesView(View):
    """The course's "strace versus eBPF overhead" question, answered live."""

    TITLE = "every BPF program on this machine, ebpftop's marked (kernel run-time statistics)"
    BINDINGS = [Binding("c", "toggle_probe_cost", "probe cost", show=False,
                        tooltip="measure ebpftop's own BPF programs, and every other (on/off)")]

    def action_toggle_probe_cost(self) -> None:
        self.post_message(ProbeStatsRequested(on=self._input is None or self._input.probe_stats != "ok"))

    def status_from(self, status: dict, probe_stats: str) -> str:
        return probe_stats  # the kernel's run-time statistics: on, off, or why unavailable

    def update_from(self, view: ViewInput) -> None:
        self._input = view
        status = self.status_of(view)
        state = self.query_one("#probe-state", Static)
        if status == "off":
            state.update(Text("○ off: press c to measure each program's cost (while on, every BPF program "
                              "on this machine reads the clock twice more per run)", style="yellow"))
        elif status == "ok":
            state.update(Text("● measuring · " + self.TITLE + " · c stops", style="green"))
        else:
            state.update(Text("✖ ", style="bold red") + safe(status))
        if view.snapshot is not None:
            self.draw(view)

    def body(self) -> ComposeResult:
        yield ProbeTable(id="table")

    def draw(self, view: ViewInput) -> None:
        probes = view.snapshot.probes
        self.table.show([(p, view.snapshot.interval_s) for p in probes])
        ours = [p for p in probes if p.ours]

        def cpu(ps) -> float:
            return sum(p.run_time_ns for p in ps) / (view.snapshot.interval_s * 1e9) * 100

        self.set_summary(f"[{len(probes)} programs, {len(ours)} of them ebpftop's · all {cpu(probes):.3f}% of one CPU "
                         f"in the interval, ebpftop's {cpu(ours):.3f}% ({count(sum(p.runs for p in ours))} runs), "
                         "not counting the hooks' own dispatch]")
