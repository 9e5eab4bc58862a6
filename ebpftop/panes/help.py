"""The help screen: every key, in one place."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

KEYS = (
    ("1 2 3 4 5 6 7 8", "show a pane: Network, Syscalls, Latency, File opens, Page faults, Processes, Probes, Alerts"),
    ("t", "Network pane: TCP connections with their traffic → per process → closed (tcplife) → new connections"),
    ("u", "Network pane: switch between TCP and UDP flows"),
    ("c", "Probes pane: measure ebpftop's own BPF programs (on/off)"),
    ("w", "Latency pane: switch between read() and write()"),
    ("h", "Latency pane: latency over time, a heatmap of the kept intervals (and back)"),
    ("Tab / Shift+Tab", "next / previous pane"),
    ("↑ ↓ PgUp PgDn Home End", "move in the table"),
    ("/", "filter by process or container name; every key then goes to the filter"),
    ("Enter (in the filter)", "keep the filter and return to the table"),
    ("Esc (in the filter)", "clear the filter"),
    ("Enter", "scope every pane to the process on this row (drill down); by container: to its container"),
    ("g", "every pane per container instead of per process (syscalls, latency, opens, faults, traffic), and back"),
    ("Backspace", "back to the previous scope"),
    ("s", "sort by the next column"),
    ("S", "reverse the sort"),
    ("click a column header", "sort by it; click again to reverse"),
    ("p", "pause the display (collection goes on); again to resume with the latest"),
    ("[ / ]", "one interval back / forward in time (the last hour is kept); every pane shows that moment"),
    ("{ / }", "a minute back / forward in time"),
    ("l", "back to live"),
    ("?", "this help"),
    ("q / Ctrl+C", "quit (every probe is detached)"),
)


class HelpScreen(ModalScreen):
    BINDINGS = [
        Binding("escape,q,question_mark", "dismiss", "Close"),
    ]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > Vertical { width: 90; max-width: 100%; height: auto; max-height: 100%; border: round $accent; padding: 0 1; background: $surface; }
    HelpScreen Static { width: 100%; height: auto; }
    """

    def compose(self) -> ComposeResult:
        table = Table(box=None, show_header=False, padding=(0, 2))
        table.add_column(style="bold cyan", no_wrap=True)
        table.add_column()
        for key, what in KEYS:
            table.add_row(key, what)
        with Vertical():
            yield Static(Text("ebpftop keys", style="bold"))
            yield Static(table)
            yield Static(Text("Esc, q or ? closes this help", style="dim"))

    def action_dismiss(self) -> None:
        self.dismiss()
