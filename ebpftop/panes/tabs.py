"""The tabs of the TUI, in the order of their keys: each a view (its own
module in ebpftop/panes/) and what the tab bar calls it."""

from __future__ import annotations

from dataclasses import dataclass

from ebpftop.panes.alerts import AlertsView
from ebpftop.panes.base import View
from ebpftop.panes.cpu import CpuView
from ebpftop.panes.disk import DiskView
from ebpftop.panes.file_opens import FileOpenView
from ebpftop.panes.latency import LatencyView
from ebpftop.panes.network import NetworkView
from ebpftop.panes.page_faults import PageFaultView
from ebpftop.panes.probes import ProbesView
from ebpftop.panes.processes import ProcessesView
from ebpftop.panes.syscalls import SyscallView


@dataclass(frozen=True)
class Tab:
    """One tab: its id (and its view's widget id, pane-ID), key and title,
    and the view that draws it."""

    id: str
    key: str
    title: str
    view: type[View]
    short: str = ""  # its label on a narrow terminal (TABS_FULL_WIDTH): every tab stays on the bar at 80 columns

    def label(self, narrow: bool) -> str:
        return f"{self.key} {self.short if narrow and self.short else self.title}"


# The first is where ebpftop opens: what a top is opened for first; the
# disk next, the question people bring after the CPU.
TABS: tuple[Tab, ...] = (
    Tab("cpu", "1", "CPU", CpuView),
    Tab("disk", "2", "Disk", DiskView),
    Tab("network", "3", "Network", NetworkView, "Net"),
    Tab("syscalls", "4", "Syscalls", SyscallView, "Sys"),
    Tab("latency", "5", "Latency", LatencyView, "Lat"),
    Tab("file_opens", "6", "File opens", FileOpenView, "Opens"),
    Tab("page_faults", "7", "Page faults", PageFaultView, "Faults"),
    Tab("processes", "8", "Processes", ProcessesView, "Procs"),
    Tab("probes", "9", "Probes", ProbesView),
    Tab("alerts", "0", "Alerts", AlertsView),
)

# The tab bar's width with the full labels (each label and a column either
# side): below it, the short labels, a column apart (73 columns in all).
TABS_FULL_WIDTH = sum(len(t.label(False)) + 2 for t in TABS)
