"""Headless mode: one JSON object per interval on stdout."""

from __future__ import annotations

import json
import sys
import time

from ebpftop import filters
from ebpftop.recording import Recorder


def run(source, flt: filters.Filter, count: int | None, recorder: Recorder | None, paced: bool = True) -> int:
    status = source.start()
    failed = {p: s for p, s in status.items() if s != "ok"}
    for pane, reason in failed.items():
        print(f"ebpftop: {pane}: {reason}", file=sys.stderr)
    if status and len(failed) == len(status):
        print("ebpftop: error: no probe could be started", file=sys.stderr)
        return 2
    emitted = 0
    deadline = time.monotonic() + source.interval_s
    while count is None or emitted < count:
        if paced:
            delay = deadline - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            deadline += source.interval_s
        snap = source.poll()
        if snap is None:  # a recording has ended
            break
        if recorder:
            recorder.write(snap)
        sys.stdout.write(json.dumps(filters.apply(snap, flt).to_dict(), separators=(",", ":")) + "\n")
        sys.stdout.flush()
        emitted += 1
    return 0
