"""The Textual app.  It is handed a source (live probes or a recording) and
never blocks on it: start-up (the BCC compile) and every poll run in a thread
worker, and their results come back as messages.  Polls never overlap: the
next one is scheduled when the last has finished."""

from __future__ import annotations

import asyncio
import bisect
import datetime as _dt
import os
import signal
import time
from dataclasses import dataclass, replace

from rich.text import Text
from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Footer, Input, Label, Static, TabbedContent, TabPane

from ebpftop import act, aggregate, filters, sets, snapshots
from ebpftop.history import HISTORY_S, History
from ebpftop.model import STATUS_STARTING, Snapshot
from ebpftop.panes.act import SignalScreen
from ebpftop.panes.base import OptionRequested, ProbeStatsRequested, View, ViewInput
from ebpftop.panes.help import HelpScreen, help_rows
from ebpftop.panes.table import SortableTable, safe
from ebpftop.panes.tabs import TABS, TABS_FULL_WIDTH
from ebpftop.render import count
from ebpftop.text import visible

NOT_RECORDED = "not in this recording (made before this probe set existed, or without it)"
STEP_HELP = "one interval back / forward in time (the last hour is kept); every tab shows that moment"
JUMP_HELP = "a minute back / forward in time"
# Narrower than this, an alert toast would hide table columns: none is shown.
NOTIFY_MIN_WIDTH = 100
TAB_IDS = tuple(t.id for t in TABS)
ALERTS_KEY = next(t.key for t in TABS if t.id == "alerts")  # the toasts and the status line point there


@dataclass
class SourceStarted(Message):
    status: dict


@dataclass
class SnapshotReady(Message):
    snapshot: Snapshot | None  # None: the recording has ended


@dataclass
class AlertsReady(Message):
    alerts: list


@dataclass
class SourceFailed(Message):
    error: str


ACTION_SHOWN_S = 60  # the last action on a process stays on the status line this long


