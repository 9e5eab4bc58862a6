"""TCP traffic (probe set tcp_traffic) on the real kernel, over loopback,
between two processes with unique names: exact bytes each way, per
connection and per process; a closed connection's lifetime row; resets on
the side that sent or received them."""

from __future__ import annotations

import ctypes
import os
import shutil
import socket
import struct
import subprocess
import time
import uuid

import pytest

from ebpftop.sets.tcp_traffic import by_process as tcp_by_process
from tests.kernel.conftest import poll_after

FAMILIES = [(socket.AF_INET, "127.0.0.1", "ipv4"), (socket.AF_INET6, "::1", "ipv6")]


def _name(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:6]}"


def _set_comm(name: str) -> None:
    ctypes.CDLL(None).prctl(15, name.encode(), 0, 0, 0)  # PR_SET_NAME


def _recv_exactly(sock: socket.socket, n: int) -> None:
    got = 0
    while got < n:
        chunk = sock.recv(min(65536, n - got))
        assert chunk, "peer closed early"
        got += len(chunk)


def _serve_once(listener: socket.socket, comm: str, expect: int, reply: int, linger_zero: bool = False) -> int:
    """Fork a server named comm: accept one connection, read expect bytes,
    send reply bytes, close.  Returns its pid."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            _set_comm(comm)
            conn, _ = listener.accept()
            _recv_exactly(conn, expect)
            conn.sendall(b"s" * reply)
            if linger_zero:
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                time.sleep(0.2)  # the client has read the reply; then an abortive close
            conn.close()
            code = 0
        finally:
            os._exit(code)
    return pid


def _bytes_here(source) -> bool:
    """Whether this kernel (or the forced fallbacks) gives TCP bytes: where
    not, the tests check that the bytes are 0 and the set says why."""
    caps = source.caps
    if caps.sock_recv_length and caps.sock_send_length:
        return True
    assert "no bytes" in source.capabilities["notes"]["tcp_traffic"]
    return False


def _mine(snap, port: int):
    return [s for s in snap.tcp_connections + snap.tcp_closed if port in (s.sport, s.dport)]


@pytest.mark.parametrize("family, addr, fam_name", FAMILIES, ids=["ipv4", "ipv6"])
def test_bytes_each_way_are_exact_per_connection_and_per_process(fresh, family, addr, fam_name):
    n_up, n_down = 1_234_567, 76_543
    server_comm, client_comm = _name("tsrv"), _name("tcli")
    listener = socket.socket(family)
    listener.bind((addr, 0))
    listener.listen()
    port = listener.getsockname()[1]
    server = _serve_once(listener, server_comm, n_up, n_down)
    client = os.fork()
    if client == 0:
        code = 1
        try:
            _set_comm(client_comm)
            s = socket.socket(family)
            s.connect((addr, port))
            s.sendall(b"c" * n_up)
            _recv_exactly(s, n_down)
            time.sleep(0.3)  # open for a known while after the transfer
            s.close()
            code = 0
        finally:
            os._exit(code)
    started = time.time()
    for pid in (server, client):
        assert os.waitpid(pid, 0)[1] == 0
    lifetime = time.time() - started
    listener.close()
    time.sleep(0.05)  # past the settling time of a closed connection
    have_bytes = _bytes_here(fresh)
    snap = poll_after(fresh)
    mine = _mine(snap, port)
    assert len(mine) == 2, mine
    up = next(s for s in mine if s.direction == "connect")
    down = next(s for s in mine if s.direction == "accept")
    assert (up.pid, up.comm, up.family) == (client, client_comm, fam_name)
    # the accepted side's owner is the first task that sends or reads on it: seen by the byte hooks
    assert (down.pid, down.comm, down.dport) == ((server, server_comm) if have_bytes else (0, "")) + (up.sport,)
    if not have_bytes:
        n_up = n_down = 0
    assert (up.tx_total, up.rx_total, up.tx_bytes, up.rx_bytes) == (n_up, n_down, n_up, n_down)
    assert (down.tx_total, down.rx_total, down.tx_bytes, down.rx_bytes) == (n_down, n_up, n_down, n_up)
    # both closed: lifetime rows.  Unless the kernel skipped the close (its
    # recursion guard: sock:inet_sock_set_state is a classic tracepoint, and
    # a close in a softirq that interrupted another of ebpftop's classic
    # programs is not run), which ebpftop must then have said (once in CI
    # with a fallback forced, the accepted side stayed open).
    unseen = [s for s in (up, down) if s not in snap.tcp_closed]
    assert len(unseen) <= snap.skipped.get("tcp_traffic", 0), (unseen, snap.skipped)
    if up not in unseen:
        assert 0.3 <= up.duration_s(snap.time) <= lifetime + 0.05
    assert up.resets_sent == up.resets_received == down.resets_sent == down.resets_received == 0
    per_process = {r.comm: r for r in tcp_by_process(mine)}
    assert (per_process[client_comm].tx_bytes, per_process[client_comm].rx_bytes) == (n_up, n_down)
    assert (per_process[down.comm].tx_bytes, per_process[down.comm].rx_bytes) == (n_down, n_up)


def test_an_open_connection_reports_the_bytes_of_each_interval(fresh):
    a, b = socket.socket(), socket.socket()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    a.connect(listener.getsockname())
    b, _ = listener.accept()
    port = a.getsockname()[1]
    a.sendall(b"1" * 1000)
    _recv_exactly(b, 1000)
    first = [s for s in _mine(poll_after(fresh), port) if s.sport == port]
    a.sendall(b"2" * 300)
    _recv_exactly(b, 300)
    second = [s for s in _mine(poll_after(fresh), port) if s.sport == port]
    k = 1 if _bytes_here(fresh) else 0
    assert [(s.tx_bytes, s.tx_total, s.state, s.closed) for s in first] == [(1000 * k, 1000 * k, "ESTABLISHED", None)]
    assert [(s.tx_bytes, s.tx_total) for s in second] == [(300 * k, 1300 * k)]
    for s in (a, b, listener):
        s.close()


@pytest.mark.parametrize("family, addr, fam_name", FAMILIES, ids=["ipv4", "ipv6"])
def test_a_refused_connect_is_a_reset_received_by_the_connector(fresh, family, addr, fam_name):
    probe = socket.socket(family)
    probe.bind((addr, 0))
    port = probe.getsockname()[1]
    probe.close()  # nobody listens on port now
    s = socket.socket(family)
    with pytest.raises(ConnectionRefusedError):
        s.connect((addr, port))
    s.close()
    time.sleep(0.05)
    snap = poll_after(fresh)
    rows = _mine(snap, port)
    assert [(r.pid, r.direction, r.resets_received, r.resets_sent, r.state) for r in rows] == [
        (os.getpid(), "connect", 1, 0, "CLOSE")]
    assert rows[0] in snap.tcp_closed
    assert snap.tcp_resets_unowned >= 1  # the kernel answered the SYN for no socket


def test_an_abortive_close_is_a_reset_sent_by_the_closer_and_received_by_the_peer(fresh):
    server_comm = _name("trst")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    server = _serve_once(listener, server_comm, 10, 20, linger_zero=True)
    s = socket.socket()
    s.connect(("127.0.0.1", port))
    s.sendall(b"x" * 10)
    _recv_exactly(s, 20)
    assert os.waitpid(server, 0)[1] == 0
    with pytest.raises(ConnectionResetError):
        s.recv(1)
    s.close()
    listener.close()
    time.sleep(0.05)
    rows = _mine(poll_after(fresh), port)
    closer = next(r for r in rows if r.direction == "accept")
    peer = next(r for r in rows if r.direction == "connect")
    assert closer.comm == (server_comm if _bytes_here(fresh) else "")
    assert (closer.resets_sent, closer.resets_received) == (1, 0)
    assert (peer.resets_sent, peer.resets_received, peer.pid) == (0, 1, os.getpid())


def _nft(*args: str) -> None:
    subprocess.run(["nft", *args], check=True, capture_output=True)


def test_retransmits_are_counted_as_the_kernel_counts_them(fresh):
    """Retransmits provoked by dropping a connection's segments on loopback
    for a moment (an nftables rule on its port), compared with the sender's
    own count (TCP_INFO tcpi_total_retrans), while a 1-byte read() flood keeps
    ebpftop's syscall programs running on every CPU: the retransmit timer's
    softirq then often interrupts one of them, and a classic tracepoint
    program would be skipped (it was, 1 to 2 of 3 in 8 of 15 tries here).
    The rule is on the input hook: a segment dropped on output never left,
    and TCP sends it again as new data, not as a retransmission."""
    if shutil.which("nft") is None:
        reason = "this machine has no nft (nftables) to drop segments with (make test installs it)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    a = socket.socket()
    a.connect(("127.0.0.1", port))
    b, _ = listener.accept()
    table = f"ebpftop_test_{port}"
    floods = [subprocess.Popen(["dd", "if=/dev/zero", "of=/dev/null", "bs=1", "count=50000000"],
                               stderr=subprocess.DEVNULL) for _ in range(os.cpu_count() or 2)]
    _nft("add", "table", "inet", table)
    try:
        _nft("add", "chain", "inet", table, "in", "{ type filter hook input priority 0 ; }")
        _nft("add", "rule", "inet", table, "in", "tcp", "dport", str(port), "drop")
        a.sendall(b"r" * 100)
        time.sleep(0.7)  # the first retransmission comes after the minimum RTO, 200 ms
    finally:
        _nft("delete", "table", "inet", table)
    _recv_exactly(b, 100)
    for flood in floods:
        flood.kill()
        flood.wait()
    tcp_info = a.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    total_retrans = struct.unpack_from("I", tcp_info, 100)[0]  # struct tcp_info.tcpi_total_retrans
    rows = [s for s in _mine(poll_after(fresh), port) if s.sport == a.getsockname()[1]]
    assert total_retrans >= 1
    assert [s.retransmits for s in rows] == [total_retrans]
    for s in (a, b, listener):
        s.close()


def test_short_connections_whose_sockets_are_reused_are_each_reported_once(fresh):
    """Hundreds of connections opened and closed within one interval: the
    kernel reuses a closed socket's memory for the next, so a closed entry
    not yet read is sent on (tcp_evicted) instead of being overwritten."""
    n, size = 300, 777
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(512)
    port = listener.getsockname()[1]
    for _ in range(n):
        c = socket.create_connection(("127.0.0.1", port))
        a, _ = listener.accept()
        c.sendall(b"z" * size)
        _recv_exactly(a, size)
        c.close()
        a.close()
    listener.close()
    time.sleep(0.05)
    snap = poll_after(fresh)
    rows = _mine(snap, port)
    assert not snap.lost.get("tcp_traffic")
    connects = [r for r in rows if r.direction == "connect"]
    accepts = [r for r in rows if r.direction == "accept"]
    k = 1 if _bytes_here(fresh) else 0
    assert len(connects) == n and len(accepts) == n
    assert {(r.tx_total, r.rx_total, r.closed is not None) for r in connects} == {(size * k, 0, True)}
    assert {(r.tx_total, r.rx_total, r.closed is not None) for r in accepts} == {(0, size * k, True)}
    assert len({r.sport for r in connects}) == n  # each connection once
    # a closed socket's memory taken by the next accepted one (its LISTEN -> SYN_RECV) leaves the
    # closed row as it closed (issue 27: about half showed SYN_RECV)
    assert {r.state for r in rows} == {"CLOSE"}, sorted({r.state for r in rows})
