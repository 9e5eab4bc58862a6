"""read() and write() latency (bpf/read_latency.c): a log2 histogram of each
call's duration per process, two series of one keyed histogram family."""

from __future__ import annotations

from ebpftop import cdefs
from ebpftop.render import duration
from ebpftop.sets.base import Collector, Figure, Headline, HistogramFamily, Histograms, ProbeSet, hist_parts

READ = Histograms("read_latency", series=cdefs.OP_READ)
WRITE = Histograms("write_latency", series=cdefs.OP_WRITE)


class LatencyCollector(Collector):
    def collect(self, ctx) -> dict:
        # sampled: the mask set at the last poll (each call counted as its entry's mask said)
        return hist_parts(self.kernel, "latency_hist", (READ, WRITE), ctx.sampled_1_in)


def _percentile(part: str, p: float):
    return lambda s: float(getattr(s, part).total.percentile(p) or 0)


def _p50_text(part: str):
    return lambda s: f"p50 {duration(getattr(s, part).total.percentile(50))}"


SET = ProbeSet(
    name="read_latency", c_file="read_latency.c", title="read() and write() latency histograms",
    parts=(READ, WRITE),
    collector=LatencyCollector,
    tracepoints=("syscalls/sys_enter_read", "syscalls/sys_exit_read",
                 "syscalls/sys_enter_write", "syscalls/sys_exit_write"),
    fields={"syscalls/sys_exit_read": (), "syscalls/sys_exit_write": ()},
    map_sizes={"READ_LATENCY_MAP_SIZE": 16384},
    shared_hooks=("raw_syscalls/sys_enter",),
    sample_mask="latency_sample_mask",
    histograms=(
        HistogramFamily("ebpftop_read_latency_seconds", "read() latency, all processes.", (),
                        lambda s: {(): s.read_latency.total}),
        HistogramFamily("ebpftop_write_latency_seconds", "write() latency, all processes.", (),
                        lambda s: {(): s.write_latency.total}),
        HistogramFamily("ebpftop_read_latency_by_comm_seconds", "read() latency by process name.", ("comm",),
                        lambda s: {(comm,): h for comm, h in s.read_latency.by_comm().items()}),
    ),
    headlines={
        "read_p99": Headline("read() p99", _percentile("read_latency", 99), lambda v: duration(round(v)),
                             _p50_text("read_latency")),
        "write_p99": Headline("write() p99", _percentile("write_latency", 99), lambda v: duration(round(v)),
                              _p50_text("write_latency")),
    },
    figures={
        **{f"{op}_p{p}": Figure(f"{op}() p{p} latency", _percentile(f"{op}_latency", p), is_duration=True)
           for op in ("read", "write") for p in (50, 90, 99)},
    },
)
