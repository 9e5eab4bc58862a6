"""The tabs of the TUI, in the order of their keys: each a view (its own
module in ebpftop/panes/) and what the tab bar calls it."""

from __future__ import annotations

from dataclasses import dataclass

from ebpftop.panes.alerts import AlertsView
from ebpftop.panes.base import View
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
