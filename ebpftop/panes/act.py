"""The signal picker: which signal, to whom, confirmed before anything is
sent (act.py sends it, checked against the pid's reuse)."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from ebpftop.act import SIGNALS, Target
from ebpftop.text import visible

SIGNAL_HELP = {
    "TERM": "ask it to end (the default)", "KILL": "end it now; it cannot refuse", "INT": "as Ctrl-C",
    "HUP": "hang up (many daemons reload)", "QUIT": "end it with a core dump", "STOP": "pause it",
    "CONT": "resume it after STOP", "USR1": "user-defined", "USR2": "user-defined",
}


def whom(targets: list[Target], scope: str) -> str:
    """Who a signal will reach, as the picker says it."""
    if len(targets) == 1:
        t = targets[0]
        return f"pid {t.pid} ({visible(t.comm)})"
    return f"{len(targets)} processes of {scope}: pids " + ", ".join(str(t.pid) for t in targets[:8]) + (
        ", …" if len(targets) > 8 else "")


class SignalScreen(ModalScreen):
    """Returns the signal's name (TERM, KILL, ...) or None."""

    BINDINGS = [
        Binding("y", "confirm", "Send", tooltip="send the highlighted signal"),
        Binding("escape,n,q", "cancel", "Cancel"),
    ]
    DEFAULT_CSS = """
    SignalScreen { align: center middle; }
    SignalScreen > Vertical { width: 64; max-width: 100%; height: auto; max-height: 100%; border: round $error; padding: 0 1; background: $surface; }
    SignalScreen Static { width: 100%; height: auto; }
    SignalScreen OptionList { height: auto; max-height: 11; }
    """

    def __init__(self, targets: list[Target], scope: str):
        super().__init__()
        self.targets = targets
        self.scope = scope

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Text("Send a signal to " + whom(self.targets, self.scope), style="bold"), id="signal-whom")
            yield OptionList(*(Option(f"SIG{name:<5} {SIGNAL_HELP[name]}", id=name) for name in SIGNALS),
                             id="signal-list")
            yield Static(Text("Enter or y sends · Esc or n cancels · checked against pid reuse", style="dim"))

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        options.highlighted = 0  # SIGTERM
        options.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_confirm(self) -> None:
        options = self.query_one(OptionList)
        self.dismiss(SIGNALS[options.highlighted or 0])

    def action_cancel(self) -> None:
        self.dismiss(None)