class EbpftopApp(App):
    TITLE = "ebpftop"
    ENABLE_COMMAND_PALETTE = False
    # The app's own widgets; each view and table brings its own CSS.
    CSS = """
    Screen { layout: vertical; }
    #filter-bar { height: 1; display: none; }
    #filter-bar.visible { display: block; }
    #filter { height: 1; border: none; padding: 0 1; background: $boost; }
    TabbedContent { height: 1fr; }
    TabPane { padding: 0; }
    #filter-label { width: auto; padding: 0 0 0 1; background: $boost; color: $accent; text-style: bold; }
    #filter { width: 1fr; }
    #status-line { height: auto; max-height: 3; padding: 0 1; background: $panel; }
    .narrow-tabs Tab { padding: 0 0 0 1; }
    """
    # The keys of every tab; each view's own are its BINDINGS (panes/*.py).
    BINDINGS = [
        *(Binding(t.key, f"show_tab('{t.id}')", t.title, show=False) for t in TABS),
        Binding("tab", "cycle_tab(1)", "Next tab", show=False, priority=True, tooltip="next / previous tab"),
        Binding("shift+tab", "cycle_tab(-1)", "Prev tab", show=False, priority=True, tooltip="next / previous tab"),
        Binding("slash", "open_filter", "Filter",
                tooltip="filter by process or container name; every key then goes to the filter"),
        Binding("g", "toggle_group", "By container",
                tooltip="every tab per container instead of per process (syscalls, latency, opens, faults, "
                        "traffic), and back"),
        Binding("backspace", "drill_up", "Back", show=False, tooltip="back to the previous scope"),
        Binding("p", "toggle_pause", "Pause",
                tooltip="pause the display (collection goes on); again to resume with the latest"),
        Binding("left_square_bracket", "step(-1)", "Back in time", show=False, tooltip=STEP_HELP),
        Binding("right_square_bracket", "step(1)", "Forward in time", show=False, tooltip=STEP_HELP),
        Binding("left_curly_bracket", "jump(-60)", "A minute back", show=False, tooltip=JUMP_HELP),
        Binding("right_curly_bracket", "jump(60)", "A minute forward", show=False, tooltip=JUMP_HELP),
        Binding("l", "live", "Live", show=False, tooltip="back to live"),
        Binding("question_mark", "help", "Help", tooltip="this help"),
        Binding("q", "quit", "Quit", tooltip="quit (every probe is detached)"),
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True, tooltip="quit (every probe is detached)"),
    ]

    def __init__(
        self,
        source,
        flt: filters.Filter = filters.Filter(),
        auto_poll: bool = True,
        clock=time.time,
        backlog=(),
        history_s: float = HISTORY_S,
        syslog: bool = False,
        proc: str = "/proc",
    ):
        super().__init__()
        self.syslog = syslog  # --syslog: each action on a process is logged there too
        self.proc = proc  # where act.py reads start times (the tests' fixture trees)
        self.actions_log: list[tuple[float, str]] = []  # (clock(), what k, n or N did), oldest first
        self.source = source  # a sources.base.Source
        self.flt = flt
        self.auto_poll = auto_poll  # tests drive polls themselves
        self.clock = clock
        self.history = History(history_s=history_s)
        for snap in backlog:  # replay --at: the intervals before it, kept to rewind into
            self.history.add(snap)
            self.history.add_alerts(a for part in sets.STREAMED for a in getattr(snap, part))
        self.status: dict[str, str] = {p: STATUS_STARTING for p in sets.NAMES}
        self.latest: Snapshot | None = None  # the newest snapshot
        self.shown: Snapshot | None = None  # what the views show (held while paused)
        self.paused = False
        self.rewound = False  # showing a kept snapshot of the past ([ ] { }; l returns)
        self.ended = False
        self.started = False
        self.last_poll_at: float | None = None
        self._poll_due: float | None = None  # time.monotonic() the last scheduled poll was due at
        self._stale: set[str] = set(TAB_IDS)  # tabs whose drawing is out of date
        self._filtered: Snapshot | None = None  # self.shown through self.flt, computed on demand
        self._main_screen = None
        self.probe_stats = source.probe_stats
        self.grouped = False  # every view summed per container instead of per process (g)
        # drill-down: the filters (and grouping) to return to, and labels
        self.scopes: list[tuple[filters.Filter, str, bool]] = []
        self.pending_signal: int | None = None  # SIGTERM/SIGHUP received: exit (see run_app)
        self.handle_signals = False  # run_app: signals through the event loop (see there)

    # -- layout -----------------------------------------------------------

    def compose(self) -> ComposeResult:
        with Horizontal(id="filter-bar"):
            yield Label("filter /", id="filter-label")
            yield Input(placeholder="process name (substring, any case) · Enter keeps · Esc clears", id="filter")
        with TabbedContent(initial=TABS[0].id):
            for tab in TABS:
                with TabPane(tab.label(False), id=tab.id):
                    yield tab.view(id=f"view-{tab.id}")
        yield Static(id="status-line")
        yield Footer()

    def on_resize(self, event) -> None:
        """Below the full tab bar's width, the tabs' short labels: every tab
        stays on the bar, labelled (at 80 columns the full bar lost three)."""
        narrow = event.size.width < TABS_FULL_WIDTH
        if narrow == self.has_class("narrow-tabs"):
            return
        self.set_class(narrow, "narrow-tabs")
        tabbed = self._find(TabbedContent)
        for tab in TABS:
            tabbed.get_tab(tab.id).label = tab.label(narrow)

    def _find(self, selector, expect_type=None):
        """A widget of the main screen, whichever screen is on top (help):
        App.query_one would search the top screen."""
        main = self._main_screen or self.screen
        return main.query_one(selector, expect_type) if expect_type else main.query_one(selector)

    def on_mount(self) -> None:
        self._main_screen = self.screen
        filt = self._find("#filter", Input)
        filt.can_focus = False  # only "/" gives keys to the filter
        if self.flt.comm:
            filt.value = self.flt.comm
            self._find("#filter-bar").add_class("visible")
        self.active_view.table.focus()
        self.redraw()
        self.start_source()
        self.set_interval(1.0, self.update_status_line)
        if self.handle_signals:
            self._take_signals_in_the_loop()
        self.set_interval(0.2, self.exit_on_signal)
        self.exit_on_signal()
        if self.auto_poll:
            self.set_interval(0.5, self.poll_alerts)

    def exit_on_signal(self) -> None:
        if self.pending_signal is not None:
            self.exit(return_code=128 + self.pending_signal)

    # -- signals ------------------------------------------------------------

    def _take_signals_in_the_loop(self) -> None:
        """Every signal that matters, handled by the event loop, between two
        of its callbacks: never inside Textual's queue, driver or thread code.

        Textual's own SIGCONT handler restarts application mode from the
        signal handler, wherever the main thread is: a terminal hang-up
        (SIGHUP then SIGCONT) during shutdown deadlocked its writer queue, and
        kill -STOP/-CONT started a second input thread and saved the raw
        terminal modes as the ones to restore."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT, signal.SIGQUIT):
            loop.add_signal_handler(sig, self._exit_signal, sig)
        loop.add_signal_handler(signal.SIGCONT, self._continued)
        loop.add_signal_handler(signal.SIGTSTP, self._stop_requested)

    def _exit_signal(self, sig: int) -> None:
        self.pending_signal = sig
        self.exit(return_code=128 + sig)

    def _terminal_is_ours(self) -> bool:
        """Whether the terminal is still in the modes Textual set (a shell
        that took it back while we were stopped resets them)."""
        import termios

        try:
            lflag = termios.tcgetattr(self._driver.fileno)[3]
        except (termios.error, AttributeError, OSError, ValueError):
            return True  # no terminal to fix
        return not lflag & (termios.ICANON | termios.ECHO)

    def _continued(self) -> None:
        """SIGCONT: after kill -STOP (or our own stop), repaint; if the
        terminal's modes were reset meanwhile, leave and re-enter
        application mode, in that order, so the modes restored at exit
        stay the user's own."""
        if self.pending_signal is not None or not self.is_running or getattr(self, "_exit", False):
            return
        if self._driver is not None and not self._terminal_is_ours():
            self._driver.suspend_application_mode()
            self._driver.resume_application_mode()
        self.refresh(repaint=True, layout=True)
        self.screen.refresh(repaint=True)

    def _stop_requested(self) -> None:
        """SIGTSTP (kill -TSTP; Ctrl+Z reaches us as a key): give the
        terminal back, stop, and take it again when continued."""
        if self._driver is None or not self.is_running or getattr(self, "_exit", False):
            return
        self._driver.suspend_application_mode()
        os.kill(os.getpid(), signal.SIGSTOP)
        # continued: the terminal is the shell's now, in its own modes
        self._driver.resume_application_mode()
        self.refresh(repaint=True, layout=True)

    def notify(self, message: str, *, title: str = "", severity="information", timeout: float | None = None,
               markup: bool = False) -> None:
        """Every notification, escaped and never markup: the one place the
        TUI's toasts are drawn from, and they name processes and paths (an
        alert, a flight recording's cause)."""
        super().notify(visible(message), title=visible(title), severity=severity, timeout=timeout, markup=False)

    # -- the source ---------------------------------------------------------

    @work(thread=True, exclusive=True, group="source")
    def start_source(self) -> None:
        try:
            status = self.source.start()
        except Exception as e:  # noqa: BLE001 - shown to the user, not a traceback
            self.post_message(SourceFailed(f"{type(e).__name__}: {e}"))
            return
        self.post_message(SourceStarted(status))

    def on_source_started(self, message: SourceStarted) -> None:
        self.started = True
        self.status.update(message.status)
        self.redraw()
        if self.auto_poll:
            self.schedule_poll()

    def on_source_failed(self, message: SourceFailed) -> None:
        for p in sets.NAMES:
            self.status[p] = message.error
        self.redraw()

    def schedule_poll(self) -> None:
        """The next poll one interval after the last one was due, not after
        it ended: intervals do not stretch by the time a poll takes (a poll
        that ran late under load is followed at once, never by a backlog)."""
        if self.ended:
            return
        now = time.monotonic()
        due = max(now, (self._poll_due if self._poll_due is not None else now) + self.source.interval_s)
        self._poll_due = due
        self.set_timer(max(0.001, due - now), self.poll_source)  # Textual's timer divides by its delay

    @work(thread=True, exclusive=True, group="source")
    def poll_source(self) -> None:
        try:
            snap = self.source.poll()  # a recording that cannot be written says so in its notices
        except Exception as e:  # noqa: BLE001
            self.post_message(SourceFailed(f"poll failed: {type(e).__name__}: {e}"))
            return
        self.post_message(SnapshotReady(snap))

    @work(thread=True, exclusive=True, group="alerts")
    def poll_alerts(self) -> None:
        if not self.started:
            return
        alerts = self.source.poll_alerts()
        if alerts:
            self.post_message(AlertsReady(alerts))

    def on_alerts_ready(self, message: AlertsReady) -> None:
        self.take_alerts(message.alerts)

    def take_alerts(self, alerts) -> None:
        """Shown at once, whatever tab is open: a notification (plain text,
        never markup) and the Alerts tab."""
        if not alerts:
            return
        self.history.add_alerts(alerts)
        # One notification per burst, and none where a toast would cover the
        # tables (under 100 columns): the status line's red alert count and
        # the Alerts tab say it there.
        if self.size.width >= NOTIFY_MIN_WIDTH:
            a = alerts[-1]
            more = f" (and {len(alerts) - 1} more: see {ALERTS_KEY} Alerts)" if len(alerts) > 1 else ""
            self.notify(f"{a.alert_text()}{more}", title=a.ALERT_TITLE, severity="error", timeout=10)
        self._stale.add("alerts")
        if self._find(TabbedContent).active == "alerts":
            self.draw_view("alerts")
        self.update_status_line()

    def on_snapshot_ready(self, message: SnapshotReady) -> None:
        self.accept_snapshot(message.snapshot)
        if self.auto_poll:
            self.poll_alerts()  # a recording's alerts come with its snapshots
            self.schedule_poll()

    def accept_snapshot(self, snap: Snapshot | None) -> None:
        """Take one snapshot in (tests call this directly)."""
        if snap is None:
            self.ended = True
            self.update_status_line()
            return
        self.last_poll_at = self.clock()
        self.latest = snap
        for notice in snap.notices:  # a flight recording written, say
            self.notify(notice, title="ebpftop", timeout=15)
        self.history.add(snap)
        self.status.update(snap.status)
        if self.source.kind == "replay":  # the sets the recording has no status of were not recorded
            for name in sets.NAMES:
                if name not in snap.status:
                    self.status[name] = NOT_RECORDED
        self.probe_stats = snap.probe_stats
        if not self.paused and not self.rewound:
            self.shown = snap
            self.redraw()
        else:
            self.update_status_line()

    # -- drawing ------------------------------------------------------------

    def redraw(self) -> None:
        """Draw the view on screen now; the others when they are shown (a
        keystroke in the filter then costs one view, not eight)."""
        self._stale = set(TAB_IDS)
        self._filtered = None
        with self.batch_update():
            self.draw_view(self._find(TabbedContent).active)
            self.update_status_line()

    def draw_view(self, tab_id: str) -> None:
        if tab_id not in self._stale:
            return
        self._stale.discard(tab_id)
        if self._filtered is None and self.shown is not None:
            self._filtered = snapshots.filtered(self.shown, self.flt)  # once per redraw, shared by the views
            if self.grouped:
                self._filtered = snapshots.by_container(self._filtered)
        view = self._find(f"#view-{tab_id}", View)
        notes = self.shown.capabilities.get("notes", {}) if self.shown is not None else {}
        containers = self.history.containers
        view.update_from(ViewInput(
            self._filtered, self.history, self.flt, self.status, self.probe_stats, notes, containers=containers,
            show_container=bool(containers), grouped=self.grouped,
            until=self.shown.time if self.rewound and self.shown is not None else None,
            live=self.source.kind == "live",
        ))

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        self.draw_view(event.pane.id)

    def update_status_line(self) -> None:
        if not self.is_running or not self._main_screen or not self._main_screen.is_attached:
            return  # a timer tick while the app shuts down
        line = Text()
        if self.source.kind == "replay":
            line.append("▶ replay ", style="bold magenta")
            line.append_text(safe(f"{self.source.label} "))
        if not self.started:
            line.append("starting… ", style="yellow")
        if self.paused:
            line.append("⏸ PAUSED ", style="bold reverse yellow")
        if self.rewound and self.shown is not None and self.latest is not None:
            ago = self.latest.time - self.shown.time
            when = _dt.datetime.fromtimestamp(self.shown.time).strftime("%H:%M:%S")
            line.append(f"◀ {when}, {_ago(ago)} before the latest ", style="bold reverse cyan")
            line.append("(] forward, l live) ")
        if self.ended:
            line.append("■ recording ended ", style="bold")
        line.append(f"interval {self.source.interval_s:g} s")
        if self.shown is not None:
            line.append(" · data of " + _dt.datetime.fromtimestamp(self.shown.time).strftime("%H:%M:%S"))
        if self.last_poll_at is not None and self.auto_poll and not self.ended:
            left = max(0, round(self.last_poll_at + self.source.interval_s - self.clock()))
            line.append(f" · next in {left} s")
        if self.grouped:
            line.append(" · by container (g: by process)", style="bold cyan")
        if self.actions_log and self.clock() - self.actions_log[-1][0] < ACTION_SHOWN_S:
            at, said = self.actions_log[-1]
            line.append(f" · {_dt.datetime.fromtimestamp(at).strftime('%H:%M:%S')} ", style="bold")
            line.append_text(safe(said, style="bold"))
        if self.flt.active:
            line.append(" · filter: ", style="bold")
            parts = []
            if self.flt.comm:
                parts.append(f"name ~ {self.flt.comm}")
            if self.flt.container is not None and not self.scopes:
                parts.append(f"container {self.flt.container}")
            if self.flt.pid is not None and not self.scopes:
                parts.append(f"pid {self.flt.pid}")
            if self.flt.port is not None:
                parts.append(f"port {self.flt.port}")
            if self.scopes:
                parts.append("scope " + self.scopes[-1][1] + " (Backspace: back)")
            line.append_text(safe(", ".join(parts), style="bold cyan"))
        if self.history.alerts_total:
            line.append(f" · alerts: {count(self.history.alerts_total)} ({ALERTS_KEY})", style="bold red")
        budget = self.shown.budget if self.shown is not None else None
        if budget is not None and budget.degraded:
            line.append(f" · DEGRADED over --max-cpu {budget.max_cpu_pct:g}% ({budget.load_pct:.1f}%): "
                        f"{budget.describe()}", style="bold reverse red")
        lost = {p: n for p, n in self.history.lost_total.items() if n}
        if lost:
            line.append(" · lost: " + ", ".join(f"{visible(p)} {count(n)}" for p, n in lost.items()), style="bold red")
        skipped = {p: n for p, n in self.history.skipped_total.items() if n}
        if skipped:
            line.append(" · skipped by the kernel: " + ", ".join(f"{visible(p)} {count(n)}" for p, n in skipped.items()),
                        style="yellow")
        self._find("#status-line", Static).update(line)

    # -- actions ------------------------------------------------------------

    @property
    def active_view(self) -> View:
        tabs = self._find(TabbedContent)
        return self._find(f"#view-{tabs.active}", View)

    def action_show_tab(self, tab_id: str) -> None:
        self._find(TabbedContent).active = tab_id
        self.draw_view(tab_id)  # now, not when TabActivated arrives (that also covers mouse clicks)
        if not self._find("#filter", Input).has_focus:  # Tab while typing a filter keeps typing
            self.active_view.table.focus()

    def action_cycle_tab(self, step: int) -> None:
        tabs = self._find(TabbedContent)
        i = TAB_IDS.index(tabs.active)
        self.action_show_tab(TAB_IDS[(i + step) % len(TAB_IDS)])

    def action_open_filter(self) -> None:
        self._find("#filter-bar").add_class("visible")
        filt = self._find("#filter", Input)
        filt.can_focus = True
        # Now, not at the next idle (Widget.focus defers it): keys typed in
        # the same burst as "/" must reach the filter, not the bindings.
        self.screen.set_focus(filt)

    def close_filter(self, clear: bool) -> None:
        filt = self._find("#filter", Input)
        if clear:
            filt.value = ""
        if not filt.value:
            self._find("#filter-bar").remove_class("visible")
        filt.can_focus = False
        self.active_view.table.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        # Each keystroke filters every view at once, from the snapshot in hand.
        self.flt = replace(self.flt, comm=event.value)
        self.redraw()

    def action_drill_down(self) -> None:
        """Enter on a row naming a process scopes every view to it; grouped by
        container, Enter on a container's row scopes every view to that
        container, its processes shown one by one again."""
        table = self.active_view.table
        if self.grouped:
            name = table.selected_container()
            if name is None or name == aggregate.UNKNOWN_CONTAINER:
                self.notify("this row names no container", timeout=2)
                return
            self.scopes.append((self.flt, f"container {visible(name)}", self.grouped))
            self.flt = replace(self.flt, container=name)
            self.grouped = False
            self.redraw()
            return
        target = table.selected_process()
        if target is None:
            self.notify("this row names no process", timeout=2)
            return
        pid, comm = target
        label = f"pid {pid} ({visible(comm)})" if pid is not None else f"name {visible(comm)}"
        self.scopes.append((self.flt, label, self.grouped))
        self.flt = replace(self.flt, pid=pid) if pid is not None else replace(self.flt, exact_comm=comm)
        self.redraw()

    def action_drill_up(self) -> None:
        if self.scopes:
            self.flt, _, self.grouped = self.scopes.pop()
            self.redraw()

    def action_toggle_group(self) -> None:
        """Every view per container instead of per process, and back."""
        self.grouped = not self.grouped
        self.redraw()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.close_filter(clear=False)

    def on_key(self, event) -> None:
        filt = self._find("#filter", Input)
        if event.key == "escape" and filt.has_focus:
            event.stop()
            self.close_filter(clear=True)
        elif self.focused is filt and event.is_printable:
            # Typed in one burst with "/", this key was queued to the table
            # before the focus moved, and bubbled up here: it belongs to the
            # filter.  (The filter's own keys never get here: it stops them.)
            event.stop()
            filt.insert_text_at_cursor(event.character)

    def action_step(self, intervals: int) -> None:
        """One kept snapshot back (-1) or forward (1); forward from the
        newest is live again."""
        times = self.history.kept_times()
        if not times or self.shown is None:
            return
        i = self._shown_index(times) + intervals
        self._show_kept(times, max(0, i))

    def action_jump(self, seconds: float) -> None:
        """To the kept snapshot nearest to this many seconds from the one shown."""
        times = self.history.kept_times()
        if not times or self.shown is None:
            return
        target = self.shown.time + seconds
        i = min(range(len(times)), key=lambda k: abs(times[k] - target))
        if i == self._shown_index(times) and seconds:
            i += 1 if seconds > 0 else -1  # fewer kept than the jump: at least one step
        self._show_kept(times, max(0, i))

    def action_live(self) -> None:
        if self.rewound:
            self.rewound = False
            self.shown = self.latest
            self.redraw()

    def _shown_index(self, times: list[float]) -> int:
        if not self.rewound:
            return len(times) - 1
        return bisect.bisect_left(times, self.shown.time)

    def _show_kept(self, times: list[float], i: int) -> None:
        if i >= len(times) - 1:
            if self.rewound:
                self.action_live()
            return
        self.rewound = True
        self.shown = self.history.snapshots[i][0]
        self.redraw()

    def action_toggle_pause(self) -> None:
        self.paused = not self.paused
        if not self.paused and self.latest is not self.shown:
            self.shown = self.latest
            self.redraw()
        else:
            self.update_status_line()

    def on_probe_stats_requested(self, message: ProbeStatsRequested) -> None:
        """The Probes tab's c: the kernel's run-time statistics on or off."""
        if self.source.kind != "live":
            self.notify("a recording shows the probe costs it recorded", timeout=3)
            return
        self.probe_stats = self.source.set_probe_stats(message.on)
        if self.probe_stats == "ok":
            self.notify("measuring from now: figures come with the next poll", timeout=3)
        self._stale.add("probes")
        self.draw_view("probes")

    def on_option_requested(self, message: OptionRequested) -> None:
        """A view's key changed a probe set's option (the Disk tab's < and >)."""
        if self.source.kind != "live" or self.rewound:
            self.notify("a recording was made with the options it shows" if self.source.kind != "live"
                        else "rewound: this is the past, with the options it had", timeout=3)
            return
        if self.source.set_option(message.name, message.value):
            if message.on_applied is not None:
                message.on_applied()
            self.notify("from the next interval", timeout=2)

    # -- acting on a row ------------------------------------------------------

    def _targets(self) -> tuple[list[act.Target], str] | None:
        """The processes the row under the cursor names, each with the start
        time it had when its interval was read (act.py checks the pid against
        it); None, said why, when there are none to act on."""
        if self.source.kind != "live":
            self.notify("a recording: its processes are from the past, nothing is sent", timeout=3)
            return None
        if self.rewound:
            self.notify("rewound: this row is from the past (l returns to live)", timeout=3)
            return None
        if self.shown is None:
            return None
        table = self.active_view.table
        # the rows as filtered, not grouped: a container's row stands for its processes' rows
        seen = snapshots.processes(snapshots.filtered(self.shown, self.flt).parts)
        starts = self.shown.starts
        if self.grouped:
            name = table.selected_container()
            if name is None or name == aggregate.UNKNOWN_CONTAINER:
                self.notify("this row names no container", timeout=2)
                return None
            pids = sorted(pid for pid, (_c, cgroup) in seen.items()
                          if aggregate.container_label(cgroup, self.shown.containers) == name)
            scope = f"container {name}"
        else:
            target = table.selected_process()
            if target is None:
                self.notify("this row names no process", timeout=2)
                return None
            pid, comm = target
            pids = [pid] if pid is not None else sorted(p for p, (c, _g) in seen.items() if c == comm)
            scope = f"name {comm}"
        if not pids:
            self.notify(f"no process of {visible(scope)} is left in this interval", timeout=3)
            return None
        return [act.Target(pid, seen.get(pid, ("?", 0))[0], starts.get(pid)) for pid in pids], scope

    def action_signal(self) -> None:
        """k: pick a signal for the process(es) of the row, confirm, send."""
        picked = self._targets()
        if picked is None:
            return
        targets, scope = picked

        def send(name: str | None) -> None:
            if name is not None:
                for t in targets:
                    self._act(lambda t=t: act.send_signal(t, name, self.proc))

        self.push_screen(SignalScreen(targets, scope), send)

    def action_renice(self, delta: int) -> None:
        """n / N: the row's process(es) one nice step down or up (htop's F8 / F7)."""
        picked = self._targets()
        if picked is None:
            return
        for t in picked[0]:
            self._act(lambda t=t: act.renice(t, delta, self.proc))

    def _act(self, do) -> None:
        """Run one action; its outcome goes to the status line and a toast,
        and, with --syslog, to syslog (authpriv.notice)."""
        try:
            said, severity = do(), "information"
        except act.RefusedError as e:
            said, severity = str(e), "warning"
        self.actions_log.append((self.clock(), said))
        del self.actions_log[:-100]
        self.notify(said, title="action", severity=severity, timeout=6)
        if self.syslog:
            import syslog

            syslog.syslog(syslog.LOG_AUTHPRIV | syslog.LOG_NOTICE, f"uid {os.getuid()} {visible(said)}")
        self.update_status_line()

    def action_help(self) -> None:
        self.push_screen(HelpScreen(help_rows(self.BINDINGS, SortableTable.BINDINGS, TABS)))


def _ago(seconds: float) -> str:
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def run_app(source, flt: filters.Filter, backlog=(), history_s: float = HISTORY_S, syslog: bool = False) -> int:
    """Run the TUI (inside terminal.terminal_for_textual(): see there).

    SIGTERM, SIGHUP (the terminal closed), SIGINT and SIGQUIT end the app
    through Textual's own shutdown.  Until the app is mounted a handler only
    notes the signal (the app exits at mount); from then on the event loop
    takes them (see _take_signals_in_the_loop).  No handler ever raises: an
    exception raised inside Textual's code could leave its threads
    deadlocked, keeping the process alive with the probes attached."""
    app = EbpftopApp(source, flt, backlog=backlog, history_s=history_s, syslog=syslog)
    app.handle_signals = True

    def note(signum, _frame):
        if app.pending_signal is None:
            app.pending_signal = signum  # seen at mount, or within 0.2 s

    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT, signal.SIGQUIT):
        signal.signal(sig, note)
    try:
        app.run()
    finally:
        # The loop is closed and its handlers gone: noted, not raised, while
        # the caller detaches the probes.
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT, signal.SIGQUIT):
            signal.signal(sig, note)
    if app.pending_signal is not None:
        return 128 + app.pending_signal
    return app.return_code or 0
