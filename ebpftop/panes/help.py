"""The help screen: every key, read from the bindings themselves (the app's,
the tables', each tab's view's), so it cannot drift from what the keys do."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

# What is not a binding: the table's own moves, and the keys of the filter's input.
MOVES = (("↑ ↓ PgUp PgDn Home End", "move in the table"),)
FILTER_KEYS = (
    ("Enter (in the filter)", "keep the filter and return to the table"),
    ("Esc (in the filter)", "clear the filter"),
)

KEY_NAMES = {"question_mark": "?", "slash": "/", "left_square_bracket": "[", "right_square_bracket": "]",
             "left_curly_bracket": "{", "right_curly_bracket": "}", "backspace": "Backspace", "enter": "Enter",
             "tab": "Tab", "shift+tab": "Shift+Tab", "ctrl+c": "Ctrl+C", "escape": "Esc"}


def key_label(key: str) -> str:
    return " / ".join(KEY_NAMES.get(k, k) for k in key.split(","))


def help_rows(app_bindings, table_bindings, tabs) -> list[tuple[str, str]]:
    """(keys, what they do), the app's keys first, pairs of one action's keys
    on one line ([ / ] for back and forward)."""
    rows = [(" ".join(t.key for t in tabs), "show a tab: " + ", ".join(t.title for t in tabs))]
    seen: dict[str, int] = {}  # a description already listed -> its row
    for b in [*app_bindings, *table_bindings]:
        if b.action.startswith("show_tab"):
            continue
        what = b.tooltip or b.description
        if what in seen:  # another key for the same thing (q and Ctrl+C)
            i = seen[what]
            rows[i] = (f"{rows[i][0]} / {key_label(b.key)}", what)
            continue
        seen[what] = len(rows)
        rows.append((key_label(b.key), what))
    at = next((i + 1 for i, (k, _) in enumerate(rows) if k == "/"), len(rows))
    rows[at:at] = FILTER_KEYS  # the filter's own keys after the key that opens it
    rows[2:2] = MOVES
    for t in tabs:
        for b in t.view.BINDINGS:
            rows.append((key_label(b.key), f"{t.title} tab: {b.tooltip or b.description}"))
    return rows


class HelpScreen(ModalScreen):
    BINDINGS = [
        Binding("escape,q,question_mark", "dismiss", "Close"),
    ]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 90; max-width: 100%; height: auto; max-height: 100%; border: round $accent; padding: 0 1; background: $surface; }
    HelpScreen Static { width: 100%; height: auto; }
    """

    def __init__(self, rows: list[tuple[str, str]]):
        super().__init__()
        self.rows = rows

    def compose(self) -> ComposeResult:
        table = Table(box=None, show_header=False, padding=(0, 2))
        table.add_column(style="bold cyan", no_wrap=True)
        table.add_column()
        for key, what in self.rows:
            table.add_row(key, what)
        with VerticalScroll():  # taller than a small terminal: it scrolls
            yield Static(Text("ebpftop keys", style="bold"))
            yield Static(table)
            yield Static(Text("Esc, q or ? closes this help", style="dim"))

    def action_dismiss(self) -> None:
        self.dismiss()
