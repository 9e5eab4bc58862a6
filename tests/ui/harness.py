"""Builds the app on a recording or on hand-built snapshots, with polling
driven by the test (no timers, no threads racing the assertions)."""

from __future__ import annotations

from pathlib import Path

from ebpftop.app import EbpftopApp
from ebpftop.filters import Filter
from ebpftop.sources.replay import ReplaySource

RECORDING = Path(__file__).parent / "data" / "recording.jsonl"
SIZE = (120, 36)


class ListSource:
    """A source that hands out the given snapshots, one per poll."""

    def __init__(self, snapshots, interval_s: float = 5.0):
        self.snapshots = list(snapshots)
        self.interval_s = interval_s

    def start(self):
        return dict(self.snapshots[0].status)

    def poll(self):
        return self.snapshots.pop(0) if self.snapshots else None

    def close(self):
        pass


def replay_app(path: Path = RECORDING, flt: Filter = Filter()) -> EbpftopApp:
    return EbpftopApp(ReplaySource(path), flt=flt, auto_poll=False, clock=lambda: 0.0)


async def feed(app: EbpftopApp, pilot, polls: int = 1) -> None:
    """Wait for the source to start, then take ``polls`` snapshots in."""
    for _ in range(100):
        if app.started:
            break
        await pilot.pause(0.01)
    for _ in range(polls):
        app.accept_snapshot(app.source.poll())
    await pilot.pause()
