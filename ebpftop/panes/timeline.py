"""Each view's headline figure (declared by its probe set, sets/*.py) over
the kept snapshots (the TUI's rewind window), as a one-line strip with the
shown moment marked, and a latency over time as a heatmap.  Pure
functions: snapshots in, rich Text out (the views put it on screen)."""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Sequence

from rich.text import Text

from ebpftop.budget import is_shed
from ebpftop.model import Histogram, Snapshot
from ebpftop.render import count, duration
from ebpftop.sets import HEADLINES

BLOCKS = " ▁▂▃▄▅▆▇█"
NOT_MEASURED = math.nan  # the interval's probe set was detached (--max-cpu): a gap, not a 0
GAP = "·"


def measured(snap: Snapshot, probe_set: str) -> bool:
    """Whether the probe set counted in the snapshot's interval: it ran
    (a recording made before it existed, or without it, has no status for
    it) and --max-cpu had not detached it (an empty table then is not
    'nothing happened')."""
    status = snap.status.get(probe_set)
    return status is not None and not is_shed(status)


def window(n: int, shown: int, width: int) -> range:
    """The indexes of `width` consecutive snapshots out of n that hold the
    shown one: the newest ones, unless it is further back."""
    if n <= width:
        return range(n)
    start = max(0, min(n - width, shown - width // 2)) if shown < n - width else n - width
    return range(start, start + width)


def spark(values: Sequence[float], marked: int | None = None) -> Text:
    """One block character a value, scaled to the largest; the marked one
    (the moment shown) reversed."""
    peak = max((v for v in values if not math.isnan(v)), default=0.0)
    out = Text()
    for i, v in enumerate(values):
        if math.isnan(v):  # not measured
            out.append(GAP, style="reverse bold yellow" if i == marked else "dim")
            continue
        level = 0 if peak <= 0 else max(1 if v > 0 else 0, round(v / peak * (len(BLOCKS) - 1)))
        out.append(BLOCKS[level], style="reverse bold yellow" if i == marked else "cyan")
    return out


def cached(cache: dict, name: str, snapshots: Sequence[Snapshot]) -> Callable[[Snapshot], float]:
    """The headline's value of a kept snapshot, computed once: a redraw (each
    keystroke in the filter) computes only the snapshots it has not seen.
    Keyed by the snapshot object's id, so entries of snapshots no longer kept
    are dropped (an id can be reused once its object is gone)."""
    if len(cache) > 2 * len(snapshots) + 64:
        alive = {id(s) for s in snapshots}
        for key in [k for k in cache if k[1] not in alive]:
            del cache[key]

    def value(snap: Snapshot) -> float:
        key = (name, id(snap))
        v = cache.get(key)
        if v is None:
            probe_set, h = HEADLINES[name]
            v = cache[key] = h.value(snap) if measured(snap, probe_set) else NOT_MEASURED
        return v

    return value


def strip(name: str, snapshots: Sequence[Snapshot], shown_time: float, width: int,
          cache: dict | None = None) -> Text:
    """'syscalls/s ▁▂▅█▇▃ 12,345 (max 20,001) · 3 min kept': the headline
    over the kept snapshots, the shown moment marked."""
    _, h = HEADLINES[name]
    value = cached({} if cache is None else cache, name, snapshots)
    times = [s.time for s in snapshots]
    shown = min(bisect.bisect_left(times, shown_time), len(times) - 1) if times else 0
    label = Text(f"{h.label} ", style="bold")
    if not snapshots:
        return label
    idx = window(len(snapshots), shown, max(8, width - 44))
    vals = [value(snapshots[i]) for i in idx]
    marked = shown - idx.start if shown in idx else None
    kept_s = times[-1] - times[0] + snapshots[0].interval_s
    out = label + spark(vals, marked)
    now = value(snapshots[shown])
    if math.isnan(now):
        why = "not in this recording" if HEADLINES[name][0] not in snapshots[shown].status else "detached under --max-cpu"
        shown_text = f"not measured ({why})"
    else:
        detail = f", {h.detail(snapshots[shown])}" if h.detail else ""
        shown_text = h.text(now) + detail
    peak = max((v for v in vals if not math.isnan(v)), default=None)
    peak_text = f" (max {h.text(peak)})" if peak is not None else ""
    out.append(f" {shown_text}{peak_text} · {_span(kept_s)} kept", style="dim")
    return out


def _span(seconds: float) -> str:
    s = round(seconds)
    return f"{s} s" if s < 120 else f"{s // 60} min" if s < 7200 else f"{s // 3600} h"


def heatmap(snapshots: Sequence[Snapshot], shown_time: float, label: str, width: int,
            latency_of: Callable[[Snapshot], Histogram]) -> Text:
    """A latency (read(), say) over time: a row per log2 bucket (slowest on
    top), a column per kept snapshot, each cell's colour its count on a log
    scale; the scale and the shown moment (^) under it.  latency_of(snapshot)
    is the histogram of a kept snapshot."""
    get = latency_of
    times = [s.time for s in snapshots]
    if not snapshots:
        return Text(f"{label} latency over time: nothing kept yet", style="dim")
    shown = min(bisect.bisect_left(times, shown_time), len(times) - 1)
    idx = window(len(snapshots), shown, max(8, width - 14))
    columns = [{b.low_ns: b.count for b in get(snapshots[i]).buckets} for i in idx]
    lows = continuous_lows({low for col in columns for low in col})
    out = Text()
    out.append(f"{label} latency over time (a column per interval, {len(idx)} of {len(snapshots)} kept)\n", style="bold")
    if not lows:
        out.append(f"no {label} in the kept intervals", style="dim")
        return out
    peak = max(n for col in columns for n in col.values())
    for low in reversed(lows):
        out.append(f"{'≥ ' + duration(low):>11} ", style="dim")
        for col in columns:
            n = col.get(low, 0)
            out.append(" ", style=f"on {_heat(n, peak)}" if n else "")
        out.append("\n")
    marker = ["·"] * len(idx)
    if shown in idx:
        marker[shown - idx.start] = "^"
    out.append(f"{'shown':>11} ", style="dim")
    out.append("".join(marker) + "\n", style="bold yellow")
    out.append("count: ", style="dim")
    for k in range(8):
        out.append(" ", style=f"on {_heat(round(peak ** ((k + 1) / 8)), peak)}")
    out.append(f" 1 … {count(peak)} (log scale) · ^ the interval shown", style="dim")
    return out


def continuous_lows(lows: set[int]) -> list[int]:
    """The buckets' lower bounds from the lowest non-empty one to the
    highest, the empty ones between included (log2 buckets: each twice the
    last): an axis that skipped them would put 16 µs next to 1 ms."""
    nonzero = sorted(low for low in lows if low > 0)
    out = set(lows)
    if nonzero:
        low = nonzero[0]
        while low < nonzero[-1]:
            out.add(low)
            low *= 2
    return sorted(out)


def _heat(n: int, peak: int) -> str:
    """A colour from dark blue (1) to bright yellow (peak), on a log scale."""
    f = 0.0 if peak <= 1 else math.log(max(n, 1)) / math.log(peak)
    r, g, b = round(40 + 215 * f), round(20 + 200 * f), round(120 * (1 - f) + 20)
    return f"rgb({r},{g},{b})"


TREND_POINTS = 8  # the intervals a row's trend covers, up to the one shown


def row_trends(cache: dict, name: str, snapshots: Sequence[Snapshot], shown_time: float,
               rows_of: Callable[[Snapshot], dict]) -> dict:
    """key -> its counts over the last TREND_POINTS kept snapshots up to the
    shown one (0 where it had no row; NOT_MEASURED where the probe set NAME
    was detached).  rows_of(snapshot) -> {key: count}, computed once per
    kept snapshot."""
    times = [s.time for s in snapshots]
    if not times:
        return {}
    shown = min(bisect.bisect_left(times, shown_time), len(times) - 1)
    window = snapshots[max(0, shown - TREND_POINTS + 1):shown + 1]
    per_snapshot = []
    for snap in window:
        key = (name + "/rows", id(snap))
        rows = cache.get(key)
        if rows is None:
            rows = cache[key] = rows_of(snap) if measured(snap, name) else None
        per_snapshot.append(rows)
    keys = set().union(*(rows for rows in per_snapshot if rows is not None))
    return {k: [NOT_MEASURED if rows is None else rows.get(k, 0) for rows in per_snapshot] for k in keys}


def trend_text(values: Sequence[float] | None) -> Text:
    """A row's trend, when it changes much (by half its peak or more over at
    least three intervals); else nothing."""
    counted = [v for v in values or () if not math.isnan(v)]
    if len(counted) < 3:
        return Text("")
    peak, low = max(counted), min(counted)
    if peak <= 0 or peak - low < peak / 2:
        return Text("")
    return spark(values, marked=len(values) - 1)
