"""The five panes.  Each gets a ``PaneInput`` (the filtered snapshot and the
history) and redraws itself from it; none keeps data of its own."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Static

from ebpftop import filters
from ebpftop.history import History
from ebpftop.model import STATUS_OK, STATUS_STARTING, Snapshot
from ebpftop.text import visible
from ebpftop.panes.tables import (
    AlertTable,
    FileOpenTable,
    LatencyTable,
    PageFaultTable,
    ProbeTable,
    ProcessTable,
    SortableTable,
    SyscallTable,
    TcpTable,
    UdpTable,
    safe,
)
from ebpftop.render import byte_size, count, duration, histogram_lines


@dataclass(frozen=True)
class PaneInput:
    snapshot: Snapshot | None  # filtered; None before the first poll
    history: History
    flt: filters.Filter
    status: str  # the probe's state: "starting", "ok", or why it is not running
    note: str = ""  # what a fallback on this machine changes (capabilities.py)


class Pane(Vertical):
    """A probe state line, a table, and a summary line."""

    PANE = ""
    TITLE = ""

    def compose(self) -> ComposeResult:
        yield Static(id="probe-state", classes="probe-state")
        yield from self.body()
        yield Static(id="summary", classes="summary")

    def body(self) -> ComposeResult:
        yield from ()

    @property
    def table(self) -> SortableTable:
        return self.query_one(SortableTable)

    def update_from(self, view: PaneInput) -> None:
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
        else:
            state.update(Text("✖ not running: ", style="bold red") + safe(view.status))
        if view.snapshot is not None:
            self.draw(view)

    def draw(self, view: PaneInput) -> None:
        raise NotImplementedError

    def set_summary(self, text: str) -> None:
        hidden = self.table.hidden_rows
        if hidden:
            text += f" · showing the first {count(len(self.table._rows) - hidden)} of {count(len(self.table._rows))} rows (filter or sort for the rest)"
        self.query_one("#summary", Static).update(Text(visible(text)))  # may hold names from a recording


class NetworkPane(Pane):
    """TCP connections or UDP flows: the app's u key switches."""

    PANE = "tcp"
    TITLES = {
        "tcp": "new TCP connections (sock:inet_sock_set_state, accept in process context)",
        "udp": "UDP flows in the interval (cgroup_skb on the root cgroup, owners from sock:sock_recv_length)",
    }
    mode = "tcp"  # or "udp"

    @property
    def TITLE(self) -> str:  # noqa: N802 - the attribute every pane has
        return self.TITLES[self.mode]

    def body(self) -> ComposeResult:
        yield TcpTable(id="tcp-table")
        udp = UdpTable(id="udp-table")
        udp.display = False
        yield udp

    @property
    def table(self) -> SortableTable:
        return self.query_one(TcpTable if self.mode == "tcp" else UdpTable)

    def set_mode(self, mode: str) -> None:
        self.mode = mode
        self.query_one(TcpTable).display = mode == "tcp"
        self.query_one(UdpTable).display = mode == "udp"

    def draw(self, view: PaneInput) -> None:
        if self.mode == "udp":
            self.draw_udp(view)
        else:
            self.draw_tcp(view)

    def draw_udp(self, view: PaneInput) -> None:
        flows = view.snapshot.udp
        self.table.show([(f, view.snapshot.interval_s) for f in flows])
        tx = sum(f.tx_datagrams for f in flows)
        rx = sum(f.rx_datagrams for f in flows)
        tx_b = sum(f.tx_bytes for f in flows)
        rx_b = sum(f.rx_bytes for f in flows)
        self.set_summary(f"[UDP: {len(flows)} flows · datagrams sent {count(tx)} ({byte_size(tx_b)}), received "
                         f"{count(rx)} ({byte_size(rx_b)}) in {view.snapshot.interval_s:g} s · u: TCP]")

    def draw_tcp(self, view: PaneInput) -> None:
        recent = filters.apply(
            Snapshot(time=view.snapshot.time, interval_s=view.snapshot.interval_s, tcp=view.history.recent_connections()),
            view.flt,
        ).tcp
        self.table.show(recent)
        shown = f" · shown {len(recent)}" if view.flt.active else ""
        self.set_summary(f"[Connections: {len(view.snapshot.tcp)} this interval, "
                         f"{count(view.history.connections_total)} since start{shown} · u: UDP]")


class SyscallPane(Pane):
    PANE = "syscalls"
    TITLE = "syscalls by process name (raw_syscalls:sys_enter)"

    def body(self) -> ComposeResult:
        yield SyscallTable(id="table")

    def draw(self, view: PaneInput) -> None:
        rows = view.snapshot.syscalls
        peak = max((r.count for r in rows), default=0)
        self.table.show([(r, view.snapshot.interval_s, peak) for r in rows])
        total = sum(r.count for r in rows)
        self.set_summary(f"[Syscalls: {count(total)} in {view.snapshot.interval_s:g} s, "
                 f"{count(round(total / view.snapshot.interval_s))}/s, {len(rows)} process names]")


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


