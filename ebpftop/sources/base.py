"""The interface every snapshot source offers (live probes or a recording)."""

from __future__ import annotations

from typing import Protocol

from ebpftop.model import Snapshot


class Source(Protocol):
    interval_s: float

    def start(self) -> dict[str, str]:
        """Make the source ready (compile and attach, open the file); slow.
        Returns each pane's status."""

    def poll(self) -> Snapshot | None:
        """The next snapshot; None when a recording has ended."""

    def drain_events(self) -> None:
        """Read event streams into the next snapshot now (between polls)."""

    def close(self) -> None:
        """Release everything; safe to call more than once."""
