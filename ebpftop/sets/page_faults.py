"""User page faults by process (bpf/page_faults.c): exceptions:page_fault_user,
or the perf software event page-faults where the kernel lacks it."""

from __future__ import annotations

from operator import itemgetter
from typing import NamedTuple

from ebpftop.aggregate import busiest_first, decode_c_string
from ebpftop.render import count
from ebpftop.sets.base import (
    PERF_COUNT_SW_PAGE_FAULTS,
    PERF_TYPE_SOFTWARE,
    Collector,
    CounterFamily,
    Figure,
    Headline,
    PerfEvent,
    ProbeSet,
    Rows,
    by_label,
    container_labels,
    per_s,
    thread_counts,
)
from ebpftop.sets.syscalls import THREAD_FOLD_FIELDS, THREAD_FOLD_HOOKS


class PageFaultRow(NamedTuple):
    comm: str
    pid: int
    count: int
    cgroup: int = 0  # cgroup v2 id (0: unknown); Snapshot.containers says what it is

    def to_dict(self) -> dict:
        return {"comm": self.comm, "pid": self.pid, "count": self.count, "cgroup": self.cgroup}

    @classmethod
    def from_dict(cls, d: dict) -> PageFaultRow:
        return cls(comm=str(d["comm"]), pid=int(d["pid"]), count=int(d["count"]), cgroup=int(d.get("cgroup", 0)))


def page_fault_rows(entries, decode=None) -> tuple[PageFaultRow, ...]:
    """(comm, pid, count, cgroup) entries into one row per process and
    cgroup; decode(comm) names a row when the entries hold the map's bytes."""
    totals: dict[tuple, int] = {}
    get = totals.get
    for comm, pid, n, cgroup in entries:
        key = (comm, pid, cgroup)
        totals[key] = get(key, 0) + n
    new = tuple.__new__  # PageFaultRow(...) without its Python-level __new__
    if decode is None:
        rows = [new(PageFaultRow, (c, p, n, cg)) for (c, p, cg), n in totals.items()]
    else:
        rows = [new(PageFaultRow, (decode(c), p, n, cg)) for (c, p, cg), n in totals.items()]
    return busiest_first(rows, 2, itemgetter(0, 1, 3))


def grouped(rows, label) -> tuple[PageFaultRow, ...]:
    faults: dict[str, list[int]] = {}
    for r in rows:
        faults.setdefault(label(r), [0, r.cgroup])[0] += r.count
    return tuple(sorted((PageFaultRow(name, 0, n, cgroup=cg) for name, (n, cg) in faults.items()),
                        key=lambda r: (-r.count, r.comm)))


class PageFaultsCollector(Collector):
    def collect(self, ctx) -> dict:
        return {"page_faults": page_fault_rows(thread_counts(self.kernel, "fault_counts", "fault_folded"),
                                               decode_c_string)}


def _total(s) -> int:
    return sum(r.count for r in s.page_faults)


SET = ProbeSet(
    name="page_faults", c_file="page_faults.c", title="user page faults by process",
    # the rows' counts since start, per (comm, pid): the view's SINCE START column
    parts=(Rows("page_faults", PageFaultRow, group=grouped, since_start=lambda r: ((r.comm, r.pid), r.count)),),
    collector=PageFaultsCollector,
    tracepoints=(),  # exceptions:page_fault_user, or the perf event (capabilities)
    fields=THREAD_FOLD_FIELDS,
    map_sizes={"PAGE_FAULTS_MAP_SIZE": 16384},
    shared_hooks=THREAD_FOLD_HOOKS,
    handlers={"thread_changed": "page_faults_fold"},
    # every fault (period 1), user mode only (page_faults.c), where the tracepoint is missing
    attach=(PerfEvent("page_fault_event", PERF_TYPE_SOFTWARE, PERF_COUNT_SW_PAGE_FAULTS,
                      "perf:page-faults (user mode)", period=1, user_only=True,
                      when=lambda caps: not caps.page_fault_tracepoint),),
    counters=(
        CounterFamily("ebpftop_page_faults", "User page faults by process name.", ("comm",),
                      lambda s, _: by_label(((r.comm,), r.count) for r in s.page_faults)),
        CounterFamily("ebpftop_container_page_faults", "User page faults by container.", ("container", "kind"),
                      lambda s, _: by_label((container_labels(s, r.cgroup), r.count) for r in s.page_faults)),
    ),
    headlines={"faults": Headline("page faults/s", lambda s: per_s(_total(s), s), lambda v: count(round(v)))},
    figures={"page_faults_per_s": Figure("page faults per second", lambda s: per_s(_total(s), s))},
)