class LatencyPane(Pane):
    PANE = "read_latency"
    TITLE = "read() and write() latency (syscalls:sys_exit_read / sys_exit_write)"
    op = "read"  # or "write": the app's w key switches (the table; and the histogram when narrow)
    _view: PaneInput | None = None  # the last drawn, to redraw on a resize

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
        text.append(f"\n{count(hist.count)} {op}s · mean {duration(hist.mean_ns)}{chr(10) if narrow else ' · '}"
                    f"p50 {duration(hist.percentile(50))} · p90 {duration(hist.percentile(90))} · p99 {duration(hist.percentile(99))}\n\n")
        lines = histogram_lines(hist, bar_width=bar_width)
        text.append("\n".join(lines) if lines else f"no {op}() in this interval", style="" if lines else "dim")
        return text

    def draw(self, view: PaneInput) -> None:
        self._view = view
        lats = {"read": view.snapshot.read_latency, "write": view.snapshot.write_latency}
        who = f"processes matching {view.flt.comm!r}" if view.flt.comm else "all processes"
        if view.flt.pid is not None:
            who += f", pid {view.flt.pid}"
        other = "write" if self.op == "read" else "read"
        if self.size.width >= SIDE_BY_SIDE_WIDTH:
            both = side_by_side(*(self.histogram_text(op, lats[op], who, bar_width=16, narrow=True)
                                  for op in ("read", "write")))
            self.query_one("#histogram", Static).update(both)
            switch = f"table: {self.op}() · w: {other}()"
        else:
            bar_width = 30 if self.size.width >= 100 else 16
            self.query_one("#histogram", Static).update(self.histogram_text(self.op, lats[self.op], who, bar_width))
            switch = f"w: {other}() · side by side from {SIDE_BY_SIDE_WIDTH} columns"
        self.table.show(list(lats[self.op].by_comm().items()))
        self.set_summary(f"[ns, log2 buckets [low, high), percentiles interpolated in a bucket · {switch}]")

    def on_resize(self, _event) -> None:
        if self._view is not None and self._view.snapshot is not None:
            self.draw(self._view)


class FileOpenPane(Pane):
    PANE = "file_opens"
    TITLE = "file opens (open, openat, openat2)"

    def body(self) -> ComposeResult:
        yield FileOpenTable(id="table")

    def draw(self, view: PaneInput) -> None:
        rows = view.snapshot.file_opens
        self.table.show(rows)
        self.set_summary(f"[Opens: {count(sum(r.count for r in rows))}, failed {count(sum(r.errors for r in rows))}, "
                 f"{len(rows)} distinct (process, path) · … marks a path longer than 255 bytes]")


class PageFaultPane(Pane):
    PANE = "page_faults"
    TITLE = "user page faults (exceptions:page_fault_user)"

    def body(self) -> ComposeResult:
        yield PageFaultTable(id="table")

    def draw(self, view: PaneInput) -> None:
        rows = view.snapshot.page_faults
        totals = view.history.faults_total
        self.table.show([(r, view.snapshot.interval_s, totals.get((r.comm, r.pid), r.count)) for r in rows])
        self.set_summary(f"[Page faults: {count(sum(r.count for r in rows))} in {view.snapshot.interval_s:g} s, "
                 f"{len(rows)} processes]")


class ProcessesPane(Pane):
    PANE = "processes"
    TITLE = "fork, exec and exit (task:task_newtask, sched:sched_process_exec/exit)"

    def body(self) -> ComposeResult:
        yield ProcessTable(id="table")

    def draw(self, view: PaneInput) -> None:
        events = filters.apply(
            Snapshot(time=view.snapshot.time, interval_s=view.snapshot.interval_s,
                     processes=tuple(view.history.processes)),
            view.flt,
        ).processes
        self.table.show(events)
        kinds = {k: sum(1 for e in view.snapshot.processes if e.kind == k) for k in ("fork", "exec", "exit")}
        self.set_summary(f"[This interval: {kinds['fork']} forks, {kinds['exec']} execs, {kinds['exit']} exits · "
                         f"the last {count(len(view.history.processes))} events kept]")


class ProbesPane(Pane):
    """The course's "strace versus eBPF overhead" question, answered live."""

    PANE = "probes"
    TITLE = "ebpftop's own BPF programs (kernel run-time statistics)"

    def update_from(self, view: PaneInput) -> None:
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

    def draw(self, view: PaneInput) -> None:
        probes = view.snapshot.probes
        self.table.show([(p, view.snapshot.interval_s) for p in probes])
        total_ns = sum(p.run_time_ns for p in probes)
        runs = sum(p.runs for p in probes)
        cpu = total_ns / (view.snapshot.interval_s * 1e9) * 100
        self.set_summary(f"[{len(probes)} programs · {count(runs)} runs · {cpu:.3f}% of one CPU in the interval, "
                         "not counting the tracepoints' own dispatch]")


class AlertsPane(Pane):
    PANE = "alerts"
    TITLE = "opens of watched files (successful or not), newest first"

    def update_from(self, view: PaneInput) -> None:
        state = self.query_one("#probe-state", Static)
        if view.status in ("ok", "starting"):
            Pane.update_from(self, view)
            if view.snapshot is None:
                self.draw(view)  # alerts can come before the first poll
        else:
            state.update(Text("✖ not running (it rides on the file opens probe): ", style="bold red") + safe(view.status))

    def body(self) -> ComposeResult:
        yield AlertTable(id="table")

    def draw(self, view: PaneInput) -> None:
        self.table.show(list(view.history.alerts))
        lost = view.history.lost_total.get("alerts", 0)
        self.set_summary(f"[Alerts: {count(view.history.alerts_total)} since start"
                         + (f" · {count(lost)} LOST in bursts" if lost else "")
                         + " · never hidden by the name filter]")


PANE_CLASSES = (NetworkPane, SyscallPane, LatencyPane, FileOpenPane, PageFaultPane, ProcessesPane, ProbesPane, AlertsPane)
