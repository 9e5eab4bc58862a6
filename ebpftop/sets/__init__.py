"""The probe sets, in the order their C files are concatenated (a file may
call what an earlier one defines: syscalls.c stamps read_latency.c's
entries), and what is derived from their declarations: the parts a snapshot
has, the loader's -D flags and loss-counter slots, the CLI's list of sets,
the timeline headlines and --trigger figures.

To add a probe set: write bpf/NAME.c and ebpftop/sets/NAME.py (its ``SET``),
list it here, and show its parts in a view (ebpftop/panes/).  Nothing else
names a set's parts: snapshots, JSON, the filter, grouping, history,
metrics and triggers all go through the declarations.
"""

from __future__ import annotations

from ebpftop.sets import (
    cpu,
    disk,
    drops,
    file_opens,
    oom,
    page_faults,
    processes,
    profile,
    read_latency,
    syscalls,
    tcp,
    tcp_traffic,
    udp,
)
from ebpftop.sets.base import Part, ProbeSet

PROBE_SETS: tuple[ProbeSet, ...] = (
    read_latency.SET,
    syscalls.SET,
    page_faults.SET,
    file_opens.SET,
    tcp.SET,
    drops.SET,  # before tcp_traffic: its collector joins drops to the connections that one forgets once closed
    tcp_traffic.SET,
    udp.SET,
    processes.SET,
    cpu.SET,
    profile.SET,
    disk.SET,
    oom.SET,
)

BY_NAME = {p.name: p for p in PROBE_SETS}
NAMES: tuple[str, ...] = tuple(BY_NAME)
PARTS: dict[str, Part] = {part.name: part for p in PROBE_SETS for part in p.parts}
OWNER_OF_PART = {part.name: p.name for p in PROBE_SETS for part in p.parts}
HEADLINES = {name: (p.name, h) for p in PROBE_SETS for name, h in p.headlines.items()}  # name -> (set, Headline)
FIGURES = {name: f for p in PROBE_SETS for name, f in p.figures.items()}
# parts whose rows are alerts: the TUI takes them as they come (Source.poll_alerts), each row's
# PART names its part, ALERT_TITLE and alert_text() what a toast says, alert_what/alert_detail the Alerts tab,
# alert_cause a flight recording's notice
STREAMED: tuple[str, ...] = tuple(name for name, part in PARTS.items() if getattr(part, "streamed", False))

# -- what the loader derives from the declarations ------------------------------

# Shared hook files, concatenated after every probe set: one program per
# kernel hook, calling each enabled set's handler.  cgroups.c (new cgroups'
# paths, for naming containers) is in every module: every set's rows carry
# a cgroup id.
SHARED_FILES = ("lifecycle.c", "sock_hooks.c", "cgroups.c", "sys_enter.c")
ALWAYS_SHARED_FILES = ("cgroups.c",)
SHARED_HOOK_FILES = {
    "raw_syscalls/sys_enter": "sys_enter.c",
    "cgroup/cgroup_attach_task": "lifecycle.c",
    "task/task_newtask": "lifecycle.c",
    "task/task_rename": "lifecycle.c",
    "sched/sched_process_exec": "lifecycle.c",
    "sched/sched_process_exit": "lifecycle.c",
    "sock/inet_sock_set_state": "sock_hooks.c",
    "sock/sock_send_length": "sock_hooks.c",
    "sock/sock_recv_length": "sock_hooks.c",
}


def shared_files(probe_set: ProbeSet) -> set[str]:
    return {SHARED_HOOK_FILES[h] for h in probe_set.shared_hooks}


# The events the shared hook files pass on to the handlers the sets declare
# (ProbeSet.handlers), with their arguments: lifecycle.c's ON_THREAD_CHANGED
# (the thread's comm or cgroup changed, or it exits), ON_THREAD_EXEC (a
# thread that is not its process's leader exec'd and took the leader's id)
# and ON_THREAD_EXIT (in the exiting thread, as it exits).
HANDLER_EVENTS = {"thread_changed": ("tid",), "thread_exec": ("old_pid", "pid"), "thread_exit": ("tid",)}


