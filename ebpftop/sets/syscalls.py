"""Syscall counts by process name (bpf/syscalls.c): every syscall counted per
thread on raw_syscalls:sys_enter, a row per process name and cgroup with
its pids' counts."""

from __future__ import annotations

from collections import defaultdict
from operator import itemgetter
from typing import NamedTuple

from ebpftop import filters
from ebpftop.aggregate import busiest_first, decode_c_string
from ebpftop.render import count
from ebpftop.sets.base import (
    Collector,
    CounterFamily,
    Figure,
    Headline,
    ProbeSet,
    Rows,
    by_label,
    container_labels,
    per_s,
    thread_counts,
)

# Where lifecycle.c folds a thread's per-thread counters (syscalls, page
# faults): its name or its cgroup changes, or it exits.
THREAD_FOLD_HOOKS = ("task/task_rename", "sched/sched_process_exec", "sched/sched_process_exit",
                     "cgroup/cgroup_attach_task")
THREAD_FOLD_FIELDS = {"sched/sched_process_exec": ("pid", "old_pid"),  # lifecycle.c folds at exec
                      "cgroup/cgroup_attach_task": ("dst_root", "pid")}  # and when a thread changes cgroup


class SyscallRow(NamedTuple):
    comm: str
    count: int
    by_pid: tuple[tuple[int, int], ...]  # (pid, count), largest first
    cgroup: int = 0  # cgroup v2 id (0: unknown); Snapshot.containers says what it is

    @property
    def pids(self) -> int:
        return len(self.by_pid)

    def to_dict(self) -> dict:
        return {
            "comm": self.comm,
            "count": self.count,
            "pids": self.pids,
            "by_pid": {str(pid): n for pid, n in self.by_pid},
            "cgroup": self.cgroup,
        }

    @classmethod
    def from_dict(cls, d: dict) -> SyscallRow:
        by_pid = tuple((int(p), int(n)) for p, n in d.get("by_pid", {}).items())
        return cls(comm=str(d["comm"]), count=int(d["count"]), by_pid=by_pid, cgroup=int(d.get("cgroup", 0)))


def syscall_rows(entries, decode=None) -> tuple[SyscallRow, ...]:
    """(comm, pid, count, cgroup) entries -- several per pair are summed --
    into one row per comm and cgroup, largest count first; decode(comm)
    names a row when the entries hold the map's bytes."""
    per_comm: dict[tuple[str, int], dict[int, int]] = {}
    for comm, pid, n, cgroup in entries:
        pids = per_comm.get((comm, cgroup))
        if pids is None:
            per_comm[(comm, cgroup)] = {pid: n}
        else:
            pids[pid] = pids.get(pid, 0) + n
    new = tuple.__new__  # SyscallRow(...) without its Python-level __new__
    by_count = itemgetter(1)
    rows = []
    for (comm, cgroup), pids in per_comm.items():
        if len(pids) == 1:
            by_pid = tuple(pids.items())
        else:
            by_pid = sorted(pids.items())  # by pid, then (stable) by count: largest first, ties by pid
            by_pid.sort(key=by_count, reverse=True)
            by_pid = tuple(by_pid)
        rows.append(new(SyscallRow, (decode(comm) if decode else comm, sum(pids.values()), by_pid, cgroup)))
    return busiest_first(rows, 1, itemgetter(0, 3))


def matching(rows, f: filters.Filter, containers) -> tuple[SyscallRow, ...]:
    """By name and container; a pid scope keeps that pid's count of each row."""
    if not f.active:
        return tuple(rows)
    out = []
    for row in rows:
        c = containers.get(row.cgroup)
        if not (f.comm_matches(row.comm, c) and f.container_matches(c)):
            continue
        if f.pid is not None:
            by_pid = tuple(pc for pc in row.by_pid if pc[0] == f.pid)
            if not by_pid:
                continue
            row = row._replace(count=sum(n for _, n in by_pid), by_pid=by_pid)
        out.append(row)
    return tuple(out)


def grouped(rows, label) -> tuple[SyscallRow, ...]:
    groups: dict[str, list] = {}
    for r in rows:
        groups.setdefault(label(r), []).append(r)
    out = []
    for name, rs in groups.items():
        pids: dict[int, int] = defaultdict(int)
        for r in rs:
            for pid, n in r.by_pid:
                pids[pid] += n
        by_pid = tuple(sorted(pids.items(), key=lambda pc: (-pc[1], pc[0])))
        out.append(SyscallRow(name, sum(r.count for r in rs), by_pid, cgroup=rs[0].cgroup))
    out.sort(key=lambda r: (-r.count, r.comm))
    return tuple(out)


class SyscallsCollector(Collector):
    def collect(self, ctx) -> dict:
        return {"syscalls": syscall_rows(thread_counts(self.kernel, "syscall_counts", "syscall_folded"), decode_c_string)}


def _total(s) -> int:
    return sum(r.count for r in s.syscalls)


SET = ProbeSet(
    name="syscalls", c_file="syscalls.c", title="syscall counts by process",
    parts=(Rows("syscalls", SyscallRow, filter=matching, group=grouped,
                row_size=lambda r: 1 + len(r.by_pid)),),  # each pid's count is held too
    collector=SyscallsCollector,
    tracepoints=("raw_syscalls/sys_enter",),
    fields=THREAD_FOLD_FIELDS,
    map_sizes={"SYSCALLS_MAP_SIZE": 16384},
    shared_hooks=THREAD_FOLD_HOOKS + ("raw_syscalls/sys_enter",),
    handlers={"thread_changed": "syscalls_fold"},  # its counter goes under the name and cgroup it had
    counters=(
        CounterFamily("ebpftop_syscalls", "Syscalls by process name (raw_syscalls:sys_enter).", ("comm",),
                      lambda s, _: by_label(((r.comm,), r.count) for r in s.syscalls)),
        CounterFamily("ebpftop_container_syscalls", "Syscalls by container (host: in none).", ("container", "kind"),
                      lambda s, _: by_label((container_labels(s, r.cgroup), r.count) for r in s.syscalls)),
    ),
    headlines={"syscalls": Headline("syscalls/s", lambda s: per_s(_total(s), s), lambda v: count(round(v)))},
    figures={"syscalls_per_s": Figure("syscalls per second", lambda s: per_s(_total(s), s))},
)
