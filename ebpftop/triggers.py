"""--trigger: thresholds on a snapshot's figures that start a flight
recording (sources/flight.py).  The grammar, one expression per --trigger:

    NAME OP VALUE        read_p99>10ms   file_open_errors>=100   syscalls_per_s>1e6

NAME is one of FIGURES; OP one of > >= < <=; VALUE a number, with a unit
(ns, us, µs, ms, s) for the latencies.  Spaces are allowed around OP.
Pure: no I/O."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from ebpftop.model import Snapshot


def _per_s(n: int, s: Snapshot) -> float:
    return n / s.interval_s


def _pct(lat, p: float) -> float:
    return float(lat.total.percentile(p) or 0)


# name -> (what it is, its value in a snapshot, whether it is a duration in ns)
FIGURES: dict[str, tuple[str, Callable[[Snapshot], float], bool]] = {
    "read_p50": ("read() p50 latency", lambda s: _pct(s.read_latency, 50), True),
    "read_p90": ("read() p90 latency", lambda s: _pct(s.read_latency, 90), True),
    "read_p99": ("read() p99 latency", lambda s: _pct(s.read_latency, 99), True),
    "write_p50": ("write() p50 latency", lambda s: _pct(s.write_latency, 50), True),
    "write_p90": ("write() p90 latency", lambda s: _pct(s.write_latency, 90), True),
    "write_p99": ("write() p99 latency", lambda s: _pct(s.write_latency, 99), True),
    "syscalls_per_s": ("syscalls per second", lambda s: _per_s(sum(r.count for r in s.syscalls), s), False),
    "file_opens_per_s": ("opens per second", lambda s: _per_s(sum(r.count for r in s.file_opens), s), False),
    "page_faults_per_s": ("page faults per second", lambda s: _per_s(sum(r.count for r in s.page_faults), s), False),
    "file_open_errors": ("failed opens in the interval", lambda s: float(sum(r.errors for r in s.file_opens)), False),
    "tcp_new": ("new TCP connections in the interval", lambda s: float(len(s.tcp)), False),
    "tcp_resets_unowned": ("resets sent for no socket in the interval", lambda s: float(s.tcp_resets_unowned), False),
    "lost": ("events lost in the interval", lambda s: float(sum(s.lost.values())), False),
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
        return _OPS[self.op](float(FIGURES[self.name][1](snap)), self.threshold)


def parse(text: str) -> Trigger:
    """ValueError (one line, naming what is wrong) for a bad expression."""
    m = _EXPR.match(text)
    if not m:
        raise ValueError(f"--trigger {text!r}: write NAME OP VALUE, e.g. read_p99>10ms or file_open_errors>=100")
    name, op, number, unit = m.groups()
    if name not in FIGURES:
        raise ValueError(f"--trigger {text!r}: unknown figure {name!r}; choose from {', '.join(FIGURES)}")
    is_duration = FIGURES[name][2]
    if unit and not is_duration:
        raise ValueError(f"--trigger {text!r}: {name} is a count, it takes no unit")
    value = float(number) * (_UNITS[unit or "ns"] if is_duration else 1)
    if not value <= MAX_THRESHOLD:  # 1e309 is infinite: a threshold no figure reaches, the trigger silently dead
        raise ValueError(f"--trigger {text!r}: {number}{unit or ''} is out of range (at most {MAX_THRESHOLD:.4g}"
                         f"{' ns' if is_duration else ''})")
    return Trigger(text=text.strip(), name=name, op=op, threshold=value)
