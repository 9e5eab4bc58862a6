"""Constants that the C probes and the Python decoders must agree on, defined
here once.  The loader passes each one to clang as ``-DNAME=value``
(``defines()``); bpf/*.c use the names and define none of them, so a value
can only ever be changed in one place."""

from __future__ import annotations

COMM_LEN = 16  # a task's comm, with its NUL
PATH_LEN = 256  # file_opens.c reads this much of a path; longer ones are flagged cut

# file_opens.c: open_key.flags
PATH_CUT = 1
PATH_UNREADABLE = 2

# processes.c: proc_event.kind, and the sizes of its arrays
PROC_FORK = 1
PROC_EXEC = 2
PROC_EXIT = 3
EXEC_ARGS = 4
ARG_LEN = 48
FILENAME_LEN = 128

# tcp.c and tcp_traffic.c: who opened the connection
DIRECTION_CONNECT = 1
DIRECTION_ACCEPT = 2

# udp.c: udp_flow_key.dir
DIR_SENT = 0
DIR_RECEIVED = 1

# read_latency.c: hist_key.series
OP_READ = 0
OP_WRITE = 1

# read(2)'s and write(2)'s syscall numbers, for the latency's stamps on the
# raw sys_enter (-1 elsewhere: the classic sys_enter_read/write then).
NR_READ = {"x86_64": 0, "aarch64": 63, "riscv64": 63, "ppc64le": 3, "s390x": 3}
NR_WRITE = {"x86_64": 1, "aarch64": 64, "riscv64": 64, "ppc64le": 4, "s390x": 4}

# bpf(2) and perf_event_open(2), for the calls ebpftop makes itself
# (sources/bpf_syscall.py): where a number is unknown, BCC does the work.
NR_BPF = {"x86_64": 321, "aarch64": 280, "riscv64": 280, "ppc64le": 361, "s390x": 351}
NR_PERF_EVENT_OPEN = {"x86_64": 298, "aarch64": 241, "riscv64": 241, "ppc64le": 319, "s390x": 331}

# bpf/sys_enter.c: the numbers of the other syscalls whose entries the sets act on,
# per architecture (-1: the architecture has no such syscall; SYSNR_, as the
# kernel's own headers define and undefine NR_OPEN), and where the
# saved user registers (struct pt_regs, the architecture's ABI) keep a
# syscall's first two arguments.  An architecture missing here keeps the
# classic syscalls:sys_enter_* tracepoints (capabilities.py: raw_syscall_args).
SYSCALL_NRS = {
    "x86_64": {"SYSNR_OPEN": 2, "SYSNR_OPENAT": 257, "SYSNR_OPENAT2": 437, "SYSNR_CREAT": 85, "SYSNR_ACCEPT": 43,
               "SYSNR_ACCEPT4": 288, "SYSNR_EXECVE": 59, "SYSNR_EXIT_GROUP": 231},
    "aarch64": {"SYSNR_OPEN": -1, "SYSNR_OPENAT": 56, "SYSNR_OPENAT2": 437, "SYSNR_CREAT": -1, "SYSNR_ACCEPT": 202,
                "SYSNR_ACCEPT4": 242, "SYSNR_EXECVE": 221, "SYSNR_EXIT_GROUP": 94},
}
SYSCALL_ARG_OFFSETS = {
    "x86_64": (112, 104),  # di, si
    "aarch64": (0, 8),  # regs[0], regs[1]
}
# How a 64-bit task's syscall is told from a 32-bit (compat) task's, whose
# numbers are another table's (x86_64's open, 2, is ia32's fork): the saved
# register at OFFSET, masked with MASK, equals VALUE for a native one.
# x86_64: cs is __USER_CS (0x33), ia32's __USER32_CS (0x23); arm64: pstate's
# PSR_MODE32_BIT (0x10) is clear.
NATIVE_SYSCALL_CHECK = {
    "x86_64": (136, 0xFFFF, 0x33),
    "aarch64": (264, 0x10, 0),
}


def syscall_defines(machine: str) -> list[str]:
    """bpf/sys_enter.c's -D flags on this architecture ([] if unknown)."""
    if machine not in SYSCALL_NRS or machine not in SYSCALL_ARG_OFFSETS or machine not in NATIVE_SYSCALL_CHECK:
        return []
    arg0, arg1 = SYSCALL_ARG_OFFSETS[machine]
    offset, mask, value = NATIVE_SYSCALL_CHECK[machine]
    return [f"-D{k}={v}" for k, v in SYSCALL_NRS[machine].items()] + [
        f"-DARG0_OFFSET={arg0}", f"-DARG1_OFFSET={arg1}", f"-DNATIVE_CHECK_OFFSET={offset}",
        f"-DNATIVE_CHECK_MASK={mask:#x}", f"-DNATIVE_CHECK_VALUE={value:#x}"]


# TCP states (include/net/tcp_states.h, UAPI-stable numbering)
TCP_STATES = {1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT1", 5: "FIN_WAIT2",
              6: "TIME_WAIT", 7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN", 11: "CLOSING",
              12: "NEW_SYN_RECV"}

_SHARED = ("COMM_LEN", "PATH_LEN", "PATH_CUT", "PATH_UNREADABLE", "PROC_FORK", "PROC_EXEC", "PROC_EXIT",
           "EXEC_ARGS", "ARG_LEN", "FILENAME_LEN", "DIRECTION_CONNECT", "DIRECTION_ACCEPT", "DIR_SENT",
           "DIR_RECEIVED", "OP_READ", "OP_WRITE")


def defines() -> list[str]:
    """The -D flags of every shared constant."""
    return [f"-D{name}={globals()[name]}" for name in _SHARED]
