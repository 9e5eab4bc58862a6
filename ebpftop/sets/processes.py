"""Fork, exec and exit (bpf/processes.c): one event each, newest first."""

from __future__ import annotations

import ctypes
from typing import NamedTuple

from ebpftop import cdefs, filters
from ebpftop.aggregate import decode_c_string
from ebpftop.model import iso_time, parse_iso_time
from ebpftop.render import count
from ebpftop.sets.base import Collector, Headline, ProbeSet, Rows, event_of, wall_time

MAX_PROCESS_EVENTS = 2000  # the newest kept for the Processes tab


class ProcessEvent(NamedTuple):
    """A process was forked, exec'd a program, or exited."""

    time: float
    kind: str  # "fork", "exec" or "exit"
    pid: int
    ppid: int  # fork: the parent; exec and exit: the parent if ebpftop saw the fork, else 0
    comm: str
    filename: str = ""  # exec: the program
    args: tuple = ()  # exec: the first arguments (argv[0] first), each cut at 47 bytes
    exit_code: int | None = None  # exit: the code given to exit_group(); None if killed by a signal
    lifetime_s: float | None = None  # exit: since the fork, when ebpftop saw it
    cgroup: int = 0  # cgroup v2 id (0: unknown); Snapshot.containers says what it is

    def to_dict(self) -> dict:
        return {
            "time": iso_time(self.time),
            "kind": self.kind,
            "pid": self.pid,
            "ppid": self.ppid,
            "comm": self.comm,
            "filename": self.filename,
            "args": list(self.args),
            "exit_code": self.exit_code,
            "lifetime_s": self.lifetime_s,
            "cgroup": self.cgroup,
        }

    @classmethod
    def from_dict(cls, d: dict) -> ProcessEvent:
        return cls(
            time=parse_iso_time(d["time"]),
            kind=str(d["kind"]),
            pid=int(d["pid"]),
            ppid=int(d["ppid"]),
            comm=str(d["comm"]),
            filename=str(d.get("filename", "")),
            args=tuple(str(a) for a in d.get("args", [])),
            exit_code=None if d.get("exit_code") is None else int(d["exit_code"]),
            lifetime_s=None if d.get("lifetime_s") is None else float(d["lifetime_s"]),
            cgroup=int(d.get("cgroup", 0)),
        )


class ProcEventStruct(ctypes.Structure):
    """struct proc_event of bpf/processes.c (BCC cannot infer it: 2-D array)."""

    _fields_ = [
        ("ts_ns", ctypes.c_uint64),
        ("lifetime_ns", ctypes.c_uint64),
        ("cgroup", ctypes.c_uint64),
        ("kind", ctypes.c_uint32),
        ("pid", ctypes.c_uint32),
        ("ppid", ctypes.c_uint32),
        ("exit_code", ctypes.c_int32),
        ("has_code", ctypes.c_uint32),
        ("argc", ctypes.c_uint32),
        ("comm", ctypes.c_char * cdefs.COMM_LEN),
        ("filename", ctypes.c_char * cdefs.FILENAME_LEN),
        ("args", (ctypes.c_char * cdefs.ARG_LEN) * cdefs.EXEC_ARGS),
    ]


KINDS = {cdefs.PROC_FORK: "fork", cdefs.PROC_EXEC: "exec", cdefs.PROC_EXIT: "exit"}


def event_from(e: ProcEventStruct) -> ProcessEvent:
    kind = KINDS.get(e.kind, "?")
    return ProcessEvent(
        time=wall_time(e.ts_ns),
        kind=kind,
        pid=e.pid,
        ppid=e.ppid,
        comm=decode_c_string(e.comm),
        filename=decode_c_string(e.filename) if kind == "exec" else "",
        args=tuple(decode_c_string(bytes(e.args[i])) for i in range(min(e.argc, len(e.args)))),
        exit_code=e.exit_code if kind == "exit" and e.has_code else None,
        lifetime_s=e.lifetime_ns / 1e9 if kind == "exit" and e.lifetime_ns else None,
        cgroup=e.cgroup,
    )


class ProcessesCollector(Collector):
    rings = {"proc_events": "on_event"}

    def __init__(self, kernel, options):
        super().__init__(kernel, options)
        self._pending: list[ProcessEvent] = []

    def on_event(self, data, _size) -> None:
        self._pending.append(event_from(event_of(ProcEventStruct, data)))

    def collect(self, ctx) -> dict:
        # Newest first, by time: the ring buffer holds events in the order the
        # CPUs reserved their slots, which two CPUs' events a microsecond
        # apart can invert (a test saw it once in three runs).
        events, self._pending = sorted(self._pending, key=lambda e: e.time, reverse=True), []
        return {"processes": tuple(events)}


SET = ProbeSet(
    name="processes", c_file="processes.c", title="fork, exec and exit",
    # a log of events: never summed per container
    parts=(Rows("processes", ProcessEvent, filter=filters.by_process_or_parent, kept=MAX_PROCESS_EVENTS),),
    collector=ProcessesCollector,
    tracepoints=("task/task_newtask", "sched/sched_process_exec", "sched/sched_process_exit",
                 "syscalls/sys_enter_execve", "syscalls/sys_enter_exit_group"),
    fields={"task/task_newtask": ("pid", "clone_flags"),
            "sched/sched_process_exec": ("pid", "old_pid", "filename"),
            "syscalls/sys_enter_execve": ("argv",), "syscalls/sys_enter_exit_group": ("error_code",)},
    shared_hooks=("task/task_newtask", "sched/sched_process_exec", "sched/sched_process_exit",
                  "raw_syscalls/sys_enter"),
    layouts={"proc_event": ProcEventStruct},
    headlines={"processes": Headline("fork/exec/exit", lambda s: float(len(s.processes)), lambda v: count(round(v)))},
)
