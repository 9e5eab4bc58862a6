"""The contract every snapshot source keeps: the live probes
(sources/live.py), a recording (sources/replay.py), a source that records
another (sources/recorded.py), and the tests' sources.  The app, the CLI,
headless mode and the exporter use a source only through this."""

from __future__ import annotations

from typing import Protocol

from ebpftop.model import Snapshot
from ebpftop.sets.file_opens import Alert


class Source(Protocol):
    kind: str  # "live" (probes in this kernel) or "replay" (snapshots made earlier)
    label: str  # what the status line names: "" live, a recording's file name
    interval_s: float  # between two polls
    probe_stats: str  # "ok", "off", or why BPF run-time statistics are unavailable

    def start(self) -> dict[str, str]:
        """Make the source ready (compile and attach, open the file); slow.
        Returns each probe set's status."""

    def poll(self) -> Snapshot | None:
        """The next snapshot; None when a recording has ended."""

    def poll_alerts(self) -> list[Alert]:
        """Alerts since the last call, oldest first: the TUI's only route for
        alerts (live, every half second; a recording's come with its
        snapshots).  Snapshots carry them too, for --json and recordings."""

    def drain_events(self) -> None:
        """Read event streams into the next snapshot now (between polls)."""

    def set_probe_stats(self, on: bool) -> str:
        """Turn the probes' run-time statistics on or off; the new state."""

    def set_option(self, name: str, value) -> bool:
        """Change a probe set's option while it runs (the Disk tab's slow-I/O
        threshold); False where nothing takes it (a recording)."""

    def close(self) -> None:
        """Release everything; safe to call more than once."""


class Wrapper:
    """A source that hands everything to another (inner) but what a subclass
    overrides: --record (sources/recorded.py), --flight-recorder
    (sources/flight.py)."""

    def __init__(self, inner):
        self.inner = inner
        self.kind = inner.kind
        self.label = inner.label

    @property
    def interval_s(self) -> float:
        return self.inner.interval_s

    @property
    def probe_stats(self) -> str:
        return self.inner.probe_stats

    def start(self) -> dict[str, str]:
        return self.inner.start()

    def poll(self) -> Snapshot | None:
        return self.inner.poll()

    def poll_alerts(self) -> list[Alert]:
        return self.inner.poll_alerts()

    def drain_events(self) -> None:
        self.inner.drain_events()

    def set_probe_stats(self, on: bool) -> str:
        return self.inner.set_probe_stats(on)

    def set_option(self, name: str, value) -> bool:
        return self.inner.set_option(name, value)

    def close(self) -> None:
        self.inner.close()
