"""What every view (a tab of the TUI) is: a state line, an optional timeline
strip, its body (a table, a histogram) and a summary line.  A view owns its
keys (BINDINGS and their actions), its CSS, and what it derives from the
snapshot and the history it is handed; none keeps data of its own, and none
filters but through the parts' rules (snapshots.rows_filtered)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Static

from ebpftop import budget, filters
from ebpftop.history import History
from ebpftop.model import STATUS_OK, STATUS_STARTING, Container, Snapshot
from ebpftop.panes import timeline
from ebpftop.panes.table import SortableTable, safe
from ebpftop.render import count
from ebpftop.text import visible


@dataclass(frozen=True)
class ViewInput:
    snapshot: Snapshot | None  # filtered (and grouped by container with g); None before the first poll
    history: History  # unfiltered: a view puts what it takes of it through the same filter
    flt: filters.Filter
    statuses: Mapping[str, str] = field(default_factory=dict)  # probe set -> "starting", "ok", or why not running
    probe_stats: str = "off"  # the kernel's run-time statistics: "ok", "off", or why unavailable
    notes: Mapping[str, str] = field(default_factory=dict)  # probe set -> what a fallback here changes (capabilities.py)
    containers: Mapping[int, Container] = field(default_factory=dict)  # cgroup id -> container, for the CONTAINER column
    show_container: bool = False  # some row is not on the host
    grouped: bool = False  # rows summed per container (the app's g key)
    until: float | None = None  # rewound: the moment shown (what the history held then); None: live
    live: bool = True  # the source is the kernel (not a recording)

    def kept(self, part: str, time_field: str = "time") -> tuple:
        """A part's rows kept over time, as they were at the moment shown."""
        return self.history.log(part, self.until, time_field)


class ProbeStatsRequested(Message):
    """A view asks for the kernel's run-time statistics on or off (the app
    holds the source)."""

    def __init__(self, on: bool):
        super().__init__()
        self.on = on


class OptionRequested(Message):
    """A view asks for a probe set's option changed while running (the Disk
    tab's slow-I/O threshold): the app hands it to the source."""

    def __init__(self, name: str, value, on_applied=None):
        super().__init__()
        self.name = name
        self.value = value
        self.on_applied = on_applied  # called once the source took it (not in a replay, nor rewound)


class View(Vertical):
    """A probe state line, a table, and a summary line."""

    PROBE_SET = ""  # whose status the state line shows
    TITLE = ""
    TIMELINE: str | None = None  # its headline figure over time (sets' headlines, panes/timeline.py)
    DEFAULT_CSS = """
    View { height: 1fr; }
    View .probe-state { height: auto; max-height: 2; padding: 0 1; }
    View .timeline { height: 1; padding: 0 1; }
    View .summary { height: auto; max-height: 3; padding: 0 1; color: $text-muted; }
    """

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self._headline_cache: dict = {}  # (headline, id of a kept snapshot) -> its value
        self._input: ViewInput | None = None  # the last drawn: redrawn when one of its keys changes what it shows

    @property
    def timeline_name(self) -> str | None:
        return self.TIMELINE

    @property
    def probe_set(self) -> str:
        return self.PROBE_SET

    def status_from(self, status: dict, probe_stats: str) -> str:
        return status.get(self.probe_set, STATUS_STARTING)

    def compose(self) -> ComposeResult:
        yield Static(id="probe-state", classes="probe-state")
        if self.has_timeline():
            yield Static(id="timeline", classes="timeline")
        yield from self.body()
        yield Static(id="summary", classes="summary")

    def has_timeline(self) -> bool:
        return self.TIMELINE is not None

    def body(self) -> ComposeResult:
        yield from ()

    @property
    def table(self) -> SortableTable:
        return self.query_one(SortableTable)

    def redraw(self) -> None:
        """Again, from what it was last handed (after one of its own keys)."""
        if self._input is not None:
            self.update_from(self._input)

    def status_of(self, view: ViewInput) -> str:
        """The state of the probe set this view shows now (a view's keys may change which)."""
        return self.status_from(view.statuses, view.probe_stats)

    def update_from(self, view: ViewInput) -> None:
        self._input = view
        status, note = self.status_of(view), str(view.notes.get(self.probe_set, ""))
        state = self.query_one("#probe-state", Static)
        if status == STATUS_STARTING:
            state.update(Text("◌ starting: compiling and attaching the eBPF program…" if view.live
                              else "◌ reading the recording…", style="yellow"))
        elif status == STATUS_OK and view.snapshot is None:
            state.update(Text("● running: the first figures come after one interval", style="green") if view.live
                         else Text("▶ replaying: the first interval comes next", style="magenta"))
        elif status == STATUS_OK and not view.live:
            line = Text(f"▶ replaying · {self.TITLE} · every {round(view.snapshot.interval_s, 1):g} s",
                        style="magenta")
            if note:
                line.append_text(Text(" · ", style="magenta") + safe(note, style="yellow"))
            state.update(line)
        elif status == STATUS_OK:
            line = Text(f"● running · {self.TITLE} · every {round(view.snapshot.interval_s, 1):g} s", style="green")
            if note:
                line.append_text(Text(" · ", style="green") + safe(note, style="yellow"))
            state.update(line)
        elif budget.is_shed(status):
            state.update(Text("◐ " + visible(status), style="bold yellow"))
        else:
            state.update(Text("✖ not running: ", style="bold red") + safe(status))
        if view.snapshot is not None:
            self.table.set_context(view.containers, view.show_container, view.grouped)
            self.draw(view)
            self.draw_timeline(view)
            if budget.is_shed(status):  # its empty table is not "nothing happened"
                self.query_one("#summary", Static).update(
                    Text("[nothing counted in this interval: the probes are detached to keep the --max-cpu budget]"))

    def trends(self, view: ViewInput, rows_of) -> dict:
        """Each row's counts over the last intervals (the TREND column); none
        grouped by container."""
        if view.grouped:
            return {}
        kept = [s for s, _ in view.history.snapshots]
        return timeline.row_trends(self._headline_cache, self.PROBE_SET, kept, view.snapshot.time, rows_of)

    def draw_timeline(self, view: ViewInput) -> None:
        """The headline figure over the kept snapshots, the shown one marked
        (host-wide: the filter narrows the table, not the strip)."""
        name = self.timeline_name
        if name is None:
            return
        kept = [s for s, _ in view.history.snapshots]
        self.query_one("#timeline", Static).update(
            timeline.strip(name, kept, view.snapshot.time, self.size.width, self._headline_cache))

    def draw(self, view: ViewInput) -> None:
        raise NotImplementedError

    def set_summary(self, text: str) -> None:
        hidden = self.table.hidden_rows
        if hidden:
            text += f" · showing the first {count(len(self.table._rows) - hidden)} of {count(len(self.table._rows))} rows (filter or sort for the rest)"
        self.query_one("#summary", Static).update(Text(visible(text)))  # may hold names from a recording
