"""Views of a keyed log2 histogram family (sets/base.py: Histograms): the
Latency tab shows read() and write() latency, each a series of one family;
other sets' families are shown by a HistogramView of their own series."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Static

from ebpftop import snapshots
from ebpftop.panes import timeline
from ebpftop.panes.base import View, ViewInput
from ebpftop.panes.table import Column, SortableTable, num, safe
from ebpftop.render import count, duration, histogram_lines


class LatencyTable(SortableTable):
    """Per process name (and cgroup): calls and percentiles of read() or
    write() latency; (comm, cgroup, Histogram) rows."""

    COLUMNS = (
        Column("comm", "COMM", lambda r: r[0], lambda r: safe(r[0])),
        Column("count", "CALLS", lambda r: r[2].count, lambda r: num(r[2].count), numeric=True),
        Column("p50", "P50", lambda r: r[2].percentile(50) or 0, lambda r: num(0, duration(r[2].percentile(50))), numeric=True),
        Column("p90", "P90", lambda r: r[2].percentile(90) or 0, lambda r: num(0, duration(r[2].percentile(90))), numeric=True),
        Column("p99", "P99", lambda r: r[2].percentile(99) or 0, lambda r: num(0, duration(r[2].percentile(99))), numeric=True),
    )
    DEFAULT_SORT = 1

    def row_cgroup(self, r) -> int:
        return r[1]

    def row_key(self, r) -> str:
        return f"{r[0]}\0{r[1]}"

    def row_process(self, r):
        return (None, r[0])


# From this width on, the read() and write() histograms are drawn side by side.
SIDE_BY_SIDE_WIDTH = 150
# Below this width the histogram goes above the table instead of beside it:
# beside it, at 80 columns, the table lost its P90 and P99 columns.
STACKED_BELOW_WIDTH = 110


def side_by_side(left: Text, right: Text, gap: int = 4) -> Text:
    """Two blocks of lines as two columns (the left one padded to its widest line)."""
    left_lines, right_lines = left.split("\n"), right.split("\n")
    width = max((line.cell_len for line in left_lines), default=0) + gap
    out = Text()
    for i in range(max(len(left_lines), len(right_lines))):
        if i:
            out.append("\n")
        line = left_lines[i].copy() if i < len(left_lines) else Text()
        line.pad_right(width - line.cell_len)
        out.append_text(line)
        if i < len(right_lines):
            out.append_text(right_lines[i])
    return out


@dataclass(frozen=True)
class Series:
    """One series of a keyed log2 histogram family, as a view shows it."""

    label: str  # read()
    noun: str  # reads
    part: str  # the snapshot's part (sets/*.py: Histograms)
    headline: str  # its timeline headline


class HistogramView(View):
    """A keyed log2 histogram family: the shown series' histogram of the
    interval (every series side by side on a wide terminal) or over time
    as a heatmap (h), and its per-process table; w goes to the next series."""

    SERIES: tuple[Series, ...] = ()
    BINDINGS = [
        Binding("w", "next_series", "next series", show=False, tooltip="switch the histogram and table to the next "
                "series (read() and write())"),
        Binding("h", "toggle_heatmap", "over time", show=False,
                tooltip="latency over time, a heatmap of the kept intervals (and back)"),
    ]
    DEFAULT_CSS = """
    HistogramView .latency-body { height: 1fr; }
    HistogramView .histogram-box { width: auto; max-width: 65%; height: 1fr; }
    HistogramView .histogram { width: auto; padding: 0 1; }
    HistogramView .latency-body.stacked { layout: vertical; }
    HistogramView .latency-body.stacked .histogram-box { width: 100%; max-width: 100%; height: 1fr; }
    HistogramView .latency-body.stacked LatencyTable { height: 1fr; }
    """
    shown = 0  # the series the table (and, when narrow, the histogram) shows
    heatmap = False  # over the kept intervals instead of this one's histogram

    @property
    def series(self) -> Series:
        return self.SERIES[self.shown]

    @property
    def timeline_name(self) -> str | None:
        return self.series.headline

    def has_timeline(self) -> bool:
        return True

    def action_next_series(self) -> None:
        self.shown = (self.shown + 1) % len(self.SERIES)
        self.redraw()

    def action_toggle_heatmap(self) -> None:
        self.heatmap = not self.heatmap
        self.redraw()

    def body(self) -> ComposeResult:
        # Side by side, the histogram scrolling on its own: every bucket stays
        # reachable on a small terminal, none is cut off.
        with Horizontal(classes="latency-body"):
            with VerticalScroll(classes="histogram-box"):
                yield Static(id="histogram", classes="histogram")
            yield LatencyTable(id="table")

    @staticmethod
    def histogram_text(series: Series, lat, who: str, bar_width: int, narrow: bool = False) -> Text:
        hist = lat.total
        text = Text()
        text.append(f"{series.label} latency, ", style="bold")
        text.append_text(safe(who))
        if lat.estimated:  # --max-cpu shed load: 1 call in N timed, each counted as N
            text.append(f"\n≈ estimated: 1 {series.label} in {lat.sampled_1_in} timed (--max-cpu)", style="bold yellow")
        text.append(f"\n{'≈' if lat.estimated else ''}{count(hist.count)} {series.noun} · mean {duration(hist.mean_ns)}"
                    f"{chr(10) if narrow else ' · '}"
                    f"p50 {duration(hist.percentile(50))} · p90 {duration(hist.percentile(90))} · p99 {duration(hist.percentile(99))}\n\n")
        lines = histogram_lines(hist, bar_width=bar_width)
        text.append("\n".join(lines) if lines else f"no {series.label} in this interval", style="" if lines else "dim")
        return text

    def draw(self, view: ViewInput) -> None:
        series = self.series
        lats = {s.part: getattr(view.snapshot, s.part) for s in self.SERIES}
        who = f"processes matching {view.flt.comm!r}" if view.flt.comm else "all processes"
        if view.flt.pid is not None:
            who += f", pid {view.flt.pid}"
        if view.flt.container is not None:
            who += f", container {view.flt.container}"
        other = self.SERIES[(self.shown + 1) % len(self.SERIES)].label
        if self.heatmap:
            def latency_of(snap, part=series.part):
                return snapshots.rows_filtered(part, getattr(snap, part), view.flt, view.containers).total

            kept = [s for s, _ in view.history.snapshots]
            text = timeline.heatmap(kept, view.snapshot.time, series.label, width=max(30, int(self.size.width * 0.6)),
                                    latency_of=latency_of)
            self.query_one("#histogram", Static).update(Text(f"{who}\n", style="") + text)
            switch = f"h: this interval's histogram · w: {other}"
        elif self.size.width >= SIDE_BY_SIDE_WIDTH and len(self.SERIES) > 1:
            both = side_by_side(*(self.histogram_text(s, lats[s.part], who, bar_width=16, narrow=True)
                                  for s in self.SERIES))
            self.query_one("#histogram", Static).update(both)
            switch = f"table: {series.label} · w: {other} · h: over time"
        else:
            bar_width = 30 if self.size.width >= 100 else 16
            self.query_one("#histogram", Static).update(self.histogram_text(series, lats[series.part], who, bar_width))
            switch = f"w: {other} · h: over time · side by side from {SIDE_BY_SIDE_WIDTH} columns"
        self.table.show(lats[series.part].by_name())
        sampled = lats[series.part].sampled_1_in
        estimate = f"counts estimated from 1 call in {sampled} · " if sampled > 1 else ""
        self.set_summary(f"[{estimate}ns, log2 buckets [low, high), percentiles interpolated in a bucket · {switch}]")

    def on_resize(self, event) -> None:
        self.query_one(".latency-body").set_class(event.size.width < STACKED_BELOW_WIDTH, "stacked")
        if self._input is not None and self._input.snapshot is not None:
            self.draw(self._input)


class LatencyView(HistogramView):
    PROBE_SET = "read_latency"
    TITLE = "read() and write() latency (syscalls:sys_exit_read / sys_exit_write)"
    SERIES = (Series("read()", "reads", "read_latency", "read_p99"),
              Series("write()", "writes", "write_latency", "write_p99"))
