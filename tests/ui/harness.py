"""Builds the app on a recording or on hand-built snapshots, with polling
driven by the test (no timers, no threads racing the assertions)."""

from __future__ import annotations

from pathlib import Path

from ebpftop.app import EbpftopApp
from ebpftop.filters import Filter
from ebpftop.panes.tabs import TABS
from ebpftop.sources.replay import ReplaySource

HERE = Path(__file__).parent
RECORDING = HERE / "data" / "recording.jsonl"
SIZE = (120, 36)
KEY = {t.id: t.key for t in TABS}  # tab id -> the key that shows it (the tests press these, not numbers)


class ListSource:
    """A live-like source (sources.base.Source) that hands out the given
    snapshots, one per poll, and their alerts through poll_alerts."""

    kind = "live"
    label = ""
    probe_stats = "off"

    def __init__(self, snapshots, interval_s: float = 5.0):
        self.snapshots = list(snapshots)
        self.interval_s = interval_s
        self.alerts_pending = []
        self.options: list = []  # set_option's calls

    def start(self):
        return dict(self.snapshots[0].status)

    def poll(self):
        if not self.snapshots:
            return None
        snap = self.snapshots.pop(0)
        from ebpftop import sets

        self.alerts_pending.extend(a for part in sets.STREAMED for a in getattr(snap, part))
        return snap

    def poll_alerts(self):
        out, self.alerts_pending = self.alerts_pending, []
        return out

    def drain_events(self):
        pass

    def set_option(self, name, value):
        self.options.append((name, value))
        return True

    def set_probe_stats(self, on):
        return self.probe_stats

    def close(self):
        pass


def replay_app(path: Path = RECORDING, flt: Filter = Filter()) -> EbpftopApp:
    return EbpftopApp(ReplaySource.from_file(path), flt=flt, auto_poll=False, clock=lambda: 0.0)


async def feed(app: EbpftopApp, pilot, polls: int = 1) -> None:
    """Wait for the source to start, then take ``polls`` snapshots in."""
    for _ in range(100):
        if app.started:
            break
        await pilot.pause(0.01)
    for _ in range(polls):
        app.accept_snapshot(app.source.poll())
        app.take_alerts(app.source.poll_alerts())  # what the app's alert timer does
    await pilot.pause()
