"""Decoding what the probes send and keep: ring-buffer events and map
entries into model rows.  No ``bcc`` here: the inputs are ctypes objects
(BCC's, or built by a test), so every decoder is unit-tested without a
kernel."""

from __future__ import annotations

import ctypes
import time

from ebpftop import aggregate, cdefs
from ebpftop.model import Alert, ProcessEvent, TcpConnection, TcpSession


def wall_time(ts_ns: int) -> float:
    """bpf_ktime_get_ns() (CLOCK_MONOTONIC) as wall-clock seconds."""
    return time.time() - (time.monotonic_ns() - ts_ns) / 1e9


def as_int(value) -> int:
    """A map value as an int: BCC < 0.28 returns ints from batch lookups,
    later versions ctypes objects (iovisor/bcc 82469ea6)."""
    return int(getattr(value, "value", value))


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


class TcpConnStruct(ctypes.Structure):
    """struct tcp_conn of bpf/tcp_traffic.c (BCC cannot infer it when nested)."""

    _fields_ = [
        ("opened_ns", ctypes.c_uint64),
        ("closed_ns", ctypes.c_uint64),
        ("tx_bytes", ctypes.c_uint64),
        ("rx_bytes", ctypes.c_uint64),
        ("cgroup", ctypes.c_uint64),
        ("retransmits", ctypes.c_uint32),
        ("resets_sent", ctypes.c_uint32),
        ("resets_received", ctypes.c_uint32),
        ("pid", ctypes.c_uint32),
        ("family", ctypes.c_uint16),
        ("sport", ctypes.c_uint16),
        ("dport", ctypes.c_uint16),
        ("direction", ctypes.c_uint8),
        ("state", ctypes.c_uint8),
        ("comm", ctypes.c_char * cdefs.COMM_LEN),
        ("saddr", ctypes.c_ubyte * 16),
        ("daddr", ctypes.c_ubyte * 16),
    ]


class TcpEvictedStruct(ctypes.Structure):
    """struct tcp_conn_evicted of bpf/tcp_traffic.c."""

    _fields_ = [("sk", ctypes.c_uint64), ("conn", TcpConnStruct)]


PROC_KINDS = {cdefs.PROC_FORK: "fork", cdefs.PROC_EXEC: "exec", cdefs.PROC_EXIT: "exit"}
DIRECTIONS = {cdefs.DIRECTION_CONNECT: "connect", cdefs.DIRECTION_ACCEPT: "accept"}


def process_event(e: ProcEventStruct) -> ProcessEvent:
    kind = PROC_KINDS.get(e.kind, "?")
    return ProcessEvent(
        time=wall_time(e.ts_ns),
        kind=kind,
        pid=e.pid,
        ppid=e.ppid,
        comm=aggregate.decode_c_string(e.comm),
        filename=aggregate.decode_c_string(e.filename) if kind == "exec" else "",
        args=tuple(aggregate.decode_c_string(bytes(e.args[i])) for i in range(min(e.argc, len(e.args)))),
        exit_code=e.exit_code if kind == "exit" and e.has_code else None,
        lifetime_s=e.lifetime_ns / 1e9 if kind == "exit" and e.lifetime_ns else None,
        cgroup=e.cgroup,
    )


def tcp_connection(e, ts_ns: int, direction: int, owner_known: bool) -> TcpConnection:
    """A tcp.c tcp_event (or an unclaimed pending_accept: owner unknown)."""
    return TcpConnection(
        time=wall_time(ts_ns),
        pid=e.pid if owner_known else 0,
        comm=aggregate.decode_c_string(e.comm) if owner_known else "",
        family=aggregate.family_name(e.family),
        saddr=aggregate.format_addr(e.family, e.saddr),
        sport=e.sport,
        daddr=aggregate.format_addr(e.family, e.daddr),
        dport=e.dport,
        direction=DIRECTIONS.get(direction, "?"),
        cgroup=e.cgroup if owner_known else 0,
    )


def alert(e, ppid: int) -> Alert:
    """A file_opens.c alert_event; ppid from the event, or read by the caller."""
    return Alert(
        time=wall_time(e.ts_ns),
        pid=e.pid,
        ppid=ppid,
        uid=e.uid,
        comm=aggregate.decode_c_string(e.comm),
        path=aggregate.decode_c_string(e.path),
        ret=e.ret,
        cgroup=e.cgroup,
    )


def tcp_session(c, tx_bytes: int, rx_bytes: int) -> TcpSession:
    """A tcp_traffic.c struct tcp_conn, with the bytes of the interval."""
    return TcpSession(
        pid=c.pid,
        comm=aggregate.decode_c_string(c.comm) if c.pid else "",
        family=aggregate.family_name(c.family),
        saddr=aggregate.format_addr(c.family, c.saddr),
        sport=c.sport,
        daddr=aggregate.format_addr(c.family, c.daddr),
        dport=c.dport,
        direction=DIRECTIONS.get(c.direction, "?"),
        state=cdefs.TCP_STATES.get(c.state, str(c.state)),
        opened=wall_time(c.opened_ns),
        closed=wall_time(c.closed_ns) if c.closed_ns else None,
        tx_bytes=tx_bytes,
        rx_bytes=rx_bytes,
        tx_total=c.tx_bytes,
        rx_total=c.rx_bytes,
        retransmits=c.retransmits,
        resets_sent=c.resets_sent,
        resets_received=c.resets_received,
        cgroup=c.cgroup,
    )


class CgroupEventStruct(ctypes.Structure):
    """struct cgroup_event of bpf/cgroups.c."""

    _fields_ = [("id", ctypes.c_uint64), ("path", ctypes.c_char * cdefs.PATH_LEN)]


def ppid_of(pid: int) -> int:
    """The parent of pid, read at once (0 if it is already gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return int(f.read().rsplit(b")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return 0
