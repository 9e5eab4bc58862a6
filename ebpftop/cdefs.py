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

# syscall_latency.c: latency_key.op
OP_READ = 0
OP_WRITE = 1

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
