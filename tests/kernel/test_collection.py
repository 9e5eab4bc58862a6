"""Known workloads, run under a unique process name, against the real kernel:
ebpftop must report them exactly where the kernel allows."""

from __future__ import annotations

import os

import pytest

from tests.kernel.conftest import poll_after

N = 1000


def test_file_opens_counted_exactly(fresh, workload, tmp_path):
    target = tmp_path / f"target-{workload.comm}"
    target.write_text("x")
    missing = tmp_path / f"missing-{workload.comm}"
    done = workload.run("opens", N, target)
    failed = workload.run("opens", 37, missing)
    snap = poll_after(fresh)
    rows = {r.path: r for r in snap.file_opens if r.comm == workload.comm}
    assert rows[str(target)].count == N
    assert rows[str(target)].errors == 0
    assert rows[str(target)].pid == done["pid"]
    assert rows[str(missing)].count == 37
    assert rows[str(missing)].errors == 37
    assert rows[str(missing)].pid == failed["pid"]


def test_long_path_is_truncated_and_marked(fresh, workload, tmp_path):
    # A real path of about 400 bytes (each component under NAME_MAX).
    d = tmp_path
    for i in range(4):
        d = d / (f"{i}" * 90)
    d.mkdir(parents=True)
    target = d / "file"
    target.write_text("x")
    assert len(str(target)) > 256
    workload.run("opens", 3, target)
    snap = poll_after(fresh)
    rows = [r for r in snap.file_opens if r.comm == workload.comm and r.path.startswith(str(tmp_path))]
    assert len(rows) == 1
    assert rows[0].truncated
    assert rows[0].count == 3
    assert rows[0].path == str(target)[:255]


def test_syscalls_counted_for_the_right_process(fresh, workload):
    done = workload.run("syscalls", 100_000)
    snap = poll_after(fresh)
    rows = [r for r in snap.syscalls if r.comm == workload.comm]
    assert len(rows) == 1
    assert rows[0].count >= 100_000
    # exec, the dynamic loader and exit add a few dozen; nothing near double
    assert rows[0].count < 100_000 + 500
    assert rows[0].pids == 1
    assert rows[0].by_pid[0][0] == done["pid"]


def test_syscalls_follow_a_rename(fresh, workload):
    new_name = "ebr" + workload.comm[3:]
    workload.run("rename", 5000, new_name)
    snap = poll_after(fresh)
    counts = {r.comm: r.count for r in snap.syscalls}
    assert 5000 <= counts[workload.comm] < 5000 + 500
    assert 5000 <= counts[new_name] < 5000 + 50


def test_threads_that_exit_or_rename_before_the_poll_are_counted(fresh, workload):
    """Each thread's count is folded when it exits or renames itself (the
    folded map is where BCC >= 0.28's ctypes values once crashed the poll)."""
    n, k = 20_000, 4
    new_name = "ebt" + workload.comm[3:-1] + "t"
    done = workload.run("threads", n, k, new_name)
    snap = poll_after(fresh)
    counts = {r.comm: r for r in snap.syscalls}
    main = counts[workload.comm]
    assert k * n <= main.count < k * n + 500
    assert main.by_pid[0][0] == done["pid"]
    assert n <= counts[new_name].count < n + 50
    assert counts[new_name].by_pid[0][0] == done["pid"]


def test_read_latency_mass_in_the_right_buckets(fresh, workload):
    n, delay_us = 40, 3000
    done = workload.run("pipe", n, delay_us)
    snap = poll_after(fresh)
    hist = snap.read_latency.by_comm()[workload.comm]
    slow = sum(b.count for b in hist.buckets if b.low_ns >= 2**21)  # >= 2.1 ms
    fast = sum(b.count for b in hist.buckets if b.high_ns <= 2**17)  # < 131 us
    # Each slow read waits at least 3 ms for the writer: none can be faster.
    assert slow >= n
    # A fast read lands among the slow ones only if descheduled for > 2 ms.
    assert slow <= n + 2
    assert fast >= n - 2
    assert hist.percentile(99) >= 2**21
    procs = [p for p in snap.read_latency.by_process if p.comm == workload.comm]
    assert [p.pid for p in procs] == [done["pid"]]


