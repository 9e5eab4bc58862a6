"""Text renderings shared by the TUI and tests: bpftrace-style histograms,
human-readable durations and counts.  Pure functions of the model."""

from __future__ import annotations

from ebpftop.model import Histogram

_UNITS = ((1 << 30, "G"), (1 << 20, "M"), (1 << 10, "K"))


def power_of_two_label(n: int) -> str:
    """bpftrace's bucket bound labels: 512, 1K, 2K ... 1M, 1G."""
    for size, unit in _UNITS:
        if n >= size and n % size == 0:
            return f"{n // size}{unit}"
    return str(n)


def duration(ns: int | None) -> str:
    if ns is None:
        return "-"
    if ns < 1_000:
        return f"{ns} ns"
    if ns < 1_000_000:
        return f"{ns / 1e3:.1f} µs"
    if ns < 1_000_000_000:
        return f"{ns / 1e6:.1f} ms"
    return f"{ns / 1e9:.2f} s"


def histogram_lines(hist: Histogram, bar_width: int = 40) -> list[str]:
    """As bpftrace prints hist(): '[1K, 2K)     12 |@@@@@@@@     |', with the
    empty buckets between the first and last non-empty ones shown too."""
    if not hist.buckets:
        return []
    by_low = {b.low_ns: b for b in hist.buckets}
    lows = []
    low = hist.buckets[0].low_ns
    last = hist.buckets[-1].low_ns
    while True:
        lows.append(low)
        if low >= last:
            break
        low = 1 if low == 0 else low * 2
    peak = max(b.count for b in hist.buckets)
    labels = []
    for lo in lows:
        hi = by_low[lo].high_ns if lo in by_low else (1 if lo == 0 else lo * 2)
        labels.append(f"[{power_of_two_label(lo)}, {power_of_two_label(hi)})")
    label_w = max(len(s) for s in labels)
    count_w = max(len(str(b.count)) for b in hist.buckets)
    lines = []
    for lo, label in zip(lows, labels):
        n = by_low[lo].count if lo in by_low else 0
        bar = "@" * (round(n * bar_width / peak) if peak else 0)
        lines.append(f"{label:<{label_w}} {n:>{count_w}} |{bar:<{bar_width}}|")
    return lines


def count(n: int) -> str:
    """12345 -> '12,345'."""
    return f"{n:,}"


def byte_size(n: int) -> str:
    """1536 -> '1.5 KiB'; below 1 KiB exact: '861 B'."""
    if n < 1024:
        return f"{n} B"
    for size, unit in _UNITS:
        if n >= size:
            return f"{n / size:.1f} {unit}iB"
    return f"{n} B"
