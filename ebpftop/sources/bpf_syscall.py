"""bpf(2) commands that BCC 0.26 does not wrap, called directly: the kernel's
run-time statistics of BPF programs, and cgroup links; and perf events with
a BPF program on them, which BCC < 0.23 cannot open with exclude_kernel.

Cgroup links (BPF_LINK_CREATE): a program attached to a cgroup with the older
BPF_PROG_ATTACH stays attached after its loader dies -- on the root cgroup,
until reboot.  A link is detached when its last file descriptor closes, so
nothing stays attached even after a SIGKILL.

BPF_ENABLE_STATS turns the statistics on for as long as the returned file
descriptor is open -- for ebpftop's lifetime or until it is closed -- without
touching the kernel.bpf_stats_enabled sysctl that other tools also set.  While
on, every BPF program run on the machine reads the clock twice more."""

from __future__ import annotations

import ctypes
import os
import platform
from typing import NamedTuple

from ebpftop.cdefs import NR_BPF, NR_PERF_EVENT_OPEN

BPF_PROG_GET_NEXT_ID = 11
BPF_PROG_GET_FD_BY_ID = 13
BPF_OBJ_GET_INFO_BY_FD = 15
BPF_LINK_CREATE = 28
BPF_ENABLE_STATS = 32
BPF_STATS_RUN_TIME = 0

# struct bpf_prog_info (UAPI): type at byte 0, id at 4, name (16 bytes) at 64,
# run_time_ns at 192, run_cnt at 200, recursion_misses at 208.
TYPE_OFFSET = 0
ID_OFFSET = 4
NAME_OFFSET = 64
PROG_INFO_SIZE = 216
RUN_TIME_OFFSET = 192
RUN_CNT_OFFSET = 200
RECURSION_MISSES_OFFSET = 208

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


PERF_FLAG_FD_CLOEXEC = 8
PERF_EVENT_IOC_ENABLE = 0x2400  # _IO('$', 0)
PERF_EVENT_IOC_SET_BPF = 0x40042408  # _IOW('$', 8, __u32)
# struct perf_event_attr, its first version (PERF_ATTR_SIZE_VER0, 64 bytes,
# which every kernel accepts): the flag bits are at byte 40
PERF_ATTR_SIZE = 64
PERF_ATTR_DISABLED = 1 << 0
PERF_ATTR_EXCLUDE_KERNEL = 1 << 5
PERF_ATTR_EXCLUDE_HV = 1 << 6
PERF_ATTR_FREQ = 1 << 10  # sample_period is a frequency in Hz

# enum bpf_prog_type (UAPI): programs ebpftop loads itself
BPF_PROG_TYPE_PERF_EVENT = 7
BPF_PROG_TYPE_CGROUP_SKB = 8

# enum bpf_attach_type (UAPI)
BPF_CGROUP_INET_INGRESS = 0
BPF_CGROUP_INET_EGRESS = 1


class StatsError(OSError):
    pass


_NR_BPF_HERE = NR_BPF.get(platform.machine())


def _bpf(cmd: int, attr: ctypes.Array) -> int:
    nr = _NR_BPF_HERE
    if nr is None:
        raise StatsError(f"bpf(2) syscall number unknown on {platform.machine()}")
    ret = _libc.syscall(ctypes.c_long(nr), ctypes.c_int(cmd), ctypes.byref(attr), ctypes.c_uint(len(attr)))
    if ret < 0:
        err = ctypes.get_errno()
        raise StatsError(err, os.strerror(err))
    return ret


def enable_run_time_stats() -> int:
    """An fd that keeps the statistics on until it is closed (Linux >= 5.8)."""
    attr = (ctypes.c_uint8 * 8)()
    ctypes.c_uint32.from_buffer(attr, 0).value = BPF_STATS_RUN_TIME
    return _bpf(BPF_ENABLE_STATS, attr)