def test_write_latency_mass_in_the_right_buckets(fresh, workload):
    n, delay_us = 40, 3000
    done = workload.run("writes", n, delay_us)
    snap = poll_after(fresh)
    hist = snap.write_latency.by_comm()[workload.comm]
    slow = sum(b.count for b in hist.buckets if b.low_ns >= 2**21)  # >= 2.1 ms
    fast = sum(b.count for b in hist.buckets if b.high_ns <= 2**17)  # < 131 us
    # each pipe write waits for the reader's 3 ms sleep; /dev/null writes do not
    assert n - 1 <= slow <= n + 2  # the first may find the reader already mid-sleep
    assert fast >= n - 2
    assert hist.mean_ns and hist.sum_ns >= (n - 1) * 2_000_000
    procs = [p for p in snap.write_latency.by_process if p.comm == workload.comm]
    assert [p.pid for p in procs] == [done["pid"]]
    # and none of it is counted as read() latency
    assert workload.comm not in snap.read_latency.by_comm() or \
        sum(b.count for b in snap.read_latency.by_comm()[workload.comm].buckets if b.low_ns >= 2**21) == 0


def test_page_faults_at_least_the_pages_touched(fresh, workload):
    k = 5000
    done = workload.run("faults", k)
    snap = poll_after(fresh)
    rows = [r for r in snap.page_faults if r.comm == workload.comm]
    assert [r.pid for r in rows] == [done["pid"]]
    assert rows[0].count >= k
    assert rows[0].count < k + 500  # loader and libc: a few dozen


def _tcp_rows(snap, comm):
    return [c for c in snap.tcp if c.comm == comm]


def test_tcp_connect_and_accept_ipv4(fresh, workload):
    done = workload.run("tcp4")
    rows = _tcp_rows(poll_after(fresh), workload.comm)
    connect = [c for c in rows if c.direction == "connect"]
    accept = [c for c in rows if c.direction == "accept"]
    assert len(connect) == 1 and len(accept) == 1, rows
    assert connect[0].pid == accept[0].pid == done["pid"]
    assert connect[0].family == accept[0].family == "ipv4"
    assert (connect[0].saddr, connect[0].sport) == ("127.0.0.1", done["client_port"])
    assert (connect[0].daddr, connect[0].dport) == ("127.0.0.1", done["listen_port"])
    assert (accept[0].saddr, accept[0].sport) == ("127.0.0.1", done["listen_port"])
    assert (accept[0].daddr, accept[0].dport) == ("127.0.0.1", done["client_port"])


def test_tcp_connect_and_accept_ipv6(fresh, workload):
    done = workload.run("tcp6")
    rows = _tcp_rows(poll_after(fresh), workload.comm)
    connect = [c for c in rows if c.direction == "connect"]
    accept = [c for c in rows if c.direction == "accept"]
    assert len(connect) == 1 and len(accept) == 1, rows
    assert connect[0].pid == accept[0].pid == done["pid"]
    assert connect[0].family == accept[0].family == "ipv6"
    assert (connect[0].saddr, connect[0].sport, connect[0].daddr, connect[0].dport) == (
        "::1", done["client_port"], "::1", done["listen_port"])
    assert (accept[0].saddr, accept[0].sport, accept[0].daddr, accept[0].dport) == (
        "::1", done["listen_port"], "::1", done["client_port"])


def test_tcp_accept_without_address_buffer_is_reported_owner_unknown(fresh, workload):
    done = workload.run("tcp4null")
    snap = poll_after(fresh, 2.5)  # unclaimed accepts are reported after 2 s
    mine = [c for c in snap.tcp if done["listen_port"] in (c.sport, c.dport)]
    connect = [c for c in mine if c.direction == "connect"]
    accept = [c for c in mine if c.direction == "accept"]
    assert len(connect) == 1 and connect[0].comm == workload.comm
    assert len(accept) == 1
    assert accept[0].pid == 0 and accept[0].comm == ""
    assert (accept[0].sport, accept[0].dport) == (done["listen_port"], done["client_port"])


def test_nothing_counted_twice_across_polls(fresh, workload, tmp_path):
    target = tmp_path / "twice"
    target.write_text("x")
    workload.run("opens", 10, target)
    first = poll_after(fresh)
    second = poll_after(fresh)
    assert sum(r.count for r in first.file_opens if r.comm == workload.comm and r.path == str(target)) == 10
    assert not [r for r in second.file_opens if r.comm == workload.comm]
    assert not [r for r in second.syscalls if r.comm == workload.comm]


def test_no_loss_reported_under_normal_load(fresh, workload):
    workload.run("syscalls", 10_000)
    snap = poll_after(fresh)
    assert all(v == 0 for v in snap.lost.values()), snap.lost
    assert os.geteuid() == 0
    # each process a row names carries its start time, for the TUI's k (act.py): this one's too
    from ebpftop import act

    assert snap.starts[os.getpid()] == act.start_time(os.getpid())


