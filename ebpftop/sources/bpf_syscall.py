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

NR_BPF = {"x86_64": 321, "aarch64": 280, "riscv64": 280, "ppc64le": 361, "s390x": 351}
BPF_OBJ_GET_INFO_BY_FD = 15
BPF_LINK_CREATE = 28
BPF_ENABLE_STATS = 32
BPF_STATS_RUN_TIME = 0

# struct bpf_prog_info (UAPI): run_time_ns at byte 192, run_cnt at 200.
PROG_INFO_SIZE = 216
RUN_TIME_OFFSET = 192
RUN_CNT_OFFSET = 200
RECURSION_MISSES_OFFSET = 208

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


NR_PERF_EVENT_OPEN = {"x86_64": 298, "aarch64": 241, "riscv64": 241, "ppc64le": 319, "s390x": 331}
PERF_FLAG_FD_CLOEXEC = 8
PERF_EVENT_IOC_ENABLE = 0x2400  # _IO('$', 0)
PERF_EVENT_IOC_SET_BPF = 0x40042408  # _IOW('$', 8, __u32)
# struct perf_event_attr, its first version (PERF_ATTR_SIZE_VER0, 64 bytes,
# which every kernel accepts): the flag bits are at byte 40
PERF_ATTR_SIZE = 64
PERF_ATTR_DISABLED = 1 << 0
PERF_ATTR_EXCLUDE_KERNEL = 1 << 5
PERF_ATTR_EXCLUDE_HV = 1 << 6

# enum bpf_attach_type (UAPI)
BPF_CGROUP_INET_INGRESS = 0
BPF_CGROUP_INET_EGRESS = 1


class StatsError(OSError):
    pass


def _bpf(cmd: int, attr: ctypes.Array) -> int:
    nr = NR_BPF.get(platform.machine())
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


def prog_run_stats(prog_fd: int) -> tuple[int, int]:
    """(total run time in ns, number of runs) of one program since it loaded."""
    run_time, run_cnt, _misses = prog_info(prog_fd)
    return run_time, run_cnt


def prog_info(prog_fd: int) -> tuple[int, int, int]:
    """(run time in ns, runs, recursion misses) of one program since it
    loaded.  The misses are runs the kernel skipped: a tracepoint or kprobe
    program is not run while another one runs on that CPU (its recursion
    guard); counted by the kernel since Linux 5.12 (0 before)."""
    info = (ctypes.c_uint8 * PROG_INFO_SIZE)()
    attr = (ctypes.c_uint8 * 16)()
    ctypes.c_uint32.from_buffer(attr, 0).value = prog_fd
    ctypes.c_uint32.from_buffer(attr, 4).value = PROG_INFO_SIZE
    ctypes.c_uint64.from_buffer(attr, 8).value = ctypes.addressof(info)
    _bpf(BPF_OBJ_GET_INFO_BY_FD, attr)
    run_time = ctypes.c_uint64.from_buffer(info, RUN_TIME_OFFSET).value
    run_cnt = ctypes.c_uint64.from_buffer(info, RUN_CNT_OFFSET).value
    misses = ctypes.c_uint64.from_buffer(info, RECURSION_MISSES_OFFSET).value
    return run_time, run_cnt, misses


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


def perf_event_with_program(prog_fd: int, event_type: int, config: int) -> list[int]:
    """A perf event counting every occurrence (period 1) in user mode only,
    for every task, on each online CPU, running prog_fd on each: one fd per
    CPU.  Closing them (or dying) detaches the program."""
    import fcntl

    nr = NR_PERF_EVENT_OPEN.get(platform.machine())
    if nr is None:
        raise StatsError(f"perf_event_open(2) syscall number unknown on {platform.machine()}")
    attr = (ctypes.c_uint8 * PERF_ATTR_SIZE)()
    ctypes.c_uint32.from_buffer(attr, 0).value = event_type
    ctypes.c_uint32.from_buffer(attr, 4).value = PERF_ATTR_SIZE
    ctypes.c_uint64.from_buffer(attr, 8).value = config
    ctypes.c_uint64.from_buffer(attr, 16).value = 1  # sample_period
    ctypes.c_uint64.from_buffer(attr, 40).value = PERF_ATTR_DISABLED | PERF_ATTR_EXCLUDE_KERNEL | PERF_ATTR_EXCLUDE_HV
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
