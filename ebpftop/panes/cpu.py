"""The CPU tab, where ebpftop opens: who uses the CPU and where each
process's time goes (on CPU, waiting for a CPU, blocked, asleep), its
threads when scoped to one process (Enter); then (t) the run-queue latency
histogram, the hottest functions of the CPU profile and its flame graph,
over a window of the kept intervals (w)."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Static

from ebpftop import snapshots
from ebpftop.panes import flame
from ebpftop.panes.base import View, ViewInput
from ebpftop.panes.latency import HistogramView, LatencyTable, Series
from ebpftop.panes.table import Column, SortableTable, num, safe
from ebpftop.render import count, duration
from ebpftop.sets.cpu import busy_pct, by_process
from ebpftop.sets.profile import HotFunction, hot_functions, merged
from ebpftop.text import visible

# the four states, as the split bar draws them: a glyph each, so they read
# apart without colour too (on the cursor's row, on a monochrome terminal)
STATE_CELLS = (("on_cpu_ns", "█", "green"), ("runnable_ns", "▓", "yellow"), ("blocked_ns", "▒", "red"),
               ("sleeping_ns", "·", "dim"))
BAR_WIDTH = 16
RUNQ = Series("run queue", "waits", "runq_latency", "runq_p99")


def split_bar(row, width: int = BAR_WIDTH) -> Text:
    """The row's time on CPU, waiting, blocked and asleep as one bar, each
    state's cells in proportion (largest remainders, so they add to width)."""
    wall = row.wall_ns
    out = Text()
    if not wall:
        return out
    shares = [getattr(row, f) * width / wall for f, _, _ in STATE_CELLS]
    cells = [int(x) for x in shares]
    for i in sorted(range(4), key=lambda i: shares[i] - cells[i], reverse=True)[:width - sum(cells)]:
        cells[i] += 1
    for n, (_, char, style) in zip(cells, STATE_CELLS):
        out.append(char * n, style=style)
    return out


def pct(part: int, whole: int) -> Text:
    return num(0, "-" if not whole else f"{part * 100 / whole:.0f}")


def _share(field: str):
    return lambda r: getattr(r[0], field) / r[0].wall_ns if r[0].wall_ns else 0



# Where a process's or a thread's time went, and its switches: both tables' columns
TIME_COLUMNS = (
        Column("cpu", "CPU%", lambda r: r[0].on_cpu_ns,
               lambda r: num(0, f"{r[0].on_cpu_ns / (r[1] * 1e7):.1f}"), numeric=True),
        Column("on_cpu", "ON CPU", lambda r: r[0].on_cpu_ns, lambda r: num(0, duration(r[0].on_cpu_ns)), numeric=True),
        Column("wait", "WAIT%", _share("runnable_ns"), lambda r: pct(r[0].runnable_ns, r[0].wall_ns), numeric=True),
        Column("blocked", "BLOCK%", _share("blocked_ns"), lambda r: pct(r[0].blocked_ns, r[0].wall_ns), numeric=True),
        Column("sleep", "SLEEP%", _share("sleeping_ns"), lambda r: pct(r[0].sleeping_ns, r[0].wall_ns), numeric=True),
        Column("split", "█RUN ▓WAIT ▒BLOCK ·SLEEP", lambda r: r[0].on_cpu_ns / r[0].wall_ns if r[0].wall_ns else 0,
               lambda r: split_bar(r[0])),
)
SWITCH_COLUMNS = (
        Column("vcsw", "VCSW", lambda r: r[0].voluntary, lambda r: num(r[0].voluntary), numeric=True),
        Column("icsw", "ICSW", lambda r: r[0].involuntary, lambda r: num(r[0].involuntary), numeric=True),
)

