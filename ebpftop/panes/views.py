"""The views, one per tab, and TABS, the declaration of the tabs.  Each view
gets a ``ViewInput`` (the filtered snapshot and the filtered history) and
redraws itself from it; none keeps data of its own, and none filters."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Static

from ebpftop import aggregate, budget, filters
from ebpftop.history import History
from ebpftop.model import STATUS_OK, STATUS_STARTING, Container, ProcessEvent, Snapshot, TcpConnection, TcpSession
from ebpftop.panes import timeline
from ebpftop.panes.tables import (
    AlertTable,
    FileOpenTable,
    LatencyTable,
    PageFaultTable,
    ProbeTable,
    ProcessTable,
    SortableTable,
    SyscallTable,
    TcpClosedTable,
    TcpProcessTable,
    TcpTable,
    TcpTrafficTable,
    UdpTable,
    safe,
)
from ebpftop.render import byte_size, count, duration, histogram_lines
from ebpftop.text import visible


@dataclass(frozen=True)
class ViewInput:
    snapshot: Snapshot | None  # filtered; None before the first poll
    history: History
    flt: filters.Filter
    status: str  # the probe set's state: "starting", "ok", or why it is not running
    note: str = ""  # what a fallback on this machine changes (capabilities.py)
    # the history, through the same filter (filters.py is the only place rows are filtered)
    recent_connections: tuple[TcpConnection, ...] = ()
    closed_connections: tuple[TcpSession, ...] = ()
    process_events: tuple[ProcessEvent, ...] = ()
    containers: Mapping[int, Container] = field(default_factory=dict)  # cgroup id -> container, for the CONTAINER column
    show_container: bool = False  # some row is not on the host
    grouped: bool = False  # rows summed per container (the app's g key)
    alerts: tuple = ()  # the history's alerts, newest first, up to the moment shown
    faults_total: Mapping = field(default_factory=dict)  # (comm, pid) -> page faults since start, at that moment
    totals: Mapping = field(default_factory=dict)  # connections, tcp_closed, alerts since start, at that moment


class View(Vertical):
    """A probe state line, a table, and a summary line."""

    PROBE_SET = ""  # whose status the state line shows
    TITLE = ""
    TIMELINE: str | None = None  # its headline figure over time (panes/timeline.py: HEADLINES)

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self._headline_cache: dict = {}  # (headline, id of a kept snapshot) -> its value

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
        if self.TIMELINE is not None or isinstance(self, NetworkView):
            yield Static(id="timeline", classes="timeline")
        yield from self.body()
        yield Static(id="summary", classes="summary")

    def body(self) -> ComposeResult:
        yield from ()

    @property
    def table(self) -> SortableTable:
        return self.query_one(SortableTable)

    def update_from(self, view: ViewInput) -> None:
        state = self.query_one("#probe-state", Static)
        if view.status == STATUS_STARTING:
            state.update(Text("◌ starting: compiling and attaching the eBPF program…", style="yellow"))
        elif view.status == STATUS_OK and view.snapshot is None:
            state.update(Text("● running: the first figures come after one interval", style="green"))
        elif view.status == STATUS_OK:
            line = Text(f"● running · {self.TITLE} · every {view.snapshot.interval_s:g} s", style="green")
            if view.note:
                line.append_text(Text(" · ", style="green") + safe(view.note, style="yellow"))
            state.update(line)
        elif budget.is_shed(view.status):
            state.update(Text("◐ " + visible(view.status), style="bold yellow"))
        else:
            state.update(Text("✖ not running: ", style="bold red") + safe(view.status))
        if view.snapshot is not None:
            self.table.set_context(view.containers, view.show_container, view.grouped)
            self.draw(view)
            self.draw_timeline(view)
            if budget.is_shed(view.status):  # its empty table is not "nothing happened"
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


class NetworkView(View):
    """TCP connections with their traffic, the same summed per process, the
    closed ones, new TCP connections (the app's t key goes round these four),
    or UDP flows (u switches between TCP and UDP)."""

    TCP_MODES = ("traffic", "by_process", "closed", "new")
    MODE_PROBE_SETS = {"traffic": "tcp_traffic", "by_process": "tcp_traffic", "closed": "tcp_traffic", "new": "tcp",
                       "udp": "udp"}
    TITLES = {
        "traffic": "TCP connections: bytes, rates, retransmits, resets (sock:sock_send/recv_length, tcp:*)",
        "by_process": "TCP traffic per process (sock:sock_send/recv_length)",
        "closed": "closed TCP connections, newest first: lifetime and totals (tcplife)",
        "new": "new TCP connections (sock:inet_sock_set_state, accept in process context)",
        "udp": "UDP flows in the interval (cgroup_skb on the root cgroup, owners from sock:sock_recv_length)",
    }
    MODE_NAMES = {"traffic": "connections", "by_process": "per process", "closed": "closed", "new": "new connections",
                  "udp": "UDP"}
    mode = "traffic"
    tcp_mode = "traffic"  # the TCP view u returns to
    TABLES = {"traffic": TcpTrafficTable, "by_process": TcpProcessTable, "closed": TcpClosedTable, "new": TcpTable,
              "udp": UdpTable}

    @property
    def TITLE(self) -> str:  # noqa: N802 - the attribute every view has
        return self.TITLES[self.mode]

    MODE_TIMELINES = {"traffic": "tcp_bytes", "by_process": "tcp_bytes", "closed": "tcp_bytes", "new": "tcp_new",
                      "udp": "udp_bytes"}

    @property
    def probe_set(self) -> str:
        return self.MODE_PROBE_SETS[self.mode]

    @property
    def timeline_name(self) -> str | None:
        return self.MODE_TIMELINES[self.mode]

    def body(self) -> ComposeResult:
        for mode, table_type in self.TABLES.items():
            table = table_type(id=f"{mode}-table")
            table.display = mode == self.mode
            yield table

    @property
    def table(self) -> SortableTable:
        return self.query_one(self.TABLES[self.mode])

    def next_tcp_mode(self) -> str:
        if self.mode == "udp":
            return self.tcp_mode
        return self.TCP_MODES[(self.TCP_MODES.index(self.mode) + 1) % len(self.TCP_MODES)]

    def set_mode(self, mode: str) -> None:
        self.mode = mode
        if mode != "udp":
            self.tcp_mode = mode
        for m, table_type in self.TABLES.items():
            self.query_one(table_type).display = mode == m

    def _switch_hint(self) -> str:
        if self.mode == "udp":
            return f"u: TCP {self.MODE_NAMES[self.tcp_mode]}"
        return f"t: {self.MODE_NAMES[self.next_tcp_mode()]} · u: UDP"

    def draw(self, view: ViewInput) -> None:
        {"traffic": self.draw_traffic, "by_process": self.draw_by_process, "closed": self.draw_closed,
         "new": self.draw_new, "udp": self.draw_udp}[self.mode](view)

    def draw_closed(self, view: ViewInput) -> None:
        closed = view.closed_connections
        self.table.show(closed)
        shown = f" · shown {len(closed)}" if view.flt.active else ""
        self.set_summary(f"[Closed TCP connections: {len(view.snapshot.tcp_closed)} this interval, "
                         f"{count(view.totals.get('tcp_closed', 0))} since start, the last "
                         f"{count(view.totals.get('tcp_closed_kept', 0))} kept{shown} · {self._switch_hint()}]")

    def draw_traffic(self, view: ViewInput) -> None:
        snap = view.snapshot
        sessions = snap.tcp_connections + snap.tcp_closed
        self.table.show([(s, snap.interval_s, snap.time) for s in sessions])
        tx = sum(s.tx_bytes for s in sessions)
        rx = sum(s.rx_bytes for s in sessions)
        unowned = f" · {count(snap.tcp_resets_unowned)} resets to closed ports" if snap.tcp_resets_unowned else ""
        self.set_summary(f"[TCP: {len(snap.tcp_connections)} open, {len(snap.tcp_closed)} closed in the interval · "
                         f"sent {byte_size(tx)}, received {byte_size(rx)} in {snap.interval_s:g} s{unowned} · "
                         f"{self._switch_hint()}]")

    def draw_by_process(self, view: ViewInput) -> None:
        snap = view.snapshot
        rows = aggregate.tcp_by_process(snap.tcp_connections + snap.tcp_closed)
        self.table.show([(r, snap.interval_s) for r in rows])
        self.set_summary(f"[TCP traffic of {len(rows)} processes in {snap.interval_s:g} s, open connections and "
                         f"those closed in the interval · {self._switch_hint()}]")

    def draw_udp(self, view: ViewInput) -> None:
        flows = view.snapshot.udp
        self.table.show([(f, view.snapshot.interval_s) for f in flows])
        tx = sum(f.tx_datagrams for f in flows)
        rx = sum(f.rx_datagrams for f in flows)
        tx_b = sum(f.tx_bytes for f in flows)
        rx_b = sum(f.rx_bytes for f in flows)
        self.set_summary(f"[UDP: {len(flows)} flows · datagrams sent {count(tx)} ({byte_size(tx_b)}), received "
                         f"{count(rx)} ({byte_size(rx_b)}) in {view.snapshot.interval_s:g} s · {self._switch_hint()}]")

    def draw_new(self, view: ViewInput) -> None:
        recent = view.recent_connections
        self.table.show(recent)
        shown = f" · shown {len(recent)}" if view.flt.active else ""
        self.set_summary(f"[New connections: {len(view.snapshot.tcp)} this interval, "
                         f"{count(view.totals.get('connections', 0))} since start{shown} · {self._switch_hint()}]")


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


# From this width on, the read() and write() histograms are drawn side by side.
SIDE_BY_SIDE_WIDTH = 150


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


class LatencyView(View):
    PROBE_SET = "read_latency"
    TIMELINE = "read_p99"
    TITLE = "read() and write() latency (syscalls:sys_exit_read / sys_exit_write)"
    op = "read"  # or "write": the app's w key switches (the table; and the histogram when narrow)
    heatmap = False  # the app's h key: latency over the kept intervals instead of this one's histogram
    _view: ViewInput | None = None  # the last drawn, to redraw on a resize

    @property
    def timeline_name(self) -> str | None:
        return f"{self.op}_p99"

    def body(self) -> ComposeResult:
        # Side by side, the histogram scrolling on its own: every bucket stays
        # reachable on a small terminal, none is cut off.
        with Horizontal(classes="latency-body"):
            with VerticalScroll(classes="histogram-box"):
                yield Static(id="histogram", classes="histogram")
            yield LatencyTable(id="table")

    @staticmethod
    def histogram_text(op: str, lat, who: str, bar_width: int, narrow: bool = False) -> Text:
        hist = lat.total
        text = Text()
        text.append(f"{op}() latency, ", style="bold")
        text.append_text(safe(who))
        if lat.estimated:  # --max-cpu shed load: counts scaled up from a sample
            text.append(f"\n≈ estimated: 1 {op}() in {lat.sampled_1_in} timed (--max-cpu)", style="bold yellow")
        text.append(f"\n{'≈' if lat.estimated else ''}{count(hist.count)} {op}s · mean {duration(hist.mean_ns)}"
                    f"{chr(10) if narrow else ' · '}"
                    f"p50 {duration(hist.percentile(50))} · p90 {duration(hist.percentile(90))} · p99 {duration(hist.percentile(99))}\n\n")
        lines = histogram_lines(hist, bar_width=bar_width)
        text.append("\n".join(lines) if lines else f"no {op}() in this interval", style="" if lines else "dim")
        return text

    def draw(self, view: ViewInput) -> None:
        self._view = view
        lats = {"read": view.snapshot.read_latency, "write": view.snapshot.write_latency}
        who = f"processes matching {view.flt.comm!r}" if view.flt.comm else "all processes"
        if view.flt.pid is not None:
            who += f", pid {view.flt.pid}"
        if view.flt.container is not None:
            who += f", container {view.flt.container}"
        other = "write" if self.op == "read" else "read"
        if self.heatmap:
            def latency_of(snap, op=self.op):
                lat = snap.read_latency if op == "read" else snap.write_latency
                return filters.latency(lat, view.flt, view.containers).total if view.flt.active else lat.total

            kept = [s for s, _ in view.history.snapshots]
            text = timeline.heatmap(kept, view.snapshot.time, self.op, width=max(30, int(self.size.width * 0.6)),
                                    latency_of=latency_of)
            self.query_one("#histogram", Static).update(Text(f"{who}\n", style="") + text)
            switch = f"h: this interval's histogram · w: {other}()"
        elif self.size.width >= SIDE_BY_SIDE_WIDTH:
            both = side_by_side(*(self.histogram_text(op, lats[op], who, bar_width=16, narrow=True)
                                  for op in ("read", "write")))
            self.query_one("#histogram", Static).update(both)
            switch = f"table: {self.op}() · w: {other}() · h: over time"
        else:
            bar_width = 30 if self.size.width >= 100 else 16
            self.query_one("#histogram", Static).update(self.histogram_text(self.op, lats[self.op], who, bar_width))
            switch = f"w: {other}() · h: over time · side by side from {SIDE_BY_SIDE_WIDTH} columns"
        self.table.show(lats[self.op].by_name())
        sampled = lats[self.op].sampled_1_in
        estimate = f"counts estimated from 1 call in {sampled} · " if sampled > 1 else ""
        self.set_summary(f"[{estimate}ns, log2 buckets [low, high), percentiles interpolated in a bucket · {switch}]")

    def on_resize(self, _event) -> None:
        if self._view is not None and self._view.snapshot is not None:
            self.draw(self._view)


class FileOpenView(View):
    PROBE_SET = "file_opens"
    TIMELINE = "opens"
    TITLE = "file opens (open, openat, openat2)"

    def body(self) -> ComposeResult:
        yield FileOpenTable(id="table")

    def draw(self, view: ViewInput) -> None:
        rows = view.snapshot.file_opens
        self.table.trends = self.trends(view, lambda s: {(r.comm, r.pid, r.cgroup, r.path): r.count
                                                         for r in s.file_opens})
        self.table.show(rows)
        self.set_summary(f"[Opens: {count(sum(r.count for r in rows))}, failed {count(sum(r.errors for r in rows))}, "
                 f"{len(rows)} distinct (process, path) · … marks a path longer than 255 bytes]")


class PageFaultView(View):
    PROBE_SET = "page_faults"
    TIMELINE = "faults"
    TITLE = "user page faults (exceptions:page_fault_user)"

    def body(self) -> ComposeResult:
        yield PageFaultTable(id="table")

    def draw(self, view: ViewInput) -> None:
        rows = view.snapshot.page_faults
        self.table.trends = self.trends(view, lambda s: {(r.comm, r.pid, r.cgroup): r.count for r in s.page_faults})
        totals = view.faults_total
        self.table.show([(r, view.snapshot.interval_s, totals.get((r.comm, r.pid), r.count)) for r in rows])
        self.set_summary(f"[Page faults: {count(sum(r.count for r in rows))} in {view.snapshot.interval_s:g} s, "
                 f"{len(rows)} {'containers' if view.grouped else 'processes'}]")


class ProcessesView(View):
    PROBE_SET = "processes"
    TIMELINE = "processes"
    TITLE = "fork, exec and exit (task:task_newtask, sched:sched_process_exec/exit)"

    def body(self) -> ComposeResult:
        yield ProcessTable(id="table")

    def draw(self, view: ViewInput) -> None:
        events = view.process_events
        self.table.show(events)
        kinds = {k: sum(1 for e in view.snapshot.processes if e.kind == k) for k in ("fork", "exec", "exit")}
        self.set_summary(f"[This interval: {kinds['fork']} forks, {kinds['exec']} execs, {kinds['exit']} exits · "
                         f"the last {count(view.totals.get('processes_kept', 0))} events kept]")


class ProbesView(View):
    """The course's "strace versus eBPF overhead" question, answered live."""

    TITLE = "every BPF program on this machine, ebpftop's marked (kernel run-time statistics)"

    def status_from(self, status: dict, probe_stats: str) -> str:
        return probe_stats  # the kernel's run-time statistics: on, off, or why unavailable

    def update_from(self, view: ViewInput) -> None:
        state = self.query_one("#probe-state", Static)
        if view.status == "off":
            state.update(Text("○ off: press c to measure each program's cost (while on, every BPF program "
                              "on this machine reads the clock twice more per run)", style="yellow"))
        elif view.status == "ok":
            state.update(Text("● measuring · " + self.TITLE + " · c stops", style="green"))
        else:
            state.update(Text("✖ ", style="bold red") + safe(view.status))
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


class AlertsView(View):
    PROBE_SET = "file_opens"  # alerts ride on the file opens probes
    TITLE = "opens of watched files (successful or not), newest first"

    def update_from(self, view: ViewInput) -> None:
        state = self.query_one("#probe-state", Static)
        if view.status in ("ok", "starting"):
            View.update_from(self, view)
            if view.snapshot is None:
                self.draw(view)  # alerts can come before the first poll
        else:
            state.update(Text("✖ not running (it rides on the file opens probe): ", style="bold red") + safe(view.status))

    def body(self) -> ComposeResult:
        yield AlertTable(id="table")

    def draw(self, view: ViewInput) -> None:
        self.table.show(list(view.alerts))
        lost = view.history.lost_total.get("alerts", 0)
        self.set_summary(f"[Alerts: {count(view.totals.get('alerts', 0))} since start"
                         + (f" · {count(lost)} LOST in bursts" if lost else "")
                         + " · never hidden by the name filter]")


@dataclass(frozen=True)
class Tab:
    """One tab of the TUI: its id (and widget id view-ID), key and title,
    and the view that draws it."""

    id: str
    key: str
    title: str
    view: type[View]


TABS: tuple[Tab, ...] = (
    Tab("network", "1", "Network", NetworkView),
    Tab("syscalls", "2", "Syscalls", SyscallView),
    Tab("latency", "3", "Latency", LatencyView),
    Tab("file_opens", "4", "File opens", FileOpenView),
    Tab("page_faults", "5", "Page faults", PageFaultView),
    Tab("processes", "6", "Processes", ProcessesView),
    Tab("probes", "7", "Probes", ProbesView),
    Tab("alerts", "8", "Alerts", AlertsView),
)