def test_probe_cost_counts_our_programs_runs(fresh, workload):
    assert fresh.set_probe_stats(True) == "ok"
    try:
        fresh.poll()
        workload.run("syscalls", 50_000)
        snap = poll_after(fresh)
        costs = {p.hook: p for p in snap.probes}
        sys_enter = costs["raw_syscalls:sys_enter (raw)"]
        assert sys_enter.runs >= 50_000
        assert 0 < sys_enter.avg_ns < 100_000
        fault_hook = ("exceptions:page_fault_user" if snap.capabilities["uses"]["page_fault_tracepoint"]
                      else "perf:page-faults (user mode)")
        assert costs[fault_hook].runs > 0
        assert snap.probe_stats == "ok"
    finally:
        assert fresh.set_probe_stats(False) == "off"
    # off again: the statistics stop, and the global sysctl was never touched
    assert open("/proc/sys/kernel/bpf_stats_enabled").read().strip() == "0"
    workload.run("syscalls", 10_000)
    assert poll_after(fresh).probes == ()


def test_opening_a_watched_file_raises_one_alert_with_pid_and_uid(fresh, workload):
    import subprocess

    done = workload.run("opens", 1, "/etc/shadow")
    denied = subprocess.Popen(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "cat", "/etc/shadow"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    denied.wait()
    alerts = fresh.poll_alerts()  # what the UI reads every half second
    mine = [a for a in alerts if a.comm == workload.comm]
    assert len(mine) == 1
    assert (mine[0].pid, mine[0].uid, mine[0].path, mine[0].result) == (done["pid"], 0, "/etc/shadow", "ok")
    assert mine[0].ppid == os.getpid()  # forked by this test
    theirs = [a for a in alerts if a.pid == denied.pid]
    assert len(theirs) == 1
    assert (theirs[0].uid, theirs[0].comm, theirs[0].result) == (65534, "cat", "EACCES")
    # the interval's snapshot carries them too, for --json and recordings
    snap = poll_after(fresh)
    assert [a.pid for a in snap.alerts if a.path == "/etc/shadow"] == [done["pid"], denied.pid]


def test_creat_is_an_open_and_raises_an_alert(fresh, workload, tmp_path):
    """creat(2) was not traced: no row, and no alert for a watched path."""
    import subprocess

    target = tmp_path / f"created-{workload.comm}"
    done = workload.run("creats", 25, target)
    assert done["ok"] == 25
    # as nobody, creat() of /etc/shadow fails (EACCES) and must still alert
    nobody = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                             str(workload.path), "creats", "1", "/etc/shadow"], capture_output=True, text=True)
    assert nobody.returncode == 0, nobody.stderr
    snap = poll_after(fresh)
    rows = {r.path: r for r in snap.file_opens if r.comm == workload.comm}
    assert (rows[str(target)].count, rows[str(target)].errors, rows[str(target)].pid) == (25, 0, done["pid"])
    alerts = [a for a in snap.alerts if a.comm == workload.comm and a.path == "/etc/shadow"]
    assert [(a.uid, a.result) for a in alerts] == [(65534, "EACCES")], alerts


def test_an_alert_drained_by_the_interval_poll_still_reaches_poll_alerts(fresh, workload):
    fresh.poll_alerts()  # the TUI reads alerts every half second...
    done = workload.run("opens", 1, "/etc/shadow")
    snap = poll_after(fresh)  # ...but this time the interval's poll drained the ring first
    assert [a.pid for a in snap.alerts if a.comm == workload.comm] == [done["pid"]]
    assert [a.pid for a in fresh.poll_alerts() if a.comm == workload.comm] == [done["pid"]]


def test_a_burst_of_alerts_is_counted_never_silently_dropped(fresh, workload):
    n = 2000
    workload.run("opens", n, "/etc/shadow")
    snap = poll_after(fresh)
    got = len([a for a in snap.alerts if a.comm == workload.comm])
    assert got < n  # the 64 KiB ring buffer cannot hold them all between two reads...
    assert got + snap.lost["alerts"] == n  # ...and every one it could not hold is counted


def test_a_watched_directory_covers_the_files_in_it(fresh, workload, tmp_path):
    from ebpftop import watch

    table = fresh.kernel.table("watched_paths")
    import ctypes

    for h in watch.hashes([f"{tmp_path}/keys/*"]):
        table[ctypes.c_ulonglong(h)] = ctypes.c_ubyte(1)
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "id_ed25519").write_text("x")
    workload.run("opens", 2, tmp_path / "keys" / "id_ed25519")
    workload.run("opens", 1, tmp_path / "keys" / "not-yet-there")
    workload.run("opens", 1, tmp_path / "elsewhere")
    alerts = [a for a in fresh.poll_alerts() if a.comm == workload.comm]
    assert sorted((a.path.rsplit("/", 1)[1], a.result) for a in alerts) == [
        ("id_ed25519", "ok"), ("id_ed25519", "ok"), ("not-yet-there", "ENOENT")]