class CpuProcessTable(SortableTable):
    """(CpuProcess, interval_s, its run-queue p99 or None) rows."""

    COLUMNS = (
        Column("pid", "PID", lambda r: r[0].pid, lambda r: num(0, str(r[0].pid) if r[0].pid else "-"), numeric=True),
        Column("comm", "COMM", lambda r: r[0].comm, lambda r: safe(r[0].comm)),
        *TIME_COLUMNS,
        Column("threads", "THR", lambda r: r[0].threads, lambda r: num(r[0].threads), numeric=True),
        *SWITCH_COLUMNS,
        Column("runq", "RUNQ P99", lambda r: r[2] or 0, lambda r: num(0, duration(r[2])), numeric=True),
    )
    DEFAULT_SORT = 2
    TREND_KEY = staticmethod(lambda r: (r[0].pid, r[0].cgroup))

    def row_key(self, r) -> str:
        return f"{r[0].pid}\0{r[0].cgroup}\0{r[0].comm}"

    def row_process(self, r):
        return (r[0].pid, r[0].comm) if r[0].pid else None


def thread_name(t) -> str:
    return f"[{t.threads:,} other threads]" if t.threads > 1 else t.comm


class CpuThreadTable(SortableTable):
    """One process's threads: (CpuThread, interval_s) rows."""

    COLUMNS = (
        Column("tid", "TID", lambda r: r[0].tid, lambda r: num(0, str(r[0].tid) if r[0].tid else "-"), numeric=True),
        Column("comm", "THREAD", lambda r: r[0].comm, lambda r: safe(thread_name(r[0]))),
        *TIME_COLUMNS,
        *SWITCH_COLUMNS,
    )
    DEFAULT_SORT = 2

    def row_key(self, r) -> str:
        return f"{r[0].tid}\0{r[0].comm}"

    def row_process(self, r):
        return (r[0].pid, r[0].comm) if r[0].pid else None


def _share_of(n: int, total: int) -> Text:
    return num(0, f"{n * 100 / total:.1f}" if total else "-")


class HotFunctionTable(SortableTable):
    """The profile's functions: (HotFunction, all samples) rows."""

    COLUMNS = (
        Column("self_pct", "SELF%", lambda r: r[0].self_samples, lambda r: _share_of(r[0].self_samples, r[1]),
               numeric=True),
        Column("self", "SELF", lambda r: r[0].self_samples, lambda r: num(r[0].self_samples), numeric=True),
        Column("total_pct", "TOTAL%", lambda r: r[0].total_samples, lambda r: _share_of(r[0].total_samples, r[1]),
               numeric=True),
        Column("total", "TOTAL", lambda r: r[0].total_samples, lambda r: num(r[0].total_samples), numeric=True),
        Column("function", "FUNCTION", lambda r: r[0].name,
               lambda r: safe(r[0].name + (" [k]" if r[0].kernel else ""), style="" if not r[0].kernel else "cyan")),
        Column("comm", "MOSTLY IN", lambda r: r[0].top_comm, lambda r: safe(r[0].top_comm)),
    )
    DEFAULT_SORT = 0
    HAS_CONTAINER = False  # a function's samples are summed over processes

    def row_key(self, r) -> str:
        return f"{r[0].name}\0{r[0].kernel}"


def scope_text(flt) -> str:
    """What the filter keeps, in words."""
    parts = []
    if flt.pid is not None:
        parts.append(f"pid {flt.pid}")
    if flt.exact_comm is not None:
        parts.append(f"process {flt.exact_comm}")
    elif flt.comm:
        parts.append(f"processes matching {flt.comm}")
    if flt.container is not None:
        parts.append(f"container {flt.container}")
    return ", ".join(parts) or "everything"


# the profile's windows (w): how far back from the moment shown its samples are summed
WINDOWS = (("this interval", 0.0), ("the last minute", 60.0), ("the last 5 minutes", 300.0),
           ("every kept interval", float("inf")))
PROFILE_MODES = ("hot functions", "flame graph")


