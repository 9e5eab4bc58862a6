"""What the running kernel and BCC offer, and the fallback ebpftop takes for
each thing they lack.  Decided once at start-up from plain facts (the
tracepoints' format files, the kernel release, BCC's version), so the choice
is a pure function, unit-tested without a kernel.

Every fallback can be forced on a machine that has the feature, so that the
tests run each one on the real kernel: EBPFTOP_FORCE_FALLBACK=task_storage,
sock_recv_length,page_fault_tracepoint,task_rename_pid,raw_syscall_args,map_batch,
block_io_start (any subset; "all").
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

# The features that have a fallback, and what ebpftop does without each.
FALLBACKS = {
    "task_storage": "per-thread scratch in hash maps keyed by thread id (cleaned at thread exit; "
                    "needs BCC >= 0.24 and Linux >= 5.13 for task-local storage)",
    "sock_recv_length": "UDP: sent datagrams exact, received ones with the owner unknown "
                        "(sock:sock_recv_length needs Linux >= 6.3)",
    "page_fault_tracepoint": "page faults from the perf software event page-faults "
                             "(exceptions:page_fault_user is x86-only)",
    "task_rename_pid": "renames charged to the renaming thread (task:task_rename has no pid field here)",
    "raw_syscall_args": "syscall entries from classic syscalls:sys_enter_* tracepoints (each makes every "
                        "syscall about 26 ns dearer; the arguments are read from the raw sys_enter's registers "
                        "only where ebpftop knows the architecture's syscall numbers)",
    "map_batch": "maps read through BCC, entry object by entry object (the bulk read needs the bpf(2) "
                 "syscall's number for this architecture)",
    "block_io_start": "disk I/O charged at block:block_rq_issue to the task that issued it (the submitter "
                      "without an I/O scheduler, kblockd with one), without its time queued "
                      "(block:block_io_start needs Linux >= 6.5)",
}
FORCE_ENV = "EBPFTOP_FORCE_FALLBACK"

# Below these, ebpftop does not run at all: its events come through BPF ring
# buffers (Linux 5.8) and its cgroup programs through BPF links (5.7).
MIN_KERNEL = (5, 8)
MIN_BCC = (0, 18)


class UnsupportedError(Exception):
    pass


def version_tuple(text: str) -> tuple[int, ...]:
    """(5, 15, 0) from '5.15.0-91-generic'; () when it starts with no number."""
    m = re.match(r"(\d+)(?:\.(\d+))?(?:\.(\d+))?", text.strip().lstrip("v"))
    if not m:
        return ()
    return tuple(int(g) for g in m.groups() if g is not None)


def format_fields(format_text: str) -> set[str]:
    """The field names of a tracepoint from its tracefs format file."""
    names = set()
    for line in format_text.splitlines():
        line = line.strip()
        if not line.startswith("field:"):
            continue
        decl = line[len("field:"):].split(";", 1)[0].strip()
        m = re.search(r"([A-Za-z_][A-Za-z0-9_]*)\s*(\[[^\]]*\])?$", decl)
        if m:
            names.add(m.group(1))
    return names


def forced_fallbacks(env_value: str | None) -> frozenset[str]:
    """The features EBPFTOP_FORCE_FALLBACK names; an unknown name is an error
    (a typo must not silently test the default path)."""
    if not env_value:
        return frozenset()
    names = {n.strip() for n in env_value.split(",") if n.strip()}
    if "all" in names:
        return frozenset(FALLBACKS)
    unknown = sorted(names - set(FALLBACKS))
    if unknown:
        raise UnsupportedError(f"{FORCE_ENV}: unknown feature {unknown[0]!r}; choose from {','.join(FALLBACKS)},all")
    return frozenset(names)


@dataclass(frozen=True)
class Capabilities:
    """What ebpftop uses on this machine.  True: the preferred mechanism;
    False: its fallback (FALLBACKS says which)."""

    task_storage: bool = True
    sock_recv_length: bool = True
    page_fault_tracepoint: bool = True
    task_rename_pid: bool = True
    raw_syscall_args: bool = True  # syscall entries on the raw sys_enter (bpf/sys_enter.c)
    map_batch: bool = True  # maps drained in bulk and decoded with struct (sources/mapbatch.py)
    block_io_start: bool = True  # disk I/O charged to its submitter at block:block_io_start (bpf/disk.c)
    group_dead: bool = True  # sched_process_exit tells a process's end from a thread's
    # hooks of tcp_traffic that old kernels lack (no fallback: the figure is missing)
    sock_send_length: bool = True  # Linux 6.3, as sock_recv_length
    tcp_retransmit: bool = True  # tcp:tcp_retransmit_skb, Linux 4.15
    tcp_resets: bool = True  # tcp:tcp_send_reset and tcp_receive_reset, Linux 4.15/4.16
    kernel: str = ""
    bcc: str = ""
    forced: frozenset = field(default_factory=frozenset)

    def defines(self) -> list[str]:
        """The C side of these choices (bpf/ebpftop.h documents each)."""
        flags = []
        if self.task_storage:
            flags.append("-DEBPFTOP_TASK_STORAGE")
        if self.sock_recv_length:
            flags.append("-DEBPFTOP_HAVE_SOCK_RECV_LENGTH")
        if self.page_fault_tracepoint:
            flags.append("-DEBPFTOP_PAGE_FAULT_TRACEPOINT")
        if self.task_rename_pid:
            flags.append("-DEBPFTOP_TASK_RENAME_HAS_PID")
        if self.group_dead:
            flags.append("-DEBPFTOP_HAVE_GROUP_DEAD")
        if self.raw_syscall_args:
            flags.append("-DEBPFTOP_RAW_SYSCALL_ARGS")
        if not self.block_io_start:
            flags.append("-DEBPFTOP_BLOCK_ON_ISSUE")
        return flags

    @property
    def fallbacks(self) -> dict[str, str]:
        """feature -> what is done instead, for each feature not used."""
        return {name: FALLBACKS[name] for name in FALLBACKS if not getattr(self, name)}

    def notes(self) -> dict[str, str]:
        """probe set -> a line for its status, where a fallback changes what it shows."""
        out = {}
        if not self.page_fault_tracepoint:
            out["page_faults"] = "from the perf software event page-faults (no exceptions:page_fault_user here)"
        if not self.sock_recv_length:
            out["udp"] = "received datagrams' owner unknown: sock:sock_recv_length needs Linux 6.3"
        missing = []
        if not (self.sock_recv_length and self.sock_send_length):
            missing.append("no bytes (sock:sock_send_length and sock_recv_length need Linux 6.3)")
        if not self.tcp_retransmit:
            missing.append("no retransmits (no tcp:tcp_retransmit_skb)")
        if not self.tcp_resets:
            missing.append("no resets (no tcp:tcp_send_reset/tcp_receive_reset)")
        if missing:
            out["tcp_traffic"] = "; ".join(missing)
        if not self.block_io_start:
            out["disk"] = ("I/O charged to the task that issued it, no time queued "
                           "(block:block_io_start needs Linux 6.5)")
        return out

    def to_dict(self) -> dict:
        return {
            "kernel": self.kernel,
            "bcc": self.bcc,
            "uses": {name: bool(getattr(self, name)) for name in FALLBACKS},
            "fallbacks": self.fallbacks,
            "forced": sorted(self.forced),
        }


def detect(
    *,
    kernel_release: str,
    bcc_version: str,
    tracepoint_format,
    have_btf: bool,
    forced: frozenset = frozenset(),
    machine_has_bpf_nr: bool = True,
    machine_has_syscall_table: bool = True,
) -> Capabilities:
    """The choices for this machine.  tracepoint_format(name) returns the
    format file's text of 'group/event', or '' when it does not exist."""
    kernel = version_tuple(kernel_release)
    bcc = version_tuple(bcc_version)
    if kernel and kernel < MIN_KERNEL:
        raise UnsupportedError(
            f"Linux {kernel_release} is too old: ebpftop needs Linux >= {MIN_KERNEL[0]}.{MIN_KERNEL[1]} "
            "(BPF ring buffers)")
    if bcc and bcc < MIN_BCC:
        raise UnsupportedError(f"BCC {bcc_version} is too old: ebpftop needs BCC >= {MIN_BCC[0]}.{MIN_BCC[1]}")
    # Task-local storage from tracing programs: BPF_TASK_STORAGE in BCC 0.24,
    # the kernel side in 5.13 (5.11 for LSM only), through the BTF task pointer.
    task_storage = bool(bcc) and bcc >= (0, 24) and bool(kernel) and kernel >= (5, 13) and have_btf
    rename_fields = format_fields(tracepoint_format("task/task_rename"))
    return Capabilities(
        task_storage=task_storage and "task_storage" not in forced,
        sock_recv_length=bool(tracepoint_format("sock/sock_recv_length")) and "sock_recv_length" not in forced,
        page_fault_tracepoint=(bool(tracepoint_format("exceptions/page_fault_user"))
                               and "page_fault_tracepoint" not in forced),
        task_rename_pid="pid" in rename_fields and "task_rename_pid" not in forced,
        map_batch=machine_has_bpf_nr and "map_batch" not in forced,
        raw_syscall_args=machine_has_syscall_table and "raw_syscall_args" not in forced,
        block_io_start=({"dev", "sector", "rwbs"} <= format_fields(tracepoint_format("block/block_io_start"))
                        and "block_io_start" not in forced),
        group_dead="group_dead" in format_fields(tracepoint_format("sched/sched_process_exit")),
        sock_send_length=bool(tracepoint_format("sock/sock_send_length")),
        tcp_retransmit=bool(tracepoint_format("tcp/tcp_retransmit_skb")),
        tcp_resets=bool(tracepoint_format("tcp/tcp_send_reset")) and bool(tracepoint_format("tcp/tcp_receive_reset")),
        kernel=kernel_release,
        bcc=bcc_version,
        forced=frozenset(forced),
    )


