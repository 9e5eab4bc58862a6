"""The sortable table every view shows its rows in, and the cells' helpers.
Every cell that holds a process name or a path is a ``rich.text.Text`` made
by ``safe()``: DataTable would parse a plain ``str`` as markup, so a process
named ``[/]`` could crash the app and one named ``[@click=app.quit]x`` could
run an action.  Each view's own tables live in its module."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Callable

from rich.text import Text
from textual.binding import Binding
from textual.widgets import DataTable

from ebpftop.aggregate import UNKNOWN_CONTAINER, container_label
from ebpftop.model import HOST, Container
from ebpftop.render import count
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
    BINDINGS = [
        Binding("enter", "app.drill_down", "Scope to process",
                tooltip="scope every tab to the process on this row (drill down); by container: to its container"),
        Binding("s", "next_sort", "Sort", tooltip="sort by the next column (a click on a column header sorts by it; "
                "again: reverses)"),
        Binding("S", "reverse_sort", "Reverse", show=False, tooltip="reverse the sort"),
        Binding("k", "app.signal", "Signal", tooltip="send a signal to the process on this row (a picker, then "
                "y to send; checked against the pid's reuse); by name or container: to each of its processes"),
        Binding("n", "app.renice(1)", "Nicer", show=False, tooltip="renice the process on this row by +1 "
                "(lower priority), every thread of it"),
        Binding("N", "app.renice(-1)", "Less nice", show=False, tooltip="renice it by -1 (higher priority)"),
    ]
    DEFAULT_CSS = "SortableTable { height: 1fr; }"

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
            # the cursor and scroll position).  A value wider than its column
            # widens it (a disk's p99 going from 2.9 ms to 14.3 ms showed
            # "14.3 m" otherwise).
            for key, row_cells in zip(keys, cells):
                for c, value in zip(self.cols, row_cells):
                    if self.get_cell(key, c.key) != value:
                        self.update_cell(key, c.key, value, update_width=True)
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

    def action_next_sort(self) -> None:
        self.set_sort((self.sort_index + 1) % len(self.cols))

    def action_reverse_sort(self) -> None:
        self.set_sort(self.sort_index)

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        self.set_sort(event.column_index)

    @property
    def sort_description(self) -> str:
        c = self.cols[self.sort_index]
        return f"{c.label} {'▼' if self.sort_reverse else '▲'}"


def clock(t: float) -> str:
    return _dt.datetime.fromtimestamp(t).strftime("%H:%M:%S")