class CpuView(View):
    PROBE_SET = "cpu"
    TIMELINE = "cpu_busy"
    MODES = ("processes", "run queue", *PROFILE_MODES)
    BINDINGS = [
        Binding("t", "next_mode", "CPU views", show=False,
                tooltip="where each process's time goes → the run-queue latency histogram (runqlat) → the hottest "
                        "functions of the CPU profile → its flame graph"),
        Binding("w", "next_window", "profile window", show=False,
                tooltip="the profile's samples summed over this interval, the last minute, 5 minutes, or every "
                        "kept interval"),
    ]
    DEFAULT_CSS = """
    CpuView .latency-body { height: 1fr; }
    CpuView .histogram-box { width: auto; max-width: 65%; height: 1fr; }
    CpuView .histogram { width: auto; padding: 0 1; }
    CpuView #flame-box { height: 1fr; scrollbar-gutter: stable; }
    CpuView #flame { width: 100%; }
    """
    mode = "processes"
    window = 1

    @property
    def TITLE(self) -> str:  # noqa: N802 - the View's name for it
        if self.mode in PROFILE_MODES:
            return "CPU profile with stacks (perf cpu-clock)"
        return "on-CPU time and where it goes (sched:sched_switch, sched_wakeup)"

    @property
    def probe_set(self) -> str:
        return "profile" if self.mode in PROFILE_MODES else "cpu"

    @property
    def timeline_name(self) -> str | None:
        return "runq_p99" if self.mode == "run queue" else "cpu_busy"

    def body(self) -> ComposeResult:
        yield CpuProcessTable(id="processes-table")
        thread_table = CpuThreadTable(id="threads-table")
        thread_table.display = False
        yield thread_table
        with Horizontal(classes="latency-body", id="runq-body") as runq:
            runq.display = False
            with VerticalScroll(classes="histogram-box"):
                yield Static(id="histogram", classes="histogram")
            yield LatencyTable(id="runq-table")
        functions = HotFunctionTable(id="functions-table")
        functions.display = False
        yield functions
        with VerticalScroll(id="flame-box") as box:
            box.display = False
            yield Static(id="flame")

    def _shown(self, scoped: bool) -> str:
        if self.mode == "run queue":
            return "runq"
        if self.mode == "hot functions":
            return "functions"
        if self.mode == "flame graph":
            return "flame"
        return "threads" if scoped else "processes"

    @property
    def table(self) -> SortableTable:
        scoped = self._input is not None and self._input.flt.pid is not None
        return self.query_one({"processes": CpuProcessTable, "threads": CpuThreadTable, "runq": LatencyTable,
                               "functions": HotFunctionTable, "flame": HotFunctionTable}[self._shown(scoped)])

    def action_next_mode(self) -> None:
        self.mode = self.MODES[(self.MODES.index(self.mode) + 1) % len(self.MODES)]
        self.redraw()
        if self.mode == "flame graph":
            self.query_one("#flame-box").focus()
        else:
            self.table.focus()

    def action_next_window(self) -> None:
        self.window = (self.window + 1) % len(WINDOWS)
        self.redraw()

    def update_from(self, view: ViewInput) -> None:
        self._input = view
        shown = self._shown(view.flt.pid is not None)
        self.query_one(CpuProcessTable).display = shown == "processes"
        self.query_one(CpuThreadTable).display = shown == "threads"
        self.query_one("#runq-body").display = shown == "runq"
        self.query_one(HotFunctionTable).display = shown == "functions"
        self.query_one("#flame-box").display = shown == "flame"
        super().update_from(view)

    def draw(self, view: ViewInput) -> None:
        snap = view.snapshot
        busy = " · ".join(f"cpu{c.cpu} {busy_pct((c,)):.0f}%" for c in snap.cpus)
        host = f" · {busy_pct(snap.cpus):.0f}% of {len(snap.cpus)} CPUs" if snap.cpus else ""
        estimated = f" · ≈ {count(snap.cpu_estimated)} slices estimated" if snap.cpu_estimated else ""
        if self.mode == "run queue":
            self.draw_runq(view, busy + host)
            return
        if self.mode in PROFILE_MODES:
            self.draw_profile(view)
            return
        processes = by_process(snap.cpu_threads)
        if view.flt.pid is not None:
            threads = [t for t in snap.cpu_threads if t.pid == view.flt.pid]
            self.table.show([(t, snap.interval_s) for t in threads])
            self.set_summary(f"[{sum(t.threads for t in threads)} threads of pid {view.flt.pid}, on CPU "
                             f"{duration(sum(t.on_cpu_ns for t in threads))} in {snap.interval_s:g} s · "
                             f"{busy}{host}{estimated} · Backspace: every process]")
            return
        p99 = {(p.pid, p.cgroup): p.histogram.percentile(99) for p in snap.runq_latency.by_process}
        self.table.trends = self.trends(view, lambda s: {(p.pid, p.cgroup): p.on_cpu_ns / 1e6
                                                         for p in by_process(s.cpu_threads)})
        self.table.show([(p, snap.interval_s, p99.get((p.pid, p.cgroup))) for p in processes])
        what = "containers" if view.grouped else "processes"
        self.set_summary(f"[CPU: {busy or 'the first poll is the baseline'}{host} · {len(processes)} {what}"
                         f"{estimated} · Enter: its threads · t: run queue]")

    def draw_runq(self, view: ViewInput, busy: str) -> None:
        lat = view.snapshot.runq_latency
        who = f"processes matching {view.flt.comm!r}" if view.flt.comm else "all processes"
        bar_width = 30 if self.size.width >= 100 else 16
        self.query_one("#histogram", Static).update(HistogramView.histogram_text(RUNQ, lat, who, bar_width))
        self.table.show(lat.by_name())
        self.set_summary(f"[run-queue latency: wakeup to running, ns, log2 buckets · {busy} · t: processes]")

    def profile_rows(self, view: ViewInput) -> tuple[list, int, float]:
        """The profile's stacks summed over the window that ends at the
        moment shown, through the one filter (and grouped, with g): (rows,
        idle samples, the seconds they cover)."""
        snap = view.snapshot
        span = WINDOWS[self.window][1]
        kept = [s for s, _ in view.history.snapshots if snap.time - span < s.time < snap.time]
        rows = list(snap.profile_stacks)  # the shown snapshot: already filtered and grouped
        for s in kept:
            part = snapshots.rows_filtered("profile_stacks", s.profile_stacks, view.flt, view.containers)
            rows += snapshots.rows_by_container("profile_stacks", part, view.containers) if view.grouped else part
        return merged(rows), snap.profile_idle + sum(s.profile_idle for s in kept), \
            snap.interval_s + sum(s.interval_s for s in kept)

    def draw_profile(self, view: ViewInput) -> None:
        rows, idle, seconds = self.profile_rows(view)
        total = sum(r.samples for r in rows)
        lost = sum(r.samples for r in rows if any(f.startswith("[stack lost") for f, _ in r.frames))
        who = f" of {scope_text(view.flt)}" if view.flt.active else ""
        window = WINDOWS[self.window][0]
        lost_text = f" · {count(lost)} without a stack (marked [stack lost])" if lost else ""
        head = (f"[profile{who}: {count(total)} samples over {window} ({duration(round(seconds * 1e9))})"
                f"{', ' + count(idle) + ' on idle CPUs' if idle and not view.flt.active else ''}{lost_text}")
        if self.mode == "hot functions":
            functions: list[HotFunction] = hot_functions(rows)
            self.table.show([(f, total) for f in functions])
            self.set_summary(f"{head} · w: window · t: flame graph]")
            return
        box = self.query_one("#flame-box")
        width = max(1, box.scrollable_content_region.width or self.size.width - 2)  # inside the scrollbar's gutter
        root = flame.tree(rows, root_name="all" if not view.flt.active else scope_text(view.flt))
        lines = flame.icicle(root, width)
        key = flame.legend()
        key.append("callers above what they call, each as wide as its samples", style="dim")
        body = Text("\n").join([key, *lines]) if lines else Text(f"no samples over {window}", style="dim")
        self.query_one("#flame", Static).update(body)
        # not set_summary: the hot functions' table is not shown, its row count is not this view's
        self.query_one("#summary", Static).update(Text(visible(f"{head} · w: window · t: processes]")))

    def on_resize(self, _event) -> None:
        if self.mode in ("run queue", "flame graph") and self._input is not None and self._input.snapshot is not None:
            self.draw(self._input)
