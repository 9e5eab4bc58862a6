"""The kernel's run-time statistics of BPF programs, through the bpf(2)
syscall directly (BCC wraps neither command).

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
BPF_ENABLE_STATS = 32
BPF_STATS_RUN_TIME = 0

# struct bpf_prog_info (UAPI): run_time_ns at byte 192, run_cnt at 200.
PROG_INFO_SIZE = 216
RUN_TIME_OFFSET = 192
RUN_CNT_OFFSET = 200

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


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
    info = (ctypes.c_uint8 * PROG_INFO_SIZE)()
    attr = (ctypes.c_uint8 * 16)()
    ctypes.c_uint32.from_buffer(attr, 0).value = prog_fd
    ctypes.c_uint32.from_buffer(attr, 4).value = PROG_INFO_SIZE
    ctypes.c_uint64.from_buffer(attr, 8).value = ctypes.addressof(info)
    _bpf(BPF_OBJ_GET_INFO_BY_FD, attr)
    run_time = ctypes.c_uint64.from_buffer(info, RUN_TIME_OFFSET).value
    run_cnt = ctypes.c_uint64.from_buffer(info, RUN_CNT_OFFSET).value
    return run_time, run_cnt
