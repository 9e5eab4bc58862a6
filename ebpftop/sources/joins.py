"""What the live source carries from one poll to the next, for every set:
per-interval differences of counters the kernel only adds to (loss
counters, BPF run-time statistics), and the runs the kernel skipped charged
as losses.  (A set's own joins live in its module: ebpftop/sets/.)  No
``bcc``: plain values, unit-tested alone."""

from __future__ import annotations


class Deltas:
    """What each of a set of ever-growing counters added since the last call.
    A counter is an int or a tuple of ints (a program's run time and runs)."""

    def __init__(self, first: dict | None = None):
        self.seen: dict = dict(first or {})

    def step(self, now: dict) -> dict:
        out = {}
        for k, v in now.items():
            before = self.seen.get(k)
            if before is None:
                out[k] = v
            elif isinstance(v, tuple):
                out[k] = tuple(a - b for a, b in zip(v, before))
            else:
                out[k] = v - before
        self.seen = dict(now)
        return out


def skipped_by_set(misses: dict[str, int], owners: dict[str, tuple[str, ...]]) -> dict[str, int]:
    """The runs the kernel skipped (program -> misses in the interval), each
    charged to every set the program serves: a skipped run is an event not
    counted.  Kept apart from the sets' losses: a loss says a map or ring of
    ebpftop's was too small, a skip that another BPF program was running on
    that CPU (a wakeup from an interrupt that came during a classic
    tracepoint's program), which no size changes."""
    out: dict[str, int] = {}
    for prog, n in misses.items():
        for name in owners.get(prog, ()) if n else ():
            out[name] = out.get(name, 0) + n
    return out
