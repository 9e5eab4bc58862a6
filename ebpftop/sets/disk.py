"""Disk I/O (bpf/disk.c): per process and device (biotop), per device a
log2 latency histogram split into time queued and time on the device
(biolatency), and each I/O slower than a threshold (biosnoop).

I/O is charged to the thread that submitted it (bpf/disk.c says where each
hook runs): buffered writes to the writeback kworker, the journal to jbd2,
a loop device's backing-file I/O to the loop's worker, as biotop does.  A
kworker's rows are split by the work function it was running (wb_workfn,
loop_rootcg_workfn...): its name says nothing of what it did.
"""

from __future__ import annotations

import ctypes
import platform
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from ebpftop import cdefs
from ebpftop.aggregate import busiest_first, decode_c_string
from ebpftop.capabilities import version_tuple
from ebpftop.model import Histogram, iso_time, parse_iso_time
from ebpftop.render import byte_size, duration
from ebpftop.sets.base import (
    Collector,
    Count,
    CounterFamily,
    Figure,
    Headline,
    HistogramFamily,
    HostRows,
    ProbeSet,
    Rows,
    as_int,
    by_label,
    container_labels,
    event_of,
    per_s,
    wall_time,
)

OPS = ("read", "write", "discard", "flush", "other")  # DISK_OP_* in C, in this order
CONSTANTS = {
    **{f"DISK_OP_{op.upper()}": i for i, op in enumerate(OPS)},
    "DISK_HIST_SLOTS": 40, "DISK_HIST_TOTAL": 0, "DISK_HIST_QUEUED": 1, "DISK_HIST_DEVICE": 2,
    "DISK_STAT_UNPAIRED": 0, "DISK_STAT_OVERWRITTEN": 1, "DISK_STAT_UNMATCHED": 2, "DISK_STAT_SLOTS": 3,
    # the two halves of a start run back to back in one tracepoint call, with
    # preemption off, though an interrupt (or the hypervisor) may come between
    # them: 20 µs paired all but 2 of 384 I/Os here.  A half older than this
    # lost its other half (bpf/disk.c)
    "DISK_PAIR_WINDOW_NS": 10_000_000,
}
HIST_SLOTS = CONSTANTS["DISK_HIST_SLOTS"]
DEFAULT_SLOW_MS = 10.0
MAX_SLOW_KEPT = 2000  # slow I/Os the TUI keeps
MINORBITS = 20  # include/linux/kdev_t.h; read from the format file where it says (kernel_constants)
SYS_ROOT = "/sys"


def rq_arg(release: str) -> int:
    """Which raw argument of block_rq_issue and block_rq_merge is the
    request: before Linux 5.11 they were (q, rq), since (rq) (kernel commit
    a54895fa).  block_rq_complete's has been rq first throughout."""
    return 1 if version_tuple(release) < (5, 11) else 0


def minorbits(format_of: Callable[[str], str], release: str | None = None) -> dict:
    """How the block tracepoints encode dev_t: their print fmt splits it as
    ((REC->dev) >> N) and ((REC->dev) & ((1U << N) - 1)); and where the
    raw tracepoints pass the request (rq_arg)."""
    m = re.search(r"\(REC->dev\)\s*>>\s*(\d+)", format_of("block/block_rq_complete"))
    return {"DISK_MINORBITS": int(m.group(1)) if m else MINORBITS,
            "DISK_RQ_ARG": rq_arg(platform.release() if release is None else release)}


class DeviceNames:
    """(major, minor) -> the name the user knows the device by (vda,
    nvme0n1, loop3: /sys/dev/block/MAJ:MIN/uevent's DEVNAME), cached: a
    device detached before its interval was read keeps its name."""

    def __init__(self, sys_root: str = SYS_ROOT):
        self.sys_root = sys_root
        self._names: dict[tuple[int, int], str] = {}

    def __call__(self, major: int, minor: int) -> str:
        name = self._names.get((major, minor))
        if name is not None:
            return name
        name = f"{major}:{minor}"
        try:
            with open(f"{self.sys_root}/dev/block/{major}:{minor}/uevent") as f:
                for line in f:
                    if line.startswith("DEVNAME="):
                        name = line[len("DEVNAME="):].strip() or name
        except OSError:
            pass
        if ":" not in name or (major, minor) == (0, 0):  # an unnamed one may get its uevent later
            if len(self._names) > 4096:
                self._names.clear()
            self._names[(major, minor)] = name
        return name


