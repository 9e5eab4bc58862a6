"""The Disk tab: who is hitting the disk (biotop: per process, device and
kind), each device's latency split into time queued and time on the device
(biolatency), and each I/O slower than a threshold (biosnoop); t goes round
the three, < and > halve and double the slow-I/O threshold."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import DataTable, Static

from ebpftop import snapshots
from ebpftop.model import Histogram
from ebpftop.panes.base import OptionRequested, View, ViewInput
from ebpftop.panes.table import Column, SortableTable, clock, num, safe
from ebpftop.render import byte_size, count, duration, histogram_lines
from ebpftop.sets.disk import DEFAULT_SLOW_MS, by_device


def who(r) -> str:
    """A row's process name, with a kworker's work function: what it did the I/O for."""
    return f"{r.comm} [{r.work}]" if r.work else r.comm


def _per_s(n: int, interval_s: float) -> str:
    return f"{n / interval_s:,.0f}" if interval_s else "-"


def _rate(n: int, interval_s: float) -> str:
    return f"{byte_size(round(n / interval_s))}/s" if interval_s else "-"


class DiskProcessTable(SortableTable):
    """(DiskIO, interval_s) rows."""

    COLUMNS = (
        Column("pid", "PID", lambda r: r[0].pid, lambda r: num(0, str(r[0].pid) if r[0].pid else "-"), numeric=True),
        Column("comm", "COMM", lambda r: who(r[0]), lambda r: safe(who(r[0]))),
        Column("device", "DEVICE", lambda r: r[0].device, lambda r: safe(r[0].device)),
        Column("op", "OP", lambda r: r[0].op, lambda r: safe(r[0].op, style="green" if r[0].op == "read" else "")),
        Column("ops", "OPS", lambda r: r[0].ops, lambda r: num(r[0].ops), numeric=True),
        Column("ops_s", "OPS/S", lambda r: r[0].ops, lambda r: num(0, _per_s(r[0].ops, r[1])), numeric=True),
        Column("bytes", "BYTES", lambda r: r[0].bytes, lambda r: num(0, byte_size(r[0].bytes)), numeric=True),
        Column("rate", "RATE", lambda r: r[0].bytes, lambda r: num(0, _rate(r[0].bytes, r[1])), numeric=True),
        Column("avg", "AVG LAT", lambda r: r[0].avg_ns, lambda r: num(0, duration(r[0].avg_ns)), numeric=True),
        Column("errors", "ERR", lambda r: r[0].errors,
               lambda r: num(0, str(r[0].errors)) if not r[0].errors else Text(str(r[0].errors), style="bold red",
                                                                             justify="right"), numeric=True),
    )
    DEFAULT_SORT = 6  # bytes
    TREND_KEY = staticmethod(lambda r: (r[0].pid, r[0].comm, r[0].work, r[0].device, r[0].op))

    def row_key(self, r) -> str:
        d = r[0]
        return f"{d.pid}\0{d.comm}\0{d.work}\0{d.device}\0{d.op}\0{d.cgroup}"

    def row_process(self, r):
        return (r[0].pid, r[0].comm) if r[0].pid else None


def _p(h: Histogram, q: float) -> Text:
    return num(0, duration(h.percentile(q)) if h.count else "-")


class DiskDeviceTable(SortableTable):
    """(DeviceIO, interval_s) rows: a device's I/O of one kind."""

    COLUMNS = (
        Column("device", "DEVICE", lambda r: r[0].device, lambda r: safe(r[0].device)),
        Column("op", "OP", lambda r: r[0].op, lambda r: safe(r[0].op)),
        Column("ops", "OPS", lambda r: r[0].ops, lambda r: num(r[0].ops), numeric=True),
        Column("rate", "RATE", lambda r: r[0].bytes, lambda r: num(0, _rate(r[0].bytes, r[1])), numeric=True),
        Column("p50", "P50", lambda r: r[0].latency.percentile(50) or 0, lambda r: _p(r[0].latency, 50), numeric=True),
        Column("p90", "P90", lambda r: r[0].latency.percentile(90) or 0, lambda r: _p(r[0].latency, 90), numeric=True),
        Column("p99", "P99", lambda r: r[0].latency.percentile(99) or 0, lambda r: _p(r[0].latency, 99), numeric=True),
        Column("queued", "QUEUED P99", lambda r: r[0].queued.percentile(99) or 0, lambda r: _p(r[0].queued, 99),
               numeric=True),
        Column("device_time", "ON DEVICE P99", lambda r: r[0].on_device.percentile(99) or 0,
               lambda r: _p(r[0].on_device, 99), numeric=True),
    )
    DEFAULT_SORT = 2
    HAS_CONTAINER = False  # a device is the host's

    def row_key(self, r) -> str:
        return f"{r[0].device}\0{r[0].op}"