def test_fork_exec_exit_rows_exact(fresh, workload):
    k = 5
    done = workload.run("forkexec", k, "/bin/true", "true", "--first", "second-arg")
    snap = poll_after(fresh)
    pid = done["pid"]
    forks = [e for e in snap.processes if e.kind == "fork" and e.ppid == pid]
    assert len(forks) == k
    assert {e.comm for e in forks} == {workload.comm}
    children = {e.pid for e in forks}
    exits = {e.pid: e for e in snap.processes if e.kind == "exit" and e.pid in children}
    assert sorted(e.exit_code for e in exits.values()) == list(range(k))
    assert all(e.lifetime_s is not None and 0 < e.lifetime_s < 5 for e in exits.values())
    execs = [e for e in snap.processes if e.kind == "exec" and e.pid == pid]
    # two execs of one pid: the test starting the workload, then the workload starting /bin/true
    assert [e.filename for e in execs] == ["/bin/true", str(workload.path)]
    assert execs[1].args[1:] == ("forkexec", str(k), "/bin/true")
    assert execs[0].args == ("true", "--first", "second-arg")
    assert execs[0].comm == "true"
    mine = [e for e in snap.processes if e.kind == "exit" and e.pid == pid]
    assert len(mine) == 1 and mine[0].exit_code == 0 and mine[0].comm == "true"
    # newest first
    times = [e.time for e in snap.processes]
    assert times == sorted(times, reverse=True)


def _udp_rows(snap, *comms):
    return [f for f in snap.udp if f.comm in comms]


@pytest.mark.parametrize("mode, family, loopback", [("udp4", "ipv4", "127.0.0.1"), ("udp6", "ipv6", "::1")])
def test_udp_datagrams_and_bytes_exact_both_ends(fresh, workload, mode, family, loopback):
    """sendto() (v4) or connect()+send() (v6) of N datagrams to a socket that a
    child of another name reads: the sender's flow counts exactly N and N x
    size, and the received ones go to the reader, not to the sender (in whose
    softirq they arrive on loopback)."""
    n, size = 300, 777
    done = workload.run(mode, n, size)
    reader = workload.comm + "r"
    rows = [f for f in _udp_rows(poll_after(fresh), workload.comm, reader, "")
            if {f.lport, f.rport} == {done["sender_port"], done["receiver_port"]}]
    sent = [f for f in rows if f.tx_datagrams]
    received = [f for f in rows if f.rx_datagrams]
    assert len(sent) == 1 and len(received) == 1, rows
    s, r = sent[0], received[0]
    assert (s.pid, s.comm, s.family) == (done["pid"], workload.comm, family)
    assert (s.laddr, s.lport, s.raddr, s.rport) == (loopback, done["sender_port"], loopback, done["receiver_port"])
    assert (s.tx_datagrams, s.tx_bytes, s.rx_datagrams, s.rx_bytes) == (n, n * size, 0, 0)
    if fresh.caps.sock_recv_length:
        assert (r.pid, r.comm, r.family) == (done["reader_pid"], reader, family)
    else:  # no sock:sock_recv_length: received datagrams are counted exactly, owner unknown
        assert (r.pid, r.comm, r.family) == (0, "", family)
    assert (r.laddr, r.lport, r.raddr, r.rport) == (loopback, done["receiver_port"], loopback, done["sender_port"])
    assert (r.tx_datagrams, r.tx_bytes, r.rx_datagrams, r.rx_bytes) == (0, 0, n, n * size)
    assert not _udp_rows(poll_after(fresh), workload.comm, reader)  # nothing counted twice


def test_udp_received_by_a_socket_nobody_reads_has_owner_unknown(fresh, workload):
    done = workload.run("udp4unread", 7, 100)
    first = poll_after(fresh)
    mine = [f for f in first.udp if done["receiver_port"] in (f.lport, f.rport)]
    if fresh.caps.sock_recv_length:
        assert [(f.comm, f.tx_datagrams) for f in mine] == [(workload.comm, 7)]  # received ones wait a poll for an owner
        second = poll_after(fresh)
        mine = [f for f in second.udp if done["receiver_port"] in (f.lport, f.rport)]
    else:  # owners are never known here: received ones go out at once
        mine = [f for f in mine if f.rx_datagrams]
    assert len(mine) == 1, mine
    assert (mine[0].pid, mine[0].comm, mine[0].rx_datagrams, mine[0].rx_bytes) == (0, "", 7, 700)
    assert (mine[0].lport, mine[0].rport) == (done["receiver_port"], done["sender_port"])