class DiskIO(NamedTuple):
    """A process's I/O to one device, of one kind, in the interval."""

    pid: int
    comm: str
    device: str
    op: str  # read, write, discard, flush, other
    ops: int
    bytes: int
    latency_ns: int  # the sum, start to completion: / ops is the average
    errors: int
    work: str = ""  # a kworker's: the work function it did the I/O for (wb_workfn)
    cgroup: int = 0  # cgroup v2 id (0: unknown); Snapshot.containers says what it is

    @property
    def avg_ns(self) -> int:
        return self.latency_ns // self.ops if self.ops else 0

    def to_dict(self) -> dict:
        return self._asdict()

    @classmethod
    def from_dict(cls, d: dict) -> DiskIO:
        return cls(pid=int(d["pid"]), comm=str(d["comm"]), device=str(d["device"]), op=str(d["op"]),
                   ops=int(d["ops"]), bytes=int(d["bytes"]), latency_ns=int(d["latency_ns"]),
                   errors=int(d.get("errors", 0)), work=str(d.get("work", "")), cgroup=int(d.get("cgroup", 0)))


class DeviceIO(NamedTuple):
    """One device's I/O of one kind in the interval: its latency, and the
    parts of it queued (start to issue) and on the device (issue to
    completion), where the kernel gives both."""

    device: str
    op: str
    ops: int
    bytes: int
    latency: Histogram
    queued: Histogram
    on_device: Histogram

    def to_dict(self) -> dict:
        return {"device": self.device, "op": self.op, "ops": self.ops, "bytes": self.bytes,
                "latency": self.latency.to_dict(), "queued": self.queued.to_dict(),
                "on_device": self.on_device.to_dict()}

    @classmethod
    def from_dict(cls, d: dict) -> DeviceIO:
        return cls(device=str(d["device"]), op=str(d["op"]), ops=int(d["ops"]), bytes=int(d["bytes"]),
                   latency=Histogram.from_dict(d["latency"]), queued=Histogram.from_dict(d["queued"]),
                   on_device=Histogram.from_dict(d["on_device"]))


class SlowIO(NamedTuple):
    """One I/O at or over the slow-I/O threshold (biosnoop)."""

    time: float  # its completion
    pid: int
    tid: int
    comm: str
    device: str
    op: str
    sector: int
    bytes: int
    latency_ns: int
    queued_ns: int  # of which queued (start to issue); 0 where the issue was not seen
    error: int  # blk_status_t: 0 ok
    work: str = ""
    cgroup: int = 0

    def to_dict(self) -> dict:
        d = self._asdict()
        d["time"] = iso_time(self.time)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> SlowIO:
        return cls(time=parse_iso_time(d["time"]), pid=int(d["pid"]), tid=int(d.get("tid", 0)), comm=str(d["comm"]),
                   device=str(d["device"]), op=str(d["op"]), sector=int(d["sector"]), bytes=int(d["bytes"]),
                   latency_ns=int(d["latency_ns"]), queued_ns=int(d.get("queued_ns", 0)),
                   error=int(d.get("error", 0)), work=str(d.get("work", "")), cgroup=int(d.get("cgroup", 0)))


@dataclass(frozen=True)
class DeviceRows(HostRows):
    """Each device's I/O: the host's, never filtered by process or grouped;
    its histograms in their JSON form."""

    row: type = DeviceIO

    def to_json(self, value, containers):
        return [r.to_dict() for r in value]

    def from_json(self, data):
        if not isinstance(data, list):
            raise TypeError(f"{self.name} must be a list")
        return tuple(DeviceIO.from_dict(d) for d in data)


def grouped(rows, label) -> tuple[DiskIO, ...]:
    """Per container, device and kind: its processes' I/O summed (pid 0)."""
    groups: dict[tuple, list] = {}
    for r in rows:
        g = groups.setdefault((label(r), r.device, r.op), [0, 0, 0, 0, r.cgroup])
        g[0] += r.ops
        g[1] += r.bytes
        g[2] += r.latency_ns
        g[3] += r.errors
    return busiest_first([DiskIO(0, name, dev, op, n, b, lat, err, cgroup=cg)
                          for (name, dev, op), (n, b, lat, err, cg) in groups.items()], 5,
                         lambda r: (r.comm, r.device, r.op))


