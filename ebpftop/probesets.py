"""The probe sets, each declared once: its C file, the kernel hooks it needs,
the tracepoint fields it reads, its map sizes, its loss counters and the
snapshot fields it fills.  The loader (sources/program.py and
sources/live.py), the CLI's --panes, the status and lost keys of a snapshot
and the loss counters' slots in C are all derived from PROBE_SETS.

Words: a *probe set* is one bpf/*.c and what it fills in a snapshot; a *tab*
is what the TUI shows (panes/views.py: TABS), and one tab may show several
probe sets (Network: tcp, tcp_traffic and udp).

To add a probe set: write bpf/NAME.c (guarded by nothing: the loader adds it
only when enabled, and defines EBPFTOP_NAME), declare it here, add its rows
to model.Snapshot, collect its maps in sources/live.py (COLLECTORS), and show
it in a tab.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ProbeSet:
    name: str
    c_file: str
    title: str  # what it traces, for --help and the README
    tracepoints: tuple[str, ...] = ()  # without any of these it cannot run
    fields: dict = field(default_factory=dict)  # tracepoint -> the fields the C reads (args->FIELD)
    map_sizes: dict = field(default_factory=dict)  # -D name -> entries (what does not fit is lost)
    lost_counters: tuple[str, ...] = ()  # its loss counters (LOST_<NAME> in C); default: its name
    shared_hooks: tuple[str, ...] = ()  # hooks it shares with other sets: one program each, in SHARED_HOOK_FILES
    loaded_by_name: tuple[str, ...] = ()  # its programs that are not tracepoints (loaded and attached by live.py)
    snapshot_fields: tuple[str, ...] = ()  # the model.Snapshot fields it fills
    needs_cgroup2: bool = False  # its programs attach to the cgroup v2 root

    @property
    def counters(self) -> tuple[str, ...]:
        return self.lost_counters or (self.name,)


# What bpf/sock_hooks.c reads of sock:inet_sock_set_state, for every set it calls.
INET_SOCK_SET_STATE_FIELDS = ("oldstate", "newstate", "protocol", "family", "sport", "dport",
                              "saddr", "daddr", "saddr_v6", "daddr_v6", "skaddr")

# Where lifecycle.c folds a thread's per-thread counters (syscalls, page
# faults): its name or its cgroup changes, or it exits.
THREAD_FOLD_HOOKS = ("task/task_rename", "sched/sched_process_exec", "sched/sched_process_exit",
                     "cgroup/cgroup_attach_task")

# In the order their C files are concatenated (a file may call what an
# earlier one defines: syscalls.c stamps syscall_latency.c's entries).
PROBE_SETS: tuple[ProbeSet, ...] = (
    ProbeSet(
        name="read_latency", c_file="syscall_latency.c", title="read() and write() latency histograms",
        tracepoints=("syscalls/sys_enter_read", "syscalls/sys_exit_read",
                     "syscalls/sys_enter_write", "syscalls/sys_exit_write"),
        fields={"syscalls/sys_exit_read": (), "syscalls/sys_exit_write": ()},
        map_sizes={"READ_LATENCY_MAP_SIZE": 16384},
        shared_hooks=("raw_syscalls/sys_enter",), snapshot_fields=("read_latency", "write_latency"),
    ),
    ProbeSet(
        name="syscalls", c_file="syscalls.c", title="syscall counts by process",
        tracepoints=("raw_syscalls/sys_enter",),
        fields={"sched/sched_process_exec": ("pid", "old_pid"),  # lifecycle.c folds at exec
                "cgroup/cgroup_attach_task": ("dst_root", "pid")},  # and when a thread changes cgroup
        map_sizes={"SYSCALLS_MAP_SIZE": 16384},
        shared_hooks=THREAD_FOLD_HOOKS + ("raw_syscalls/sys_enter",), snapshot_fields=("syscalls",),
    ),
    ProbeSet(
        name="page_faults", c_file="page_faults.c", title="user page faults by process",
        tracepoints=(),  # exceptions:page_fault_user, or the perf event (capabilities)
        fields={"sched/sched_process_exec": ("pid", "old_pid"), "cgroup/cgroup_attach_task": ("dst_root", "pid")},
        map_sizes={"PAGE_FAULTS_MAP_SIZE": 16384},
        shared_hooks=THREAD_FOLD_HOOKS, snapshot_fields=("page_faults",),
        loaded_by_name=("page_fault_event",),
    ),
    ProbeSet(
        name="file_opens", c_file="file_opens.c", title="file opens by process and path, and watched-file alerts",
        tracepoints=("syscalls/sys_enter_openat", "syscalls/sys_exit_openat", "task/task_newtask"),
        fields={"syscalls/sys_enter_openat": ("filename",), "syscalls/sys_exit_openat": ("ret",),
                "task/task_newtask": ("pid", "clone_flags")},
        map_sizes={"FILE_OPENS_MAP_SIZE": 16384},
        lost_counters=("file_opens", "alerts"),
        shared_hooks=("task/task_newtask", "raw_syscalls/sys_enter"), snapshot_fields=("file_opens", "alerts"),
    ),
    ProbeSet(
        name="tcp", c_file="tcp.c", title="new TCP connections",
        tracepoints=("sock/inet_sock_set_state", "syscalls/sys_enter_accept4", "syscalls/sys_exit_accept4"),
        fields={"sock/inet_sock_set_state": INET_SOCK_SET_STATE_FIELDS,
                "syscalls/sys_enter_accept4": ("upeer_sockaddr",), "syscalls/sys_exit_accept4": ("ret",)},
        map_sizes={"TCP_MAP_SIZE": 8192, "TCP_RINGBUF_PAGES": 64},  # 256 KiB: about 2,900 events
        shared_hooks=("sock/inet_sock_set_state", "raw_syscalls/sys_enter"), snapshot_fields=("tcp",),
    ),
    ProbeSet(
        name="tcp_traffic", c_file="tcp_traffic.c",
        title="TCP bytes, retransmits and resets per connection, and closed connections",
        tracepoints=("sock/inet_sock_set_state",),
        fields={"sock/inet_sock_set_state": INET_SOCK_SET_STATE_FIELDS,
                "sock/sock_send_length": ("sk", "protocol", "ret"),
                "sock/sock_recv_length": ("sk", "protocol", "ret", "flags")},
        # 256 KiB: about 2,000 closed connections whose sockets were reused between two reads
        map_sizes={"TCP_TRAFFIC_MAP_SIZE": 16384, "TCP_EVICTED_RINGBUF_PAGES": 64},
        shared_hooks=("sock/inet_sock_set_state", "sock/sock_send_length", "sock/sock_recv_length"),
        snapshot_fields=("tcp_connections", "tcp_closed"),
    ),
    ProbeSet(
        name="udp", c_file="udp.c", title="UDP flows: datagrams and bytes per process and peer",
        tracepoints=(),  # cgroup programs; sock:sock_recv_length where the kernel has it (capabilities)
        map_sizes={"UDP_MAP_SIZE": 16384},
        shared_hooks=("sock/sock_recv_length",), snapshot_fields=("udp",), needs_cgroup2=True,
        loaded_by_name=("udp_egress", "udp_ingress"),
    ),
    ProbeSet(
        name="processes", c_file="processes.c", title="fork, exec and exit",
        tracepoints=("task/task_newtask", "sched/sched_process_exec", "sched/sched_process_exit",
                     "syscalls/sys_enter_execve", "syscalls/sys_enter_exit_group"),
        fields={"task/task_newtask": ("pid", "clone_flags"),
                "sched/sched_process_exec": ("pid", "old_pid", "filename"),
                "syscalls/sys_enter_execve": ("argv",), "syscalls/sys_enter_exit_group": ("error_code",)},
        shared_hooks=("task/task_newtask", "sched/sched_process_exec", "sched/sched_process_exit",
                      "raw_syscalls/sys_enter"),
        snapshot_fields=("processes",),
    ),
)

BY_NAME = {p.name: p for p in PROBE_SETS}
NAMES: tuple[str, ...] = tuple(BY_NAME)

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

# Loss counters in slot order (LOST_<NAME> in C; LOST_SLOTS their number).
LOST_COUNTERS: tuple[str, ...] = tuple(c for p in PROBE_SETS for c in p.counters)
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


def defines(enabled: tuple[str, ...], map_sizes: dict | None = None) -> list[str]:
    """-D flags: which sets are on, their map sizes (overridable), and the
    loss counters' slots."""
    sizes = {k: v for p in PROBE_SETS for k, v in p.map_sizes.items()}
    sizes["PER_THREAD_MAP_SIZE"] = PER_THREAD_MAP_SIZE
    unknown = set(map_sizes or {}) - set(sizes)
    if unknown:
        raise ValueError(f"unknown map size {sorted(unknown)[0]}")
    sizes.update(map_sizes or {})
    flags = [f"-DEBPFTOP_{name.upper()}" for name in enabled]
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
