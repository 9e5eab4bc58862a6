"""OOM kills (bpf/oom.c): each victim of the kernel's OOM killer, with its
name, container and the memory figures the tracepoint gives, and who
triggered it; an alert (a toast, the Alerts tab) and a process event (the
Processes tab)."""

from __future__ import annotations

import ctypes
import time
from collections import deque
from collections.abc import Callable
from typing import NamedTuple

from ebpftop import cdefs
from ebpftop.aggregate import decode_c_string
from ebpftop.capabilities import format_fields
from ebpftop.model import iso_time, parse_iso_time
from ebpftop.render import byte_size
from ebpftop.sets.base import (
    Collector,
    CounterFamily,
    Figure,
    ProbeSet,
    Rows,
    by_label,
    container_labels,
    event_of,
    wall_time,
)

CONSTANTS = {"OOM_MARK": 0, "OOM_EXIT": 1}
# mark_victim's fields beyond pid (Linux 6.8 has them all): -DOOM_HAVE_<FIELD> for those this kernel has
FIELDS = ("comm", "total_vm", "anon_rss", "file_rss", "shmem_rss", "uid", "pgtables", "oom_score_adj")
MAX_KEPT = 1000
JOIN_WAIT_NS = 3_000_000_000  # a victim's exit comes in milliseconds; a mark without it after this is shown as is


def oom_fields(format_of: Callable[[str], str]) -> dict:
    have = format_fields(format_of("oom/mark_victim"))
    return {f"OOM_HAVE_{f.upper()}": 1 for f in FIELDS if f in have}


class OomKill(NamedTuple):
    """A process the OOM killer killed."""

    time: float
    pid: int
    comm: str
    uid: int
    total_vm_kb: int  # the figures mark_victim gives (Linux 6.8; 0 before)
    anon_rss_kb: int
    file_rss_kb: int
    shmem_rss_kb: int
    pgtables_kb: int
    oom_score_adj: int
    trigger_pid: int  # the process whose allocation failed (often the victim itself)
    trigger_comm: str
    cgroup: int = 0  # the victim's cgroup v2 id (0: unknown); Snapshot.containers says what it is

    # what it is as an alert (the app's toast, the Alerts tab)
    PART = "oom_kills"
    ALERT_TITLE = "OOM kill"

    @property
    def ppid(self) -> int:
        return 0

    @property
    def alert_what(self) -> str:
        return "killed by the OOM killer"

    @property
    def alert_detail(self) -> str:
        parts = []
        if self.anon_rss_kb or self.total_vm_kb:
            parts.append(f"anon-rss {byte_size(self.anon_rss_kb * 1024)}, file-rss {byte_size(self.file_rss_kb * 1024)}"
                         f", shmem-rss {byte_size(self.shmem_rss_kb * 1024)}, total-vm "
                         f"{byte_size(self.total_vm_kb * 1024)}, oom_score_adj {self.oom_score_adj}")
        if self.trigger_pid and self.trigger_pid != self.pid:
            parts.append(f"triggered by {self.trigger_comm} (pid {self.trigger_pid})")
        return "; ".join(parts)

    @property
    def alert_cause(self) -> str:
        """What set off a flight recording, in its notice."""
        return f"{self.comm} (pid {self.pid}) killed by the OOM killer"

    def alert_text(self) -> str:
        detail = self.alert_detail
        return f"the kernel killed {self.comm} (pid {self.pid}, uid {self.uid}): out of memory" + \
            (f"; {detail}" if detail else "")

    def to_dict(self) -> dict:
        d = self._asdict()
        d["time"] = iso_time(self.time)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> OomKill:
        return cls(time=parse_iso_time(d["time"]), pid=int(d["pid"]), comm=str(d["comm"]), uid=int(d.get("uid", 0)),
                   total_vm_kb=int(d.get("total_vm_kb", 0)), anon_rss_kb=int(d.get("anon_rss_kb", 0)),
                   file_rss_kb=int(d.get("file_rss_kb", 0)), shmem_rss_kb=int(d.get("shmem_rss_kb", 0)),
                   pgtables_kb=int(d.get("pgtables_kb", 0)), oom_score_adj=int(d.get("oom_score_adj", 0)),
                   trigger_pid=int(d.get("trigger_pid", 0)), trigger_comm=str(d.get("trigger_comm", "")),
                   cgroup=int(d.get("cgroup", 0)))


