"""--trigger: thresholds on a snapshot's figures that start a flight
recording (sources/flight.py).  The grammar, one expression per --trigger:

    NAME OP VALUE        read_p99>10ms   file_open_errors>=100   syscalls_per_s>1e6

NAME is one of FIGURES; OP one of > >= < <=; VALUE a number, with a unit
(ns, us, µs, ms, s) for the latencies.  Spaces are allowed around OP.
Pure: no I/O."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ebpftop import sets
from ebpftop.model import Snapshot
from ebpftop.sets.base import Figure

# name -> what it is, its value in a snapshot, whether it is a duration in ns:
# each probe set's figures (ebpftop/sets/), and the losses
FIGURES: dict[str, Figure] = {
    **sets.FIGURES,
    "lost": Figure("events lost in the interval", lambda s: float(sum(s.lost.values()))),
    "skipped": Figure("probe runs the kernel skipped in the interval", lambda s: float(sum(s.skipped.values()))),
}

# Every figure is counted in a u64 (the latencies in ns: 584 years)
MAX_THRESHOLD = float((1 << 64) - 1)
_UNITS = {"ns": 1, "us": 1e3, "µs": 1e3, "ms": 1e6, "s": 1e9}
_EXPR = re.compile(r"^\s*([a-z_0-9]+)\s*(>=|<=|>|<)\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*(ns|us|µs|ms|s)?\s*$")
_OPS = {">": float.__gt__, ">=": float.__ge__, "<": float.__lt__, "<=": float.__le__}


@dataclass(frozen=True)
class Trigger:
    text: str  # as given, for the recording's name and the notice
    name: str
    op: str
    threshold: float  # ns for the latencies

    def fires(self, snap: Snapshot) -> bool:
        return _OPS[self.op](float(FIGURES[self.name].value(snap)), self.threshold)


def parse(text: str) -> Trigger:
    """ValueError (one line, naming what is wrong) for a bad expression."""
    m = _EXPR.match(text)
    if not m:
        raise ValueError(f"--trigger {text!r}: write NAME OP VALUE, e.g. read_p99>10ms or file_open_errors>=100")
    name, op, number, unit = m.groups()
    if name not in FIGURES:
        raise ValueError(f"--trigger {text!r}: unknown figure {name!r}; choose from {', '.join(FIGURES)}")
    is_duration = FIGURES[name].is_duration
    if unit and not is_duration:
        raise ValueError(f"--trigger {text!r}: {name} is a count, it takes no unit")
    value = float(number) * (_UNITS[unit or "ns"] if is_duration else 1)
    if not value <= MAX_THRESHOLD:  # 1e309 is infinite: a threshold no figure reaches, the trigger silently dead
        raise ValueError(f"--trigger {text!r}: {number}{unit or ''} is out of range (at most {MAX_THRESHOLD:.4g}"
                         f"{' ns' if is_duration else ''})")
    return Trigger(text=text.strip(), name=name, op=op, threshold=value)