def by_device(rows) -> dict[tuple[str, str], tuple[int, int]]:
    """(device, op) -> (ops, bytes), summed over the processes."""
    out: dict[tuple[str, str], list] = {}
    for r in rows:
        t = out.setdefault((r.device, r.op), [0, 0])
        t[0] += r.ops
        t[1] += r.bytes
    return {k: (v[0], v[1]) for k, v in out.items()}


def histogram_of(slots, sum_ns: int) -> Histogram:
    return Histogram.from_log2_slots({k: n for k, n in enumerate(slots) if n}, sum_ns)


class SlowEventStruct(ctypes.Structure):
    """struct disk_slow_event of bpf/disk.c (the loader checks the layout as it compiles)."""

    _fields_ = [
        ("ts_ns", ctypes.c_uint64), ("latency_ns", ctypes.c_uint64), ("queued_ns", ctypes.c_uint64),
        ("sector", ctypes.c_uint64), ("cgroup", ctypes.c_uint64), ("work_fn", ctypes.c_uint64),
        ("tgid", ctypes.c_uint32), ("tid", ctypes.c_uint32), ("major", ctypes.c_uint32), ("minor", ctypes.c_uint32),
        ("bytes", ctypes.c_uint32), ("op", ctypes.c_uint32), ("error", ctypes.c_int32), ("pad", ctypes.c_uint32),
        ("comm", ctypes.c_char * cdefs.COMM_LEN),
    ]


PROC_KEY = ("cgroup", "work_fn", "tgid", "major", "minor", "op", "comm")
PROC_VALUE = ("ops", "bytes", "latency_ns", "errors")


def op_name(op: int) -> str:
    return OPS[op] if 0 <= op < len(OPS) else "other"


class DiskCollector(Collector):
    """options: "slow_io_ms" (the slow-I/O threshold; None: the default)."""

    rings = {"disk_slow": "on_slow"}

    def __init__(self, kernel, options):
        super().__init__(kernel, options)
        self.devices = DeviceNames()
        self.slow: list[SlowIO] = []  # since the last poll
        self._work_names: dict[int, str] = {}

    def start(self) -> None:
        self.symbols = self.kernel.symbolizer()
        ms = self.options.get("slow_io_ms")
        self.set_slow_threshold(DEFAULT_SLOW_MS if ms is None else ms)

    def set_slow_threshold(self, ms: float) -> None:
        """Each I/O of at least ms milliseconds is listed from now on (a key
        changes it while running)."""
        self.slow_ns = max(0, int(ms * 1e6))
        self.kernel.table("disk_slow_threshold")[ctypes.c_int(0)] = ctypes.c_uint64(self.slow_ns)

    def set_option(self, name: str, value) -> bool:
        if name != "slow_io_ms":
            return False
        self.set_slow_threshold(float(value))
        return True

    def work_name(self, fn: int) -> str:
        if not fn:
            return ""
        name = self._work_names.get(fn)
        if name is None:
            name = self.symbols.kernel(fn)
            if len(self._work_names) > 4096:
                self._work_names.clear()
            self._work_names[fn] = name
        return name

    def on_slow(self, data, _size) -> None:
        e = event_of(SlowEventStruct, data)
        self.slow.append(SlowIO(wall_time(e.ts_ns), e.tgid, e.tid, decode_c_string(e.comm),
                                self.devices(e.major, e.minor), op_name(e.op), e.sector, e.bytes, e.latency_ns,
                                e.queued_ns, e.error, self.work_name(e.work_fn), e.cgroup))

    def collect(self, ctx) -> dict:
        rows = []
        for (cgroup, work_fn, tgid, major, minor, op, comm), (ops, nbytes, latency_ns, errors) in \
                self.kernel.drain_percpu("disk_procs", PROC_KEY, PROC_VALUE):
            rows.append(DiskIO(tgid, decode_c_string(comm), self.devices(major, minor), op_name(op), ops, nbytes,
                               latency_ns, errors, self.work_name(work_fn), cgroup))
        totals = by_device(rows)
        devices = []
        for (major, minor, op), (slots, sums) in self.kernel.drain_percpu("disk_hists", ("major", "minor", "op"),
                                                                           ("slots", "sum_ns")):
            name, kind = self.devices(major, minor), op_name(op)
            ops, nbytes = totals.get((name, kind), (0, 0))
            devices.append(DeviceIO(name, kind, ops, nbytes,
                                    histogram_of(slots[0:HIST_SLOTS], sums[0]),
                                    histogram_of(slots[HIST_SLOTS:2 * HIST_SLOTS], sums[1]),
                                    histogram_of(slots[2 * HIST_SLOTS:], sums[2])))
        devices.sort(key=lambda d: (-d.ops, d.device, d.op))
        slow, self.slow = self.slow, []
        slow.sort(key=lambda s: s.time, reverse=True)
        return {"disk_io": busiest_first(rows, 5, lambda r: (r.comm, r.device, r.op)),
                "disk_devices": tuple(devices), "disk_slow": tuple(slow), "disk_slow_ns": self.slow_ns}

    def stats(self) -> dict[str, int]:
        """What did not go as planned, since the start (the tests read it)."""
        table = self.kernel.table("disk_stats")
        return {name: sum(as_int(n) for n in table[ctypes.c_int(CONSTANTS[f"DISK_STAT_{name.upper()}"])])
                for name in ("unpaired", "overwritten", "unmatched")}