class OomEventStruct(ctypes.Structure):
    """struct oom_event of bpf/oom.c (the loader checks the layout as it compiles)."""

    _fields_ = [
        ("ts_ns", ctypes.c_uint64), ("cgroup", ctypes.c_uint64), ("total_vm", ctypes.c_uint64),
        ("anon_rss", ctypes.c_uint64), ("file_rss", ctypes.c_uint64), ("shmem_rss", ctypes.c_uint64),
        ("pgtables", ctypes.c_uint64), ("kind", ctypes.c_uint32), ("pid", ctypes.c_uint32),
        ("tgid", ctypes.c_uint32), ("uid", ctypes.c_uint32), ("oom_score_adj", ctypes.c_int32),
        ("trigger_pid", ctypes.c_uint32), ("comm", ctypes.c_char * cdefs.COMM_LEN),
        ("trigger_comm", ctypes.c_char * cdefs.COMM_LEN),
    ]


def kill_of(mark, exited) -> OomKill:
    """A kill from its mark (mark_victim) and its victim's exit, either of
    which may be missing (a full ring; a victim that has not exited yet)."""
    m, x = mark, exited
    comm = decode_c_string(x.comm) if x is not None else decode_c_string(m.comm) if m is not None else ""
    src = m if m is not None else x
    return OomKill(time=wall_time(src.ts_ns), pid=src.pid, comm=comm, uid=(x or m).uid,
                   total_vm_kb=m.total_vm if m else 0, anon_rss_kb=m.anon_rss if m else 0,
                   file_rss_kb=m.file_rss if m else 0, shmem_rss_kb=m.shmem_rss if m else 0,
                   pgtables_kb=m.pgtables if m else 0, oom_score_adj=m.oom_score_adj if m else 0,
                   trigger_pid=m.trigger_pid if m else 0, trigger_comm=decode_c_string(m.trigger_comm) if m else "",
                   cgroup=x.cgroup if x is not None else 0)


class OomCollector(Collector):
    rings = {"oom_events": "on_event"}

    def __init__(self, kernel, options):
        super().__init__(kernel, options)
        self.marks: dict[int, tuple[int, object]] = {}  # victim pid -> (when it came, its mark)
        self.interval: list[OomKill] = []  # for the next snapshot
        self.new: deque[OomKill] = deque(maxlen=MAX_KEPT)  # for take_alerts()
        # victims shown without their exit (it came after JOIN_WAIT_NS): their late exit is not another kill
        self.shown_early: dict[int, int] = {}

    def on_event(self, data, _size) -> None:
        e = event_of(OomEventStruct, data)
        if e.kind == CONSTANTS["OOM_MARK"]:
            self.marks[e.pid] = (time.monotonic_ns(), e)
            return
        if self.shown_early.pop(e.pid, None) is not None:
            return
        mark = self.marks.pop(e.pid, (0, None))[1]
        self._emit(kill_of(mark, e))

    def _emit(self, kill: OomKill) -> None:
        self.interval.append(kill)
        self.new.append(kill)

    def _flush(self) -> None:
        """Marks whose victim has not exited in JOIN_WAIT_NS: shown with what they have."""
        now = time.monotonic_ns()
        for pid, (came, mark) in list(self.marks.items()):
            if now - came > JOIN_WAIT_NS:
                del self.marks[pid]
                self._emit(kill_of(mark, None))
                if len(self.shown_early) >= MAX_KEPT:  # the oldest first (dicts keep their order)
                    del self.shown_early[next(iter(self.shown_early))]
                self.shown_early[pid] = now

    def take_alerts(self) -> list[OomKill]:
        self._flush()
        out = list(self.new)
        self.new.clear()
        return out

    def collect(self, ctx) -> dict:
        self._flush()
        kills, self.interval = self.interval, []
        return {"oom_kills": tuple(kills)}


SET = ProbeSet(
    name="oom", c_file="oom.c", title="OOM kills (oom:mark_victim)",
    parts=(
        # the TUI takes them from the source as they come (take_alerts), as the watched-file alerts
        Rows("oom_kills", OomKill, kept=MAX_KEPT, newest_first=False, streamed=True),
    ),
    collector=OomCollector,
    tracepoints=("oom/mark_victim",),
    fields={"oom/mark_victim": ("pid",)},
    map_sizes={"OOM_RING_PAGES": 4, "OOM_PENDING_MAP_SIZE": 1024},
    shared_hooks=("sched/sched_process_exit",),
    handlers={"thread_exit": "oom_on_exit"},
    constants=CONSTANTS,
    kernel_constants=oom_fields,
    layouts={"oom_event": OomEventStruct},
    counters=(
        CounterFamily("ebpftop_oom_kills", "Processes killed by the OOM killer, by container.", ("container", "kind"),
                      lambda s, _: by_label((container_labels(s, k.cgroup), 1) for k in s.oom_kills)),
    ),
    figures={"oom_kills": Figure("OOM kills in the interval", lambda s: float(len(s.oom_kills)))},
)
