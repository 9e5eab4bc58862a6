"""The tabs of the TUI, in the order of their keys: each a view (its own
module in ebpftop/panes/) and what the tab bar calls it."""

from __future__ import annotations

from dataclasses import dataclass

from ebpftop.panes.alerts import AlertsView
from ebpftop.panes.base import View
from ebpftop.panes.cpu import CpuView
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


# The first is where ebpftop opens: what a top is opened for first.
TABS: tuple[Tab, ...] = (
    Tab("cpu", "1", "CPU", CpuView),
    Tab("network", "2", "Network", NetworkView),
    Tab("syscalls", "3", "Syscalls", SyscallView),
    Tab("latency", "4", "Latency", LatencyView),
    Tab("file_opens", "5", "File opens", FileOpenView),
    Tab("page_faults", "6", "Page faults", PageFaultView),
    Tab("processes", "7", "Processes", ProcessesView),
    Tab("probes", "8", "Probes", ProbesView),
    Tab("alerts", "9", "Alerts", AlertsView),
)