def _bytes(s) -> int:
    return sum(d.bytes for d in s.disk_devices)


def _latency(s) -> Histogram:
    return Histogram.merge(d.latency for d in s.disk_devices)


def _p99(s) -> float:
    return float(_latency(s).percentile(99) or 0)


SET = ProbeSet(
    name="disk", c_file="disk.c", title="disk I/O per process and device, latency, slow I/O (block tracepoints)",
    parts=(
        Rows("disk_io", DiskIO, group=grouped),
        DeviceRows("disk_devices"),
        Rows("disk_slow", SlowIO, kept=MAX_SLOW_KEPT),
        Count("disk_slow_ns"),  # the slow-I/O threshold the interval was read with
    ),
    collector=DiskCollector,
    tracepoints=("block/block_rq_issue", "block/block_rq_complete", "block/block_rq_merge",
                 "workqueue/workqueue_execute_start"),
    fields={"block/block_rq_issue": ("dev", "sector", "rwbs"),
            "workqueue/workqueue_execute_start": ("function",)},
    map_sizes={"DISK_INFLIGHT_MAP_SIZE": 8192, "DISK_PROC_MAP_SIZE": 4096, "DISK_HIST_MAP_SIZE": 256,
               "DISK_SLOW_RING_PAGES": 16},  # 64 KiB: about 580 slow I/Os between two reads
    lost_counters=("disk", "disk_slow"),
    constants=CONSTANTS,
    kernel_constants=minorbits,
    layouts={"disk_slow_event": SlowEventStruct},
    counters=(
        CounterFamily("ebpftop_disk_bytes", "Disk I/O bytes by process name and kind (read, write...), charged "
                      "to the thread that submitted it.", ("comm", "op"),
                      lambda s, _: by_label(((r.comm, r.op), r.bytes) for r in s.disk_io)),
        CounterFamily("ebpftop_disk_ops", "Disk I/O operations by process name and kind.", ("comm", "op"),
                      lambda s, _: by_label(((r.comm, r.op), r.ops) for r in s.disk_io)),
        CounterFamily("ebpftop_container_disk_bytes", "Disk I/O bytes by container.", ("container", "kind"),
                      lambda s, _: by_label((container_labels(s, r.cgroup), r.bytes) for r in s.disk_io)),
        CounterFamily("ebpftop_disk_device_bytes", "Disk I/O bytes by device and kind.", ("device", "op"),
                      lambda s, _: by_label(((d.device, d.op), d.bytes) for d in s.disk_devices)),
    ),
    histograms=(HistogramFamily("ebpftop_disk_latency_seconds", "Disk I/O latency (start to completion) by "
                                "device.", ("device",),
                                lambda s: {(dev,): Histogram.merge(d.latency for d in s.disk_devices
                                                                   if d.device == dev)
                                           for dev in {d.device for d in s.disk_devices}}),),
    headlines={"disk_bytes": Headline("disk", lambda s: per_s(_bytes(s), s), lambda v: f"{byte_size(round(v))}/s"),
               "disk_p99": Headline("disk p99", _p99, lambda v: duration(round(v)))},
    figures={"disk_bytes_per_s": Figure("disk bytes per second", lambda s: per_s(_bytes(s), s)),
             "disk_p99": Figure("disk I/O latency p99", _p99, is_duration=True)},
)