# enum bpf_prog_type (UAPI), for the Probes tab
PROG_TYPES = {
    1: "socket_filter", 2: "kprobe", 3: "sched_cls", 4: "sched_act", 5: "tracepoint", 6: "xdp", 7: "perf_event",
    8: "cgroup_skb", 9: "cgroup_sock", 10: "lwt_in", 11: "lwt_out", 12: "lwt_xmit", 13: "sock_ops", 14: "sk_skb",
    15: "cgroup_device", 16: "sk_msg", 17: "raw_tracepoint", 18: "cgroup_sock_addr", 19: "lwt_seg6local",
    20: "lirc_mode2", 21: "sk_reuseport", 22: "flow_dissector", 23: "cgroup_sysctl", 24: "raw_tracepoint_writable",
    25: "cgroup_sockopt", 26: "tracing", 27: "struct_ops", 28: "ext", 29: "lsm", 30: "sk_lookup", 31: "syscall",
    32: "netfilter",
}


class ProgDetails(NamedTuple):
    prog_id: int
    prog_type: str
    name: str  # the kernel's name: 15 characters at most
    run_time_ns: int
    run_cnt: int
    # runs the kernel skipped: a tracepoint or kprobe program is not run while
    # another one runs on that CPU (its recursion guard); Linux >= 5.12, else 0
    recursion_misses: int


def prog_details(prog_fd: int) -> ProgDetails:
    info = _prog_info_bytes(prog_fd)
    raw_name = bytes(info[NAME_OFFSET:NAME_OFFSET + 16]).split(b"\0", 1)[0]
    prog_type = ctypes.c_uint32.from_buffer(info, TYPE_OFFSET).value
    return ProgDetails(
        prog_id=ctypes.c_uint32.from_buffer(info, ID_OFFSET).value,
        prog_type=PROG_TYPES.get(prog_type, f"type {prog_type}"),
        name=raw_name.decode("utf-8", "replace"),
        run_time_ns=ctypes.c_uint64.from_buffer(info, RUN_TIME_OFFSET).value,
        run_cnt=ctypes.c_uint64.from_buffer(info, RUN_CNT_OFFSET).value,
        recursion_misses=ctypes.c_uint64.from_buffer(info, RECURSION_MISSES_OFFSET).value,
    )


def host_prog_ids() -> list[int]:
    """The id of every BPF program loaded on the machine."""
    ids, current = [], 0
    while True:
        attr = (ctypes.c_uint8 * 16)()
        ctypes.c_uint32.from_buffer(attr, 0).value = current
        try:
            _bpf(BPF_PROG_GET_NEXT_ID, attr)
        except StatsError as e:
            if e.errno == 2:  # ENOENT: no more
                return ids
            raise
        current = ctypes.c_uint32.from_buffer(attr, 4).value
        ids.append(current)


def prog_fd_by_id(prog_id: int) -> int:
    attr = (ctypes.c_uint8 * 16)()
    ctypes.c_uint32.from_buffer(attr, 0).value = prog_id
    return _bpf(BPF_PROG_GET_FD_BY_ID, attr)


def prog_holders(proc: str = "/proc") -> dict[int, list[tuple[int, str]]]:
    """prog id -> the processes holding it: an fd of the program itself or of
    a BPF link to it (what /proc/PID/fdinfo says).  A program attached and
    then let go by every process (pinned, or a cgroup program attached the old
    way) has none."""
    holders: dict[int, list[tuple[int, str]]] = {}
    for pid_dir in os.listdir(proc):
        if not pid_dir.isdigit():
            continue
        fd_dir = f"{proc}/{pid_dir}/fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        comm = None
        for fd in fds:
            try:
                target = os.readlink(f"{fd_dir}/{fd}")
            except OSError:
                continue
            if target not in ("anon_inode:bpf-prog", "anon_inode:bpf_link"):
                continue
            try:
                with open(f"{proc}/{pid_dir}/fdinfo/{fd}") as f:
                    info = f.read()
            except OSError:
                continue
            for line in info.splitlines():
                if line.startswith("prog_id:"):
                    if comm is None:
                        try:
                            with open(f"{proc}/{pid_dir}/comm", "rb") as f:
                                comm = f.read().rstrip(b"\n").decode("utf-8", "surrogateescape")
                        except OSError:
                            comm = ""
                    entry = (int(pid_dir), comm)
                    prog = holders.setdefault(int(line.split(":", 1)[1]), [])
                    if entry not in prog:
                        prog.append(entry)
    return {prog_id: sorted(procs) for prog_id, procs in holders.items()}