class DiskSlowTable(SortableTable):
    """SlowIO rows, newest first."""

    COLUMNS = (
        Column("time", "TIME", lambda s: s.time, lambda s: Text(clock(s.time)), numeric=True),
        Column("pid", "PID", lambda s: s.pid, lambda s: num(0, str(s.pid) if s.pid else "-"), numeric=True),
        Column("comm", "COMM", lambda s: who(s), lambda s: safe(who(s))),
        Column("device", "DEVICE", lambda s: s.device, lambda s: safe(s.device)),
        Column("op", "OP", lambda s: s.op, lambda s: safe(s.op)),
        Column("sector", "SECTOR", lambda s: s.sector, lambda s: num(0, str(s.sector)), numeric=True),
        Column("bytes", "BYTES", lambda s: s.bytes, lambda s: num(0, byte_size(s.bytes)), numeric=True),
        Column("latency", "LATENCY", lambda s: s.latency_ns, lambda s: num(0, duration(s.latency_ns)), numeric=True),
        Column("queued", "QUEUED", lambda s: s.queued_ns, lambda s: num(0, duration(s.queued_ns) if s.queued_ns else "-"),
               numeric=True),
        Column("error", "ERR", lambda s: s.error,
               lambda s: num(0, "") if not s.error else Text(str(s.error), style="bold red", justify="right"),
               numeric=True),
    )
    DEFAULT_SORT = 0

    def row_key(self, s) -> str:
        return f"{s.time:.9f}\0{s.tid}\0{s.sector}\0{s.device}"

    def row_process(self, s):
        return (s.pid, s.comm) if s.pid else None


def histograms_text(d, bar_width: int) -> Text:
    """A device's latency histogram, and its queued and on-device parts."""
    out = Text()
    out.append(safe(f"{d.device} {d.op}: ", style="bold"))
    out.append(f"{count(d.ops)} I/Os\np50 {duration(d.latency.percentile(50))} · p90 "
               f"{duration(d.latency.percentile(90))} · p99 {duration(d.latency.percentile(99))}\n")
    for title, h in (("start to completion (ns)", d.latency), ("queued (start to issue)", d.queued),
                     ("on the device (issue to completion)", d.on_device)):
        lines = histogram_lines(h, bar_width=bar_width)
        out.append(f"\n{title}\n", style="bold")
        out.append("\n".join(lines) + "\n" if lines else "not measured (no issue seen)\n", style="" if lines else "dim")
    return out