def _udp_pair(family: int, loopback: str):
    import socket

    receiver = socket.socket(family, socket.SOCK_DGRAM)
    receiver.bind((loopback, 0))
    sender = socket.socket(family, socket.SOCK_DGRAM)
    sender.connect(receiver.getsockname())
    return sender, receiver


def _my_udp(snap, port: int):
    """This process's flows on port; where received datagrams' owners cannot
    be known (no sock:sock_recv_length), those with the owner unknown."""
    owners = (os.getpid(),) if snap.capabilities["uses"]["sock_recv_length"] else (os.getpid(), 0)
    return [f for f in snap.udp if f.pid in owners and port in (f.lport, f.rport)]


def _check_udp_both_ways(fresh, sender, receiver, n: int, size: int, send) -> None:
    for _ in range(n):
        send()
    for _ in range(n):
        assert len(receiver.recv(size + 1)) == size
    rows = _my_udp(poll_after(fresh), sender.getsockname()[1])
    sent = [(f.tx_datagrams, f.tx_bytes) for f in rows if f.lport == sender.getsockname()[1]]
    received = [(f.rx_datagrams, f.rx_bytes) for f in rows if f.lport == receiver.getsockname()[1]]
    assert sent == [(n, n * size)] and received == [(n, n * size)], rows


def test_udp_with_ip_options_and_ipv6_extension_headers(fresh):
    """Headers the fast path does not parse: IPv4 options, an IPv6
    destination-options header (each read through the helper)."""
    import socket

    sender, receiver = _udp_pair(socket.AF_INET, "127.0.0.1")
    sender.setsockopt(socket.IPPROTO_IP, socket.IP_OPTIONS, b"\x01\x01\x01\x00")  # NOP NOP NOP END: 24-byte header
    _check_udp_both_ways(fresh, sender, receiver, 11, 300, lambda: sender.send(b"o" * 300))

    sender, receiver = _udp_pair(socket.AF_INET6, "::1")
    pad = b"\x00\x00\x01\x04\x00\x00\x00\x00"  # next header, length 0 (8 bytes), PadN of 4
    sender.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_DSTOPTS, pad)
    _check_udp_both_ways(fresh, sender, receiver, 13, 200, lambda: sender.send(b"e" * 200))


def test_udp_gso_counts_every_segment(fresh):
    """One send() of 10 x 1000 bytes with UDP_SEGMENT: ten datagrams each way."""
    import socket

    sender, receiver = _udp_pair(socket.AF_INET, "127.0.0.1")
    udp_segment = 103  # UDP_SEGMENT, linux/udp.h
    sender.setsockopt(socket.IPPROTO_UDP, udp_segment, 1000)
    sender.send(b"g" * 10_000)
    for _ in range(10):
        assert len(receiver.recv(2000)) == 1000
    rows = _my_udp(poll_after(fresh), sender.getsockname()[1])
    sent = [(f.tx_datagrams, f.tx_bytes) for f in rows if f.tx_datagrams]
    received = [(f.rx_datagrams, f.rx_bytes) for f in rows if f.rx_datagrams]
    assert sent == [(10, 10_000)] and received == [(10, 10_000)], rows


@pytest.mark.parametrize("root, reason", [
    (None, "needs the cgroup v2 hierarchy mounted"),
    ("/tmp", "cannot attach to the cgroup v2 root /tmp"),  # a directory, but no cgroup
])
def test_udp_without_a_usable_cgroup_says_why_and_the_rest_run(monkeypatch, root, reason):
    from ebpftop.sources import live
    from tests.kernel.test_lifecycle import cgroup_programs, prog_ids

    monkeypatch.setattr(live.bpf_syscall, "cgroup2_root", lambda _mounts: root)
    before = prog_ids()
    source = live.LiveSource(interval_s=1.0, probe_sets=("udp", "syscalls"))
    try:
        status = source.start()
        assert status["syscalls"] == "ok"
        assert status["udp"].startswith(reason), status
        ours = prog_ids() - before
        snap = source.poll()
        assert snap.udp == () and snap.syscalls
    finally:
        source.close()
        monkeypatch.undo()
    assert not set(cgroup_programs()) & ours  # nothing of ours reached the cgroup