def _prog_info_bytes(prog_fd: int):
    info = (ctypes.c_uint8 * PROG_INFO_SIZE)()
    attr = (ctypes.c_uint8 * 16)()
    ctypes.c_uint32.from_buffer(attr, 0).value = prog_fd
    ctypes.c_uint32.from_buffer(attr, 4).value = PROG_INFO_SIZE
    ctypes.c_uint64.from_buffer(attr, 8).value = ctypes.addressof(info)
    _bpf(BPF_OBJ_GET_INFO_BY_FD, attr)
    return info


def cgroup_link(prog_fd: int, cgroup_fd: int, attach_type: int) -> int:
    """Attach a cgroup program through a link (Linux >= 5.7): the returned fd
    keeps it attached; closing it (or dying) detaches it.  The link coexists
    with other programs on the cgroup (systemd's, for one); it replaces none."""
    attr = (ctypes.c_uint8 * 16)()
    ctypes.c_uint32.from_buffer(attr, 0).value = prog_fd
    ctypes.c_uint32.from_buffer(attr, 4).value = cgroup_fd
    ctypes.c_uint32.from_buffer(attr, 8).value = attach_type
    return _bpf(BPF_LINK_CREATE, attr)


def cgroup2_root(mounts_text: str) -> str | None:
    """Where the cgroup v2 hierarchy is mounted, from /proc/self/mounts text
    (/sys/fs/cgroup on current systems, /sys/fs/cgroup/unified in hybrid mode)."""
    for line in mounts_text.splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[2] == "cgroup2":
            return fields[1].replace("\\040", " ")
    return None


def online_cpus(text: str) -> list[int]:
    """CPU numbers from /sys/devices/system/cpu/online text ('0-3,6')."""
    cpus = []
    for part in text.strip().split(","):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        cpus.extend(range(int(lo), int(hi or lo) + 1))
    return cpus


def perf_event_with_program(prog_fd: int, event_type: int, config: int, period: int = 1, frequency: int = 0,
                            user_only: bool = True) -> list[int]:
    """A perf event for every task on each online CPU, running prog_fd every
    period-th occurrence (or frequency times a second), in user mode only or
    not: one fd per CPU.  Closing them (or dying) detaches the program."""
    import fcntl

    nr = NR_PERF_EVENT_OPEN.get(platform.machine())
    if nr is None:
        raise StatsError(f"perf_event_open(2) syscall number unknown on {platform.machine()}")
    attr = (ctypes.c_uint8 * PERF_ATTR_SIZE)()
    ctypes.c_uint32.from_buffer(attr, 0).value = event_type
    ctypes.c_uint32.from_buffer(attr, 4).value = PERF_ATTR_SIZE
    ctypes.c_uint64.from_buffer(attr, 8).value = config
    ctypes.c_uint64.from_buffer(attr, 16).value = frequency or period  # sample_period, or sample_freq
    flags = PERF_ATTR_DISABLED | PERF_ATTR_EXCLUDE_HV
    if user_only:
        flags |= PERF_ATTR_EXCLUDE_KERNEL
    if frequency:
        flags |= PERF_ATTR_FREQ
    ctypes.c_uint64.from_buffer(attr, 40).value = flags
    with open("/sys/devices/system/cpu/online") as f:
        cpus = online_cpus(f.read())
    fds: list[int] = []
    try:
        for cpu in cpus:
            fd = _libc.syscall(ctypes.c_long(nr), ctypes.byref(attr), ctypes.c_int(-1), ctypes.c_int(cpu),
                               ctypes.c_int(-1), ctypes.c_ulong(PERF_FLAG_FD_CLOEXEC))
            if fd < 0:
                err = ctypes.get_errno()
                raise StatsError(err, os.strerror(err))
            fds.append(fd)
            fcntl.ioctl(fd, PERF_EVENT_IOC_SET_BPF, prog_fd)
            fcntl.ioctl(fd, PERF_EVENT_IOC_ENABLE, 0)
    except OSError:
        for fd in fds:
            os.close(fd)
        raise
    return fds
