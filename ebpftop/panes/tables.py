"""Sortable tables for the panes.  Every cell that holds a process name or a
path is a ``rich.text.Text`` made by ``safe()``: DataTable would parse a
plain ``str`` as markup, so a process named ``[/]`` could crash the app and
one named ``[@click=app.quit]x`` could run an action."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Callable

from rich.text import Text
from textual.binding import Binding
from textual.widgets import DataTable

from ebpftop.aggregate import UNKNOWN_CONTAINER, container_label
from ebpftop.model import (
    HOST,
    Container,
    FileOpenRow,
    PageFaultRow,
    SyscallRow,
    TcpConnection,
    TcpProcessTraffic,
    TcpSession,
    UdpFlow,
)
from ebpftop.render import byte_size, count, duration
from ebpftop.text import visible


def unique_keys(keys) -> list[str]:
    """Row keys made unique: rows that look the same (two threads failing
    the same open in one microsecond, two exec rows of one pid, a replayed
    recording's millisecond times) once made DataTable raise DuplicateKey,
    which any user could trigger to end the live TUI."""
    seen: dict[str, int] = {}
    out = []
    for k in keys:
        n = seen.get(k, 0)
        seen[k] = n + 1
        out.append(k if n == 0 else f"{k}\x00{n}")
    return out


def safe(s: str, style: str = "") -> Text:
    """Untrusted text, shown literally with control characters escaped."""
    return Text(visible(s), style=style, no_wrap=True, overflow="ellipsis")


def num(n: int | float | None, text: str | None = None) -> Text:
    return Text(text if text is not None else ("-" if n is None else count(int(n))), justify="right")


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    sort_key: Callable[[Any], Any]
    cell: Callable[[Any], Text]
    numeric: bool = False  # numeric columns sort largest first by default


# A table shows at most this many rows, the first in its sort order: a screen
# shows a few dozen, and DataTable's cost grows with every row it holds.  The
# summary line says how many there are; filtering or sorting reaches the rest.
MAX_TABLE_ROWS = 200


class SortableTable(DataTable):
    """A DataTable that owns its rows' order: ``s`` picks the next sort column,
    ``S`` reverses, a click on a header sorts by it (again: reverses).

    Tables whose rows name a process also get a CONTAINER column after COMM,
    shown when some row is not on the host; grouped by container (the app's
    g key), COMM shows the container and the PID columns go."""

    COLUMNS: tuple[Column, ...] = ()
    DEFAULT_SORT = 0
    HAS_CONTAINER = True  # its rows carry a cgroup (row_cgroup)
    TREND_KEY: Callable[[Any], Any] | None = None  # a row's key in timeline.row_trends: then a TREND column
    # Enter drills down (DataTable's own Enter only selects); a click moves the cursor.
    BINDINGS = [Binding("enter", "app.drill_down", "Scope to process")]

    def __init__(self, **kw):
        super().__init__(cursor_type="row", zebra_stripes=True, **kw)
        self.containers: Mapping[int, Container] = {}
        self.trends: dict = {}  # TREND_KEY(row) -> its counts over the last intervals
        self.show_container = False
        self.grouped = False
        self.cols = self._visible_columns()
        self.sort_index = self.DEFAULT_SORT
        self.sort_reverse = self.cols[self.DEFAULT_SORT].numeric
        self._rows: list = []
        self._shown: list = []  # the rows on screen, in order
        self._keys: list[str] = []

    def row_cgroup(self, row) -> int:
        r = row if hasattr(row, "cgroup") else row[0]
        return r.cgroup

    def container_text(self, row) -> str:
        return container_label(self.row_cgroup(row), self.containers)

    def _container_cell(self, row) -> Text:
        label = self.container_text(row)
        if label in (HOST, UNKNOWN_CONTAINER):
            return Text(label if label == HOST else "-", style="dim")
        return safe(label, style="cyan")

    def _visible_columns(self) -> list[Column]:
        cols = []
        for c in self.COLUMNS:
            if self.grouped and c.key in ("pid", "ppid"):
                continue
            cols.append(replace(c, label="CONTAINER") if self.grouped and c.key == "comm" else c)
            if c.key == "comm" and self.HAS_CONTAINER and self.show_container and not self.grouped:
                cols.append(Column("container", "CONTAINER", self.container_text, self._container_cell))
        if self.TREND_KEY is not None and not self.grouped:
            cols.append(Column("trend", "TREND", self._trend_spread, self._trend_cell, numeric=True))
        return cols

    def _trend(self, row):
        return self.trends.get(self.TREND_KEY(row))

    def _trend_spread(self, row) -> float:
        values = [v for v in self._trend(row) or () if v == v]  # NaN: an interval not measured (timeline.py)
        return (max(values) - min(values)) if values else 0

    def _trend_cell(self, row) -> Text:
        from ebpftop.panes.timeline import trend_text

        return trend_text(self._trend(row))

    def set_context(self, containers: Mapping[int, Container], show_container: bool, grouped: bool) -> None:
        """What the CONTAINER column reads, and which columns show."""
        self.containers = containers
        if (show_container, grouped) == (self.show_container, self.grouped):
            return
        sort_key = self.cols[self.sort_index].key
        self.show_container, self.grouped = show_container, grouped
        self.cols = self._visible_columns()
        keys = [c.key for c in self.cols]
        self.sort_index = keys.index(sort_key) if sort_key in keys else min(self.DEFAULT_SORT, len(keys) - 1)
        if self.is_mounted:
            self.clear(columns=True)
            self._keys = []
            for c in self.cols:
                self.add_column(c.label, key=c.key)
            self._relabel()

    def on_mount(self) -> None:
        for c in self.cols:
            self.add_column(c.label, key=c.key)
        self._relabel()

    def row_key(self, row) -> str:
        raise NotImplementedError

    def row_process(self, row) -> tuple[int | None, str] | None:
        """(pid, comm) of the process a row names, for drill-down; pid None
        when the row is a process name only."""
        return None

    def selected_container(self) -> str | None:
        """The CONTAINER of the row under the cursor ("host" for the host's)."""
        if not self.HAS_CONTAINER or not (0 <= self.cursor_row < len(self._shown)):
            return None
        return self.container_text(self._shown[self.cursor_row])

    def selected_process(self) -> tuple[int | None, str] | None:
        if not (0 <= self.cursor_row < len(self._shown)):
            return None
        return self.row_process(self._shown[self.cursor_row])

    def show(self, rows) -> None:
        self._rows = list(rows)
        self._render_rows()

    def _sorted(self):
        col = self.cols[self.sort_index]
        return sorted(self._rows, key=col.sort_key, reverse=self.sort_reverse)

    @property
    def hidden_rows(self) -> int:
        return max(0, len(self._rows) - MAX_TABLE_ROWS)

    def _render_rows(self) -> None:
        rows = self._sorted()[:MAX_TABLE_ROWS]
        self._shown = rows
        keys = unique_keys(self.row_key(r) for r in rows)
        cells = [[c.cell(r) for c in self.cols] for r in rows]
        self._right_align(cells)
        if keys == self._keys:
            # Same rows in the same order: update cells in place (cheap, keeps
            # the cursor and scroll position).
            for key, row_cells in zip(keys, cells):
                for c, value in zip(self.cols, row_cells):
                    if self.get_cell(key, c.key) != value:
                        self.update_cell(key, c.key, value)
            return
        cursor_key = self._keys[self.cursor_row] if 0 <= self.cursor_row < len(self._keys) else None
        self.clear()
        for key, row_cells in zip(keys, cells):
            self.add_row(*row_cells, key=key)
        self._keys = keys
        if cursor_key in keys:
            self.move_cursor(row=keys.index(cursor_key), animate=False)

    def _right_align(self, cells: list[list[Text]]) -> None:
        """Numbers line up on the right.  DataTable drops a Text's own
        justify, so pad them to the column's widest value (or its label)."""
        for i, col in enumerate(self.cols):
            if not col.numeric:
                continue
            width = max([len(col.label) + 2] + [row[i].cell_len for row in cells])
            for row in cells:
                t = row[i]
                if t.cell_len < width:
                    padded = Text(" " * (width - t.cell_len), style=t.style)
                    padded.append_text(t)
                    row[i] = padded

    def _relabel(self) -> None:
        for i, c in enumerate(self.cols):
            arrow = (" ▼" if self.sort_reverse else " ▲") if i == self.sort_index else ""
            self.columns[c.key].label = Text(c.label + arrow)
        self.refresh()

    def set_sort(self, index: int) -> None:
        if index == self.sort_index:
            self.sort_reverse = not self.sort_reverse
        else:
            self.sort_index = index
            self.sort_reverse = self.cols[index].numeric
        self._relabel()
        self._render_rows()

    def next_sort(self) -> None:
        self.set_sort((self.sort_index + 1) % len(self.cols))

    def reverse_sort(self) -> None:
        self.set_sort(self.sort_index)

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        self.set_sort(event.column_index)

    @property
    def sort_description(self) -> str:
        c = self.cols[self.sort_index]
        return f"{c.label} {'▼' if self.sort_reverse else '▲'}"


def _clock(t: float) -> str:
    return _dt.datetime.fromtimestamp(t).strftime("%H:%M:%S")


class TcpTable(SortableTable):
    COLUMNS = (
        Column("time", "TIME", lambda c: c.time, lambda c: Text(_clock(c.time)), numeric=True),
        Column("pid", "PID", lambda c: c.pid, lambda c: num(c.pid, "-" if c.pid == 0 else str(c.pid)), numeric=True),
        Column("comm", "COMM", lambda c: c.comm, lambda c: safe(c.comm) if c.comm else Text("?", style="dim")),
        Column("dir", "DIR", lambda c: c.direction, lambda c: safe(c.direction)),
        Column("family", "IP", lambda c: c.family, lambda c: safe(c.family[-1:])),
        Column("saddr", "SADDR", lambda c: c.saddr, lambda c: safe(c.saddr)),
        Column("sport", "SPORT", lambda c: c.sport, lambda c: num(c.sport, str(c.sport)), numeric=True),
        Column("daddr", "DADDR", lambda c: c.daddr, lambda c: safe(c.daddr)),
        Column("dport", "DPORT", lambda c: c.dport, lambda c: num(c.dport, str(c.dport)), numeric=True),
    )

    def row_key(self, c: TcpConnection) -> str:
        return f"{c.time:.9f}/{c.direction}/{c.saddr}/{c.sport}/{c.daddr}/{c.dport}"

    def row_process(self, c: TcpConnection):
        return (c.pid, c.comm) if c.pid else None


class UdpTable(SortableTable):
    """UDP flows of the interval: (UdpFlow, interval_s) rows."""

    COLUMNS = (
        Column("pid", "PID", lambda r: r[0].pid, lambda r: num(0, str(r[0].pid) if r[0].pid else "-"), numeric=True),
        Column("comm", "COMM", lambda r: r[0].comm, lambda r: safe(r[0].comm) if r[0].comm else Text("?", style="dim")),
        Column("family", "IP", lambda r: r[0].family, lambda r: safe(r[0].family[-1:])),
        Column("laddr", "LADDR", lambda r: r[0].laddr, lambda r: safe(r[0].laddr)),
        Column("lport", "LPORT", lambda r: r[0].lport, lambda r: num(0, str(r[0].lport)), numeric=True),
        Column("raddr", "RADDR", lambda r: r[0].raddr, lambda r: safe(r[0].raddr)),
        Column("rport", "RPORT", lambda r: r[0].rport, lambda r: num(0, str(r[0].rport)), numeric=True),
        Column("tx", "SENT", lambda r: r[0].tx_datagrams, lambda r: num(r[0].tx_datagrams), numeric=True),
        Column("tx_bytes", "SENT B", lambda r: r[0].tx_bytes, lambda r: num(0, byte_size(r[0].tx_bytes)), numeric=True),
        Column("rx", "RECV", lambda r: r[0].rx_datagrams, lambda r: num(r[0].rx_datagrams), numeric=True),
        Column("rx_bytes", "RECV B", lambda r: r[0].rx_bytes, lambda r: num(0, byte_size(r[0].rx_bytes)), numeric=True),
        Column("rate", "B/S", lambda r: r[0].tx_bytes + r[0].rx_bytes,
               lambda r: num(0, byte_size(round((r[0].tx_bytes + r[0].rx_bytes) / r[1]))), numeric=True),
    )
    DEFAULT_SORT = 11

    def row_key(self, r: tuple[UdpFlow, float]) -> str:
        f = r[0]
        return f"{f.pid}\0{f.comm}\0{f.laddr}\0{f.lport}\0{f.raddr}\0{f.rport}"

    def row_process(self, r):
        return (r[0].pid, r[0].comm) if r[0].pid else None


def _age(seconds: float) -> str:
    s = int(seconds)
    if s < 60:
        return f"{seconds:.1f}s" if seconds < 10 else f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def _rate(n: int, interval_s: float) -> Text:
    return num(0, byte_size(round(n / interval_s)) + "/s")


class TcpTrafficTable(SortableTable):
    """Open TCP connections and those closed in the interval: (TcpSession,
    interval_s, snapshot time) rows; the busiest first."""

    COLUMNS = (
        Column("pid", "PID", lambda r: r[0].pid, lambda r: num(0, str(r[0].pid) if r[0].pid else "-"), numeric=True),
        Column("comm", "COMM", lambda r: r[0].comm, lambda r: safe(r[0].comm) if r[0].comm else Text("?", style="dim")),
        Column("local", "LOCAL", lambda r: (r[0].saddr, r[0].sport), lambda r: safe(_endpoint(r[0].saddr, r[0].sport))),
        Column("remote", "REMOTE", lambda r: (r[0].daddr, r[0].dport), lambda r: safe(_endpoint(r[0].daddr, r[0].dport))),
        Column("state", "STATE", lambda r: r[0].state, lambda r: safe(r[0].state)),
        Column("age", "AGE", lambda r: r[0].duration_s(r[2]), lambda r: num(0, _age(r[0].duration_s(r[2]))), numeric=True),
        Column("tx_rate", "TX/S", lambda r: r[0].tx_bytes, lambda r: _rate(r[0].tx_bytes, r[1]), numeric=True),
        Column("rx_rate", "RX/S", lambda r: r[0].rx_bytes, lambda r: _rate(r[0].rx_bytes, r[1]), numeric=True),
        Column("tx_total", "TX", lambda r: r[0].tx_total, lambda r: num(0, byte_size(r[0].tx_total)), numeric=True),
        Column("rx_total", "RX", lambda r: r[0].rx_total, lambda r: num(0, byte_size(r[0].rx_total)), numeric=True),
        Column("retrans", "RETRANS", lambda r: r[0].retransmits, lambda r: num(r[0].retransmits), numeric=True),
        Column("resets", "RST S/R", lambda r: r[0].resets_sent + r[0].resets_received,
               lambda r: num(0, f"{r[0].resets_sent}/{r[0].resets_received}"), numeric=True),
    )
    DEFAULT_SORT = 6

    def _sorted(self):
        col = self.cols[self.sort_index]
        if col.key in ("tx_rate", "rx_rate"):  # by rate: both ways together, so the busiest is on top
            return sorted(self._rows, key=lambda r: (r[0].tx_bytes + r[0].rx_bytes, col.sort_key(r)),
                          reverse=self.sort_reverse)
        return super()._sorted()

    def row_key(self, r) -> str:
        c = r[0]
        return f"{c.opened:.9f}/{c.saddr}/{c.sport}/{c.daddr}/{c.dport}"

    def row_process(self, r):
        return (r[0].pid, r[0].comm) if r[0].pid else None


class TcpClosedTable(SortableTable):
    """Closed TCP connections, newest first (tcplife): TcpSession rows."""

    COLUMNS = (
        Column("closed", "CLOSED", lambda c: c.closed, lambda c: Text(_clock(c.closed)), numeric=True),
        Column("pid", "PID", lambda c: c.pid, lambda c: num(0, str(c.pid) if c.pid else "-"), numeric=True),
        Column("comm", "COMM", lambda c: c.comm, lambda c: safe(c.comm) if c.comm else Text("?", style="dim")),
        Column("dir", "DIR", lambda c: c.direction, lambda c: safe(c.direction)),
        Column("local", "LOCAL", lambda c: (c.saddr, c.sport), lambda c: safe(_endpoint(c.saddr, c.sport))),
        Column("remote", "REMOTE", lambda c: (c.daddr, c.dport), lambda c: safe(_endpoint(c.daddr, c.dport))),
        Column("life", "LIFETIME", lambda c: c.duration_s(c.closed), lambda c: num(0, _age(c.duration_s(c.closed))),
               numeric=True),
        Column("tx_total", "TX", lambda c: c.tx_total, lambda c: num(0, byte_size(c.tx_total)), numeric=True),
        Column("rx_total", "RX", lambda c: c.rx_total, lambda c: num(0, byte_size(c.rx_total)), numeric=True),
        Column("retrans", "RETRANS", lambda c: c.retransmits, lambda c: num(c.retransmits), numeric=True),
        Column("resets", "RST S/R", lambda c: c.resets_sent + c.resets_received,
               lambda c: num(0, f"{c.resets_sent}/{c.resets_received}"), numeric=True),
    )

    def row_key(self, c: TcpSession) -> str:
        return f"{c.opened:.9f}/{c.saddr}/{c.sport}/{c.daddr}/{c.dport}"

    def row_process(self, c: TcpSession):
        return (c.pid, c.comm) if c.pid else None


def _endpoint(addr: str, port: int) -> str:
    return f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"


class TcpProcessTable(SortableTable):
    """TCP bytes per process (like nethogs): (TcpProcessTraffic, interval_s) rows."""

    COLUMNS = (
        Column("pid", "PID", lambda r: r[0].pid, lambda r: num(0, str(r[0].pid) if r[0].pid else "-"), numeric=True),
        Column("comm", "COMM", lambda r: r[0].comm, lambda r: safe(r[0].comm) if r[0].comm else Text("?", style="dim")),
        Column("conns", "CONNS", lambda r: r[0].connections, lambda r: num(r[0].connections), numeric=True),
        Column("tx_rate", "TX/S", lambda r: r[0].tx_bytes, lambda r: _rate(r[0].tx_bytes, r[1]), numeric=True),
        Column("rx_rate", "RX/S", lambda r: r[0].rx_bytes, lambda r: _rate(r[0].rx_bytes, r[1]), numeric=True),
        Column("tx_total", "TX", lambda r: r[0].tx_total, lambda r: num(0, byte_size(r[0].tx_total)), numeric=True),
        Column("rx_total", "RX", lambda r: r[0].rx_total, lambda r: num(0, byte_size(r[0].rx_total)), numeric=True),
        Column("retrans", "RETRANS", lambda r: r[0].retransmits, lambda r: num(r[0].retransmits), numeric=True),
        Column("resets", "RESETS", lambda r: r[0].resets, lambda r: num(r[0].resets), numeric=True),
    )
    DEFAULT_SORT = 3

    def _sorted(self):
        col = self.cols[self.sort_index]
        if col.key in ("tx_rate", "rx_rate"):
            return sorted(self._rows, key=lambda r: (r[0].tx_bytes + r[0].rx_bytes, col.sort_key(r)),
                          reverse=self.sort_reverse)
        return super()._sorted()

    def row_key(self, r: tuple[TcpProcessTraffic, float]) -> str:
        return f"{r[0].pid}\0{r[0].comm}\0{r[0].cgroup}"

    def row_process(self, r):
        return (r[0].pid, r[0].comm) if r[0].pid else None


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


class FileOpenTable(SortableTable):
    COLUMNS = (
        Column("count", "OPENS", lambda r: r.count, lambda r: num(r.count), numeric=True),
        Column("errors", "FAILED", lambda r: r.errors, lambda r: num(r.errors), numeric=True),
        Column("pid", "PID", lambda r: r.pid, lambda r: num(r.pid, str(r.pid)), numeric=True),
        Column("comm", "COMM", lambda r: r.comm, lambda r: safe(r.comm)),
        Column("path", "PATH", lambda r: r.path, lambda r: safe(r.path + ("…" if r.truncated else ""))),
    )

    TREND_KEY = staticmethod(lambda r: (r.comm, r.pid, r.cgroup, r.path))

    def row_key(self, r: FileOpenRow) -> str:
        return f"{r.pid}\0{r.comm}\0{r.cgroup}\0{r.truncated}\0{r.path}"

    def row_process(self, r: FileOpenRow):
        return (r.pid, r.comm)


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


def _lifetime(s: float | None) -> str:
    if s is None:
        return "-"
    if s < 1:
        return f"{s * 1000:.1f} ms"
    if s < 120:
        return f"{s:.1f} s"
    return f"{s / 60:.0f} min"


class ProcessTable(SortableTable):
    COLUMNS = (
        Column("time", "TIME", lambda e: e.time, lambda e: Text(_clock(e.time)), numeric=True),
        Column("kind", "EVENT", lambda e: e.kind,
               lambda e: safe(e.kind, style={"fork": "cyan", "exec": "green", "exit": "magenta"}.get(e.kind, ""))),
        Column("pid", "PID", lambda e: e.pid, lambda e: num(e.pid, str(e.pid)), numeric=True),
        Column("ppid", "PPID", lambda e: e.ppid, lambda e: num(e.ppid, str(e.ppid) if e.ppid else "-"), numeric=True),
        Column("comm", "COMM", lambda e: e.comm, lambda e: safe(e.comm)),
        Column("code", "EXIT", lambda e: -1 if e.exit_code is None else e.exit_code,
               lambda e: num(0, "" if e.kind != "exit" else ("signal" if e.exit_code is None else str(e.exit_code)))),
        Column("life", "LIFETIME", lambda e: e.lifetime_s or 0, lambda e: num(0, _lifetime(e.lifetime_s) if e.kind == "exit" else ""),
               numeric=True),
        Column("what", "PROGRAM ARGS (argv[1:])", lambda e: (e.filename, e.args),
               lambda e: safe(" ".join((e.filename, *e.args[1:])) if e.kind == "exec" else "")),
    )

    def row_key(self, e) -> str:
        return f"{e.time:.9f}/{e.kind}/{e.pid}"

    def row_process(self, e):
        return (e.pid, e.comm)


class AlertTable(SortableTable):
    COLUMNS = (
        Column("time", "TIME", lambda a: a.time, lambda a: Text(_clock(a.time)), numeric=True),
        Column("pid", "PID", lambda a: a.pid, lambda a: num(a.pid, str(a.pid)), numeric=True),
        Column("ppid", "PPID", lambda a: a.ppid, lambda a: num(a.ppid, str(a.ppid) if a.ppid else "?"), numeric=True),
        Column("uid", "UID", lambda a: a.uid, lambda a: num(a.uid, str(a.uid)), numeric=True),
        Column("comm", "COMM", lambda a: a.comm, lambda a: safe(a.comm)),
        Column("result", "RESULT", lambda a: a.result,
               lambda a: safe(a.result, style="bold red" if a.ret >= 0 else "yellow")),
        Column("path", "PATH", lambda a: a.path, lambda a: safe(a.path)),
    )

    def row_key(self, a) -> str:
        return f"{a.time:.9f}/{a.pid}/{a.ret}/{a.path}"

    def row_process(self, a):
        return (a.pid, a.comm)


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