def handler_defines(enabled: tuple[str, ...]) -> list[str]:
    """-D ON_<EVENT>(args)=... for each event an enabled set handles: one
    call per set, in declaration order."""
    flags = []
    for event, args in HANDLER_EVENTS.items():
        calls = [f"{p.handlers[event]}({', '.join(args)});" for p in PROBE_SETS
                 if p.name in enabled and event in p.handlers]
        if calls:
            flags.append(f"-DON_{event.upper()}({', '.join(args)})=do {{ {' '.join(calls)} }} while (0)")
    return flags


# Loss counters in slot order (LOST_<NAME> in C; LOST_SLOTS their number).
LOST_COUNTERS: tuple[str, ...] = tuple(c for p in PROBE_SETS for c in p.loss_counters)
LOST_SLOT = {name: slot for slot, name in enumerate(LOST_COUNTERS)}

# Per-thread scratch (hash maps where task-local storage is missing).
PER_THREAD_MAP_SIZE = 65536

# Optional hooks, enabled by a define when the kernel has them (open(2) does
# not exist on arm64, for one).
OPTIONAL_TRACEPOINTS = {
    "EBPFTOP_HAVE_OPEN": ("syscalls/sys_enter_open", "syscalls/sys_exit_open"),
    "EBPFTOP_HAVE_OPENAT2": ("syscalls/sys_enter_openat2", "syscalls/sys_exit_openat2"),
    "EBPFTOP_HAVE_CREAT": ("syscalls/sys_enter_creat", "syscalls/sys_exit_creat"),
    "EBPFTOP_HAVE_ACCEPT": ("syscalls/sys_enter_accept", "syscalls/sys_exit_accept"),
    "EBPFTOP_HAVE_TASK_RENAME": ("task/task_rename",),
    "EBPFTOP_HAVE_EXEC": ("sched/sched_process_exec",),
    "EBPFTOP_HAVE_EXIT": ("sched/sched_process_exit",),
    "EBPFTOP_HAVE_CGROUP_ATTACH": ("cgroup/cgroup_attach_task",),
    "EBPFTOP_HAVE_CGROUP_MKDIR": ("cgroup/cgroup_mkdir",),
    "EBPFTOP_HAVE_SOCK_SEND_LENGTH": ("sock/sock_send_length",),
    "EBPFTOP_HAVE_TCP_RETRANSMIT": ("tcp/tcp_retransmit_skb",),
    "EBPFTOP_HAVE_TCP_RESETS": ("tcp/tcp_send_reset", "tcp/tcp_receive_reset"),
}
# The fields the C reads of optional hooks that no probe set declares: the
# hook is used only if the kernel's has them all.
OPTIONAL_FIELDS = {"cgroup/cgroup_mkdir": ("root", "id", "path")}


def sizes_for(options) -> dict:
    """Map sizes the sets derive from the options (ProbeSet.sizes_for)."""
    return {k: v for p in PROBE_SETS if p.sizes_for is not None for k, v in p.sizes_for(options).items()}


def defines(enabled: tuple[str, ...], map_sizes: dict | None = None) -> list[str]:
    """-D flags: which sets are on, their map sizes (overridable), and the
    loss counters' slots."""
    sizes = {k: v for p in PROBE_SETS for k, v in p.map_sizes.items()}
    sizes["PER_THREAD_MAP_SIZE"] = PER_THREAD_MAP_SIZE
    unknown = set(map_sizes or {}) - set(sizes)
    if unknown:
        raise ValueError(f"unknown map size {sorted(unknown)[0]}")
    sizes.update(map_sizes or {})
    flags = [f"-DEBPFTOP_{name.upper()}" for name in enabled] + handler_defines(enabled)
    flags += [f"-D{k}={v}" for k, v in sizes.items()]
    flags += [f"-DLOST_{name.upper()}={slot}" for name, slot in LOST_SLOT.items()]
    flags.append(f"-DLOST_SLOTS={len(LOST_SLOT)}")
    return flags


def parse_list(text: str) -> tuple[str, ...]:
    """'tcp,udp' -> ('tcp', 'udp'), in declaration order; ValueError names
    the first unknown one."""
    names = [p.strip() for p in text.split(",") if p.strip()]
    bad = [p for p in names if p not in BY_NAME]
    if bad or not names:
        raise ValueError(f"unknown probe set {bad[0] if bad else text!r}; choose from {','.join(NAMES)}")
    return tuple(n for n in NAMES if n in names)