class DiskView(View):
    PROBE_SET = "disk"
    MODES = ("processes", "devices", "slow")
    TITLES = {
        "processes": "disk I/O per process and device, charged to the thread that submitted it (block tracepoints)",
        "devices": "disk latency per device: queued, and on the device (block_io_start, block_rq_issue/complete)",
        "slow": "each I/O slower than the threshold, newest first (biosnoop)",
    }
    BINDINGS = [
        Binding("t", "next_mode", "Disk views", show=False,
                tooltip="I/O per process (biotop) → per device with its latency histograms (biolatency) → "
                        "slow I/O (biosnoop)"),
        Binding("greater_than_sign", "slow_threshold(2.0)", "slower", show=False,
                tooltip="slow I/O: list only I/Os twice as slow (doubles the threshold)"),
        Binding("less_than_sign", "slow_threshold(0.5)", "faster", show=False,
                tooltip="slow I/O: also list I/Os half as slow (halves the threshold)"),
    ]
    DEFAULT_CSS = """
    DiskView #devices-body { height: 1fr; }
    DiskView #disk-devices-table { width: 1fr; }
    DiskView #device-histograms-box { width: 48; height: 1fr; }
    DiskView #device-histograms { width: auto; padding: 0 1; }
    """
    mode = "processes"
    threshold_ns: int | None = None  # the slow-I/O threshold asked for with < and >; None: the snapshot's

    @property
    def TITLE(self) -> str:  # noqa: N802 - the attribute every view has
        return self.TITLES[self.mode]

    @property
    def timeline_name(self) -> str | None:
        return "disk_p99" if self.mode == "devices" else "disk_bytes"

    def has_timeline(self) -> bool:
        return True

    def body(self) -> ComposeResult:
        yield DiskProcessTable(id="disk-processes-table")
        with Horizontal(id="devices-body") as body:
            body.display = False
            yield DiskDeviceTable(id="disk-devices-table")
            with VerticalScroll(id="device-histograms-box"):
                yield Static(id="device-histograms")
        slow = DiskSlowTable(id="disk-slow-table")
        slow.display = False
        yield slow

    @property
    def table(self) -> SortableTable:
        return self.query_one({"processes": DiskProcessTable, "devices": DiskDeviceTable,
                               "slow": DiskSlowTable}[self.mode])

    def action_next_mode(self) -> None:
        self.mode = self.MODES[(self.MODES.index(self.mode) + 1) % len(self.MODES)]
        self.query_one(DiskProcessTable).display = self.mode == "processes"
        self.query_one("#devices-body").display = self.mode == "devices"
        self.query_one(DiskSlowTable).display = self.mode == "slow"
        self.redraw()
        self.table.focus()

    def current_threshold_ns(self, view: ViewInput | None) -> int:
        if self.threshold_ns is not None:
            return self.threshold_ns
        if view is not None and view.snapshot is not None and "disk" in view.snapshot.status:
            return view.snapshot.disk_slow_ns  # 0 with --slow-io 0: every I/O
        return int(DEFAULT_SLOW_MS * 1e6)

    def action_slow_threshold(self, factor: float) -> None:
        """Lists I/Os from half or twice the threshold on: the kernel is told
        (live), and the kept list is shown from the new threshold."""
        current = self.current_threshold_ns(self._input) or 1_000_000  # from 0 (every I/O): 1 ms
        new = max(1_000, min(60_000_000_000, int(current * factor)))

        def applied() -> None:  # only once the source took it: a replay or the past keeps its own
            self.threshold_ns = new
            self.redraw()

        self.post_message(OptionRequested("slow_io_ms", new / 1e6, on_applied=applied))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if self.mode == "devices" and self._input is not None and self._input.snapshot is not None:
            self.draw_histograms()

    def draw(self, view: ViewInput) -> None:
        {"processes": self.draw_processes, "devices": self.draw_devices, "slow": self.draw_slow}[self.mode](view)

    def draw_processes(self, view: ViewInput) -> None:
        snap = view.snapshot
        self.table.trends = self.trends(view, lambda s: {(r.pid, r.comm, r.work, r.device, r.op): r.bytes / 2**20
                                                         for r in s.disk_io})
        self.table.show([(r, snap.interval_s) for r in snap.disk_io])
        totals = by_device(snap.disk_io)
        read = sum(b for (_, op), (_, b) in totals.items() if op == "read")
        written = sum(b for (_, op), (_, b) in totals.items() if op == "write")
        kernel = sum(r.bytes for r in snap.disk_io if r.work or r.comm.startswith(("jbd2/", "kworker/")))
        what = "containers" if view.grouped else "processes"
        self.set_summary(f"[Disk: read {byte_size(read)}, written {byte_size(written)} in {snap.interval_s:g} s by "
                         f"{len({(r.pid, r.comm) for r in snap.disk_io})} {what}"
                         f"{f' · {byte_size(kernel)} by kernel threads for others (writeback, journal)' if kernel else ''}"
                         f" · t: per device]")

    def _selected_device(self):
        table = self.query_one(DiskDeviceTable)
        shown = table._shown
        if not shown:
            return None
        return shown[min(max(table.cursor_row, 0), len(shown) - 1)][0]

    def draw_histograms(self) -> None:
        d = self._selected_device()
        box = self.query_one("#device-histograms", Static)
        if d is None:
            box.update(Text("no disk I/O in this interval", style="dim"))
            return
        box.update(histograms_text(d, 16))

    def draw_devices(self, view: ViewInput) -> None:
        snap = view.snapshot
        self.table.show([(d, snap.interval_s) for d in snap.disk_devices])
        self.draw_histograms()
        self.set_summary(f"[{len({d.device for d in snap.disk_devices})} devices, all processes' I/O · "
                         f"histograms: the row under the cursor · t: slow I/O]")

    def draw_slow(self, view: ViewInput) -> None:
        threshold = self.current_threshold_ns(view)
        kept = snapshots.rows_filtered("disk_slow", view.kept("disk_slow"), view.flt, view.containers)
        shown = [s for s in kept if s.latency_ns >= threshold]
        self.table.show(shown)
        lost = view.history.lost_total.get("disk_slow", 0)
        self.set_summary(f"[I/O of {duration(threshold)} or more: {len(view.snapshot.disk_slow)} this interval, "
                         f"the last {count(len(shown))} kept" + (f" · {count(lost)} LOST" if lost else "") +
                         " · < >: halve, double · t: per process]")