def detect_here(tracefs: str | None) -> Capabilities:
    """detect() on this machine."""
    import platform

    from ebpftop import cdefs

    def fmt(name: str) -> str:
        if not tracefs:
            return ""
        try:
            with open(os.path.join(tracefs, "events", name, "format")) as f:
                return f.read()
        except OSError:
            return ""

    return detect(
        kernel_release=platform.release(),
        bcc_version=bcc_version(),
        tracepoint_format=fmt,
        have_btf=os.path.exists("/sys/kernel/btf/vmlinux"),
        forced=forced_fallbacks(os.environ.get(FORCE_ENV)),
        machine_has_bpf_nr=platform.machine() in cdefs.NR_BPF,
        machine_has_syscall_table=bool(cdefs.syscall_defines(platform.machine())),
    )


def bcc_version() -> str:
    """BCC's version, read without importing bcc (only sources/kernel.py does)."""
    import importlib.util

    try:
        spec = importlib.util.find_spec("bcc")
    except ValueError:
        spec = None
    if spec is None or not spec.submodule_search_locations:
        return ""
    for d in spec.submodule_search_locations:
        try:
            with open(os.path.join(d, "version.py")) as f:
                m = re.search(r"__version__\s*=\s*['\"]([^'\"]+)", f.read())
        except OSError:
            continue
        if m:
            return m.group(1)
    return ""
