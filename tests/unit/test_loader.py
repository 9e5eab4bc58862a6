"""The loader's logic without a kernel: the program text and flags, the
per-set compile fallback, the decoders, and the joins between polls."""

from __future__ import annotations

import ctypes
import re
import time
from pathlib import Path
from types import SimpleNamespace as Fake

import pytest

from ebpftop import cdefs, sets
from ebpftop.capabilities import Capabilities
from ebpftop.sets import processes, tcp, tcp_traffic, udp
from ebpftop.sources import joins, program

BPF = Path(__file__).resolve().parents[2] / "bpf"


class Module:
    def __init__(self, names):
        self.names = names
        self.cleaned = False

    def close(self):
        self.cleaned = True


def loader(bad=(), together_fails=False):
    calls = []

    def load(names):
        calls.append(names)
        if any(n in bad for n in names):
            raise Exception(f"/virtual/main.c:3:1: error: {names[0]} does not compile\nmore")
        if together_fails and len(names) > 1:
            raise Exception("error: too many programs together")
        return Module(names)

    return load, calls


def test_every_set_loads_together_in_one_compile():
    load, calls = loader()
    module, loaded, failed = program.load_with_fallback(("tcp", "udp"), load)
    assert loaded == ("tcp", "udp") and failed == {} and calls == [("tcp", "udp")]


def test_a_set_that_fails_alone_is_left_out_with_its_error_and_the_rest_load():
    load, calls = loader(bad=("udp",))
    module, loaded, failed = program.load_with_fallback(("tcp", "udp", "syscalls"), load)
    assert loaded == ("tcp", "syscalls") and module.names == ("tcp", "syscalls")
    assert failed == {"udp": "failed to load: /virtual/main.c:3:1: error: udp does not compile"}


def test_sets_that_load_alone_but_not_together_all_say_so():
    load, _ = loader(together_fails=True)
    module, loaded, failed = program.load_with_fallback(("tcp", "udp"), load)
    assert module is None and loaded == ()
    assert failed == {"tcp": "failed to load: error: too many programs together",
                      "udp": "failed to load: error: too many programs together"}


def test_the_program_holds_the_enabled_sets_and_the_shared_hooks_they_need():
    text, flags = program.source_text(("tcp_traffic",), Capabilities(), None, BPF, machine="aarch64")
    assert '#line 1 "tcp_traffic.c"' in text and '#line 1 "sock_hooks.c"' in text
    assert '#line 1 "tcp.c"' not in text and '#line 1 "lifecycle.c"' not in text
    assert "-DEBPFTOP_TCP_TRAFFIC" in flags and "-DNR_READ=63" in flags
    assert f"-DLOST_TCP_TRAFFIC={sets.LOST_SLOT['tcp_traffic']}" in flags
    assert f"-DPROC_EXIT={cdefs.PROC_EXIT}" in flags
    # without task-local storage, lifecycle.c frees the per-thread scratch
    text, _ = program.source_text(("tcp",), Capabilities(task_storage=False), None, BPF)
    assert '#line 1 "lifecycle.c"' in text


def test_shared_hooks_call_each_enabled_sets_declared_handler():
    flags = sets.defines(("syscalls", "page_faults", "tcp"))
    assert "-DON_THREAD_CHANGED(tid)=do { syscalls_fold(tid); page_faults_fold(tid); } while (0)" in flags
    assert not [f for f in sets.defines(("tcp",)) if f.startswith("-DON_")]  # lifecycle.c then folds nothing
    for p in sets.PROBE_SETS:
        assert set(p.handlers) <= set(sets.HANDLER_EVENTS), p.name
        for fn in p.handlers.values():
            assert re.search(rf"static inline void {fn}\(", (BPF / p.c_file).read_text()), (p.name, fn)


def test_map_sizes_are_overridable_by_name_and_a_typo_is_an_error():
    assert "-DSYSCALLS_MAP_SIZE=32" in sets.defines(("syscalls",), {"SYSCALLS_MAP_SIZE": 32})
    with pytest.raises(ValueError, match="unknown map size SYSCALL_MAP_SIZE"):
        sets.defines((), {"SYSCALL_MAP_SIZE": 32})


def test_no_c_file_defines_a_constant_python_defines():
    """cdefs and probesets pass them as -D flags: a #define in C would be a
    second definition that could drift."""
    shared = {f.split("=")[0][2:] for f in cdefs.defines() + sets.defines(sets.NAMES)}
    shared |= {name for p in sets.PROBE_SETS for name in p.constants}
    for c in BPF.glob("*.[ch]"):
        defined = set(re.findall(r"^#define\s+(\w+)", c.read_text(), re.M))
        assert not (defined & shared), (c.name, defined & shared)


def test_every_c_file_is_declared():
    declared = {p.c_file for p in sets.PROBE_SETS} | set(sets.SHARED_FILES)
    assert {c.name for c in BPF.glob("*.c")} == declared


def test_every_probe_set_has_a_collector_parts_and_lost_counters():
    from ebpftop.sets.base import Collector

    for p in sets.PROBE_SETS:
        assert issubclass(p.collector, Collector) and p.parts, p.name
        assert (BPF / p.c_file).is_file() and p.c_file == f"{p.name}.c", p.name  # bpf/NAME.c beside sets/NAME.py
        for ring, method in p.collector.rings.items():
            assert callable(getattr(p.collector, method)) and f"BPF_RINGBUF_OUTPUT({ring}," in (BPF / p.c_file).read_text()
    assert sorted(sets.LOST_SLOT.values()) == list(range(len(sets.LOST_COUNTERS)))
    assert len(sets.PARTS) == sum(len(p.parts) for p in sets.PROBE_SETS)  # no two sets fill one part


def test_a_struct_decoded_by_hand_is_checked_against_the_c_as_it_compiles():
    checks = program.layout_checks({"proc_event": processes.ProcEventStruct})
    assert f"sizeof(struct proc_event) == {ctypes.sizeof(processes.ProcEventStruct)}" in checks
    assert "__builtin_offsetof(struct proc_event, args) == " in checks
    text, _ = program.source_text(("processes", "tcp_traffic"), Capabilities(), None, BPF)
    assert "__builtin_offsetof(struct tcp_conn_evicted, conn) == 8" in text
    assert "sizeof(struct cgroup_event) == 264" in text  # cgroups.c, in every module


def test_a_process_event_decodes_by_the_shared_constants():
    e = processes.ProcEventStruct()
    e.ts_ns, e.kind, e.pid, e.ppid, e.comm = time.monotonic_ns(), cdefs.PROC_EXEC, 7, 1, b"sh"
    e.filename, e.argc = b"/bin/sh", 2
    e.args[0].value, e.args[1].value = b"sh", b"-c"
    row = processes.event_from(e)
    assert (row.kind, row.pid, row.filename, row.args, row.exit_code) == ("exec", 7, "/bin/sh", ("sh", "-c"), None)
    assert abs(row.time - time.time()) < 1


def test_a_tcp_session_decodes_with_its_interval_bytes():
    addr = (ctypes.c_ubyte * 16)(127, 0, 0, 1)
    now = time.monotonic_ns()
    conn = Fake(pid=9, comm=b"srv", cgroup=0, family=2, saddr=addr, sport=80, daddr=addr, dport=5000,
              direction=cdefs.DIRECTION_ACCEPT, state=7, opened_ns=now - 2_000_000_000, closed_ns=now,
              tx_bytes=300, rx_bytes=40, retransmits=1, resets_sent=0, resets_received=1)
    s = tcp_traffic.session_of(conn, 100, 40)
    assert (s.comm, s.direction, s.state, s.saddr, s.tx_bytes, s.tx_total) == ("srv", "accept", "CLOSE", "127.0.0.1",
                                                                                100, 300)
    assert s.closed is not None and 1.9 < s.closed - s.opened < 2.1


def _udp(dir_, cookie=0, tgid=0, comm=b"", cgroup=0):
    addr = (ctypes.c_ubyte * 16)(127, 0, 0, 1)
    return (Fake(dir=dir_, cookie=cookie, tgid=tgid, comm=comm, family=2, laddr=addr, lport=1, raddr=addr, rport=2,
                 cgroup=cgroup),
            Fake(datagrams=1, bytes=10))


def test_a_received_datagram_waits_one_poll_for_its_owner_then_goes_out_unknown():
    owners = udp.UdpOwners()
    sent = _udp(cdefs.DIR_SENT, tgid=5, comm=b"tx")
    received = _udp(cdefs.DIR_RECEIVED, cookie=77)
    first = owners.entries([sent, received], lambda cookie: None, can_wait=True)
    assert [(e[0], e[1]) for e in first] == [(5, "tx")]  # the received one waits
    second = owners.entries([], lambda cookie: None, can_wait=True)
    assert [(e[0], e[1], e[7]) for e in second] == [(0, "", cdefs.DIR_RECEIVED)]
    # an owner that turns up within the wait claims it; without the hook nothing waits
    owners.entries([received], lambda cookie: None, can_wait=True)
    assert [(e[0], e[1], e[10]) for e in owners.entries([], lambda c: (8, "rx", 44), can_wait=True)] == [(8, "rx", 44)]
    assert [(e[0]) for e in owners.entries([received], lambda c: None, can_wait=False)] == [0]


def test_accepts_unclaimed_after_two_seconds_are_taken_unless_claimed_meanwhile():
    now = 10_000_000_000
    pending = [("young", Fake(ts_ns=now - 1_000_000_000)), ("old", Fake(ts_ns=now - 3_000_000_000)),
               ("claimed", Fake(ts_ns=now - 3_000_000_000))]
    taken = tcp.unclaimed_accepts(pending, now, take=lambda key: key != "claimed")
    assert taken == [pending[1][1]]


def test_deltas_of_counters_and_of_run_time_pairs():
    d = joins.Deltas({"tcp": 5})
    assert d.step({"tcp": 8, "udp": 2}) == {"tcp": 3, "udp": 2}
    assert d.step({"tcp": 8, "udp": 2}) == {"tcp": 0, "udp": 0}
    p = joins.Deltas({"prog": (100, 10)})
    assert p.step({"prog": (250, 13)}) == {"prog": (150, 3)}


def test_tcp_traffic_interval_bytes_and_a_closed_connection_after_it_settles():
    t = tcp_traffic.TcpTraffic()
    now = 50_000_000_000
    conn = Fake(opened_ns=1, closed_ns=0, tx_bytes=1000, rx_bytes=10)
    open_, closed, delete = t.step([(0xA, conn)], now)
    assert [(r[1], r[2]) for r in open_] == [(1000, 10)] and closed == [] and delete == []
    conn = Fake(opened_ns=1, closed_ns=now - 1_000, tx_bytes=1500, rx_bytes=10)  # closed a microsecond ago
    open_, closed, delete = t.step([(0xA, conn)], now)
    assert [(r[1], r[2]) for r in open_] == [(500, 0)] and delete == []  # settles one more poll
    open_, closed, delete = t.step([(0xA, conn)], now + tcp_traffic.TCP_CLOSED_SETTLE_NS)
    assert [(r[1], r[2]) for r in closed] == [(0, 0)] and delete == [0xA]
    # a later socket at the same address is a new connection
    fresh = Fake(opened_ns=2, closed_ns=0, tx_bytes=7, rx_bytes=0)
    open_, _, _ = t.step([(0xA, fresh)], now)
    assert [r[1] for r in open_] == [7]


def test_every_program_is_owned_and_shared_hooks_live_in_their_file():
    owners = program.program_owners(sets.NAMES, BPF, Capabilities(page_fault_tracepoint=False))
    assert owners["tracepoint__sock__inet_sock_set_state"] == ("tcp", "tcp_traffic")
    assert owners["tracepoint__sock__sock_recv_length"] == ("tcp_traffic", "udp")
    assert owners["udp_egress"] == ("udp",) and owners["raw_tracepoint__tcp_retransmit_skb"] == ("tcp_traffic",)
    for c_file in BPF.glob("*.c"):
        for raw, group, event in program.PROBE_MACRO.findall(c_file.read_text()):
            name = f"raw_tracepoint__{raw}" if raw else f"tracepoint__{group}__{event}"
            assert name in owners or c_file.name in sets.ALWAYS_SHARED_FILES, (c_file.name, name)
            if c_file.name in sets.ALWAYS_SHARED_FILES:
                continue  # in every module, for no set (cgroups.c: containers' names)
            if c_file.name in sets.SHARED_FILES:
                hook = f"raw_syscalls/{raw}" if raw else f"{group}/{event}"
                assert sets.SHARED_HOOK_FILES[hook] == c_file.name
    # every set that acts on a syscall's entry shares the one raw sys_enter program (sys_enter.c)
    assert owners["raw_tracepoint__sys_enter"] == ("read_latency", "syscalls", "file_opens", "tcp", "processes")
    assert owners["page_fault_event"] == ("page_faults",)
    assert "page_fault_event" not in program.program_owners(sets.NAMES, BPF, Capabilities())  # the tracepoint's there
    assert program.program_owners(("udp",), BPF, Capabilities()).keys() == {"udp_egress", "udp_ingress",
                                                            "tracepoint__sock__sock_recv_length"}


def test_a_run_the_kernel_skipped_is_charged_to_every_set_the_program_serves():
    owners = {"tracepoint__sock__inet_sock_set_state": ("tcp", "tcp_traffic"), "udp_egress": ("udp",)}
    skipped = joins.skipped_by_set({"tracepoint__sock__inet_sock_set_state": 3, "udp_egress": 0, "unknown_prog": 9},
                                   owners)
    assert skipped == {"tcp": 3, "tcp_traffic": 3}


def test_bpf_program_holders_are_read_from_proc_fdinfo(tmp_path):
    from ebpftop.sources import bpf_syscall

    def proc(pid, comm, fds):
        (tmp_path / str(pid) / "fd").mkdir(parents=True)
        (tmp_path / str(pid) / "fdinfo").mkdir()
        (tmp_path / str(pid) / "comm").write_text(comm + "\n")
        for fd, (target, info) in fds.items():
            (tmp_path / str(pid) / "fd" / str(fd)).symlink_to(target)
            (tmp_path / str(pid) / "fdinfo" / str(fd)).write_text(info)

    proc(10, "bpftrace", {3: ("anon_inode:bpf-prog", "pos:\t0\nprog_type:\t2\nprog_id:\t41\n"),
                          4: ("anon_inode:bpf_link", "link_type:\tperf\nlink_id:\t5\nprog_id:\t42\n"),
                          5: ("anon_inode:bpf-map", "map_id:\t7\n"),
                          6: ("/dev/null", "pos:\t0\n")})
    proc(11, "systemd", {9: ("anon_inode:bpf-prog", "prog_id:\t41\n")})
    (tmp_path / "self").mkdir()
    assert bpf_syscall.prog_holders(str(tmp_path)) == {41: [(10, "bpftrace"), (11, "systemd")], 42: [(10, "bpftrace")]}


def test_probe_costs_round_trip_with_their_holders_and_old_recordings_read_as_ours():
    from ebpftop.model import ProbeCost

    cost = ProbeCost("trace_connect", 5, 500, prog_id=9, prog_type="kprobe", ours=False, holders=((42, "falco"),))
    back = ProbeCost.from_dict(cost.to_dict(5.0))
    assert back._replace(hook_name="") == cost and back.hook == cost.hook == "kprobe trace_connect"
    # where it was attached, as the live source named it, comes back from a recording
    ours = ProbeCost("raw_tracepoint__sys_enter", 5, 500, hook_name="raw_syscalls:sys_enter (raw)")
    assert ProbeCost.from_dict(ours.to_dict(5.0)).hook == "raw_syscalls:sys_enter (raw)"
    old = {"name": "tracepoint__syscalls__sys_exit_read", "runs": 1, "run_time_ns": 2}
    assert ProbeCost.from_dict(old) == ProbeCost("tracepoint__syscalls__sys_exit_read", 1, 2)
    assert ProbeCost.from_dict(old).owner == "ebpftop"


def test_a_set_whose_maps_cannot_be_read_leaves_its_parts_empty_for_the_interval_and_the_others_go_on():
    """A lookup failed once under test (BCC raised KeyError on a per-CPU
    array) and the exception ended the exporter: now the interval goes out
    without that set's parts, with a notice, and the next poll reads it."""
    from ebpftop.sets.base import Collector
    from ebpftop.sources.live import LiveSource

    class Lost:
        def __getitem__(self, _key):
            return [0, 0]

    class Kernel:
        def consume_rings(self):
            pass

        def table(self, _name):
            return Lost()

        def program_fds(self):
            return {}

    class Failing(Collector):
        calls = 0

        def collect(self, ctx):
            Failing.calls += 1
            if Failing.calls == 1:
                raise KeyError("profile_idle")
            return {"profile_idle": 7}

    class Fine(Collector):
        def collect(self, ctx):
            return {"cpu_estimated": 3}

    source = LiveSource(interval_s=1.0, probe_sets=("cpu", "profile"))
    source.kernel = Kernel()
    source.collectors = {"cpu": Fine(None, {}), "profile": Failing(None, {})}
    source.status = {"cpu": "ok", "profile": "ok"}
    first = source.poll()
    assert first.cpu_estimated == 3 and first.profile_idle == 0
    assert any("profile: could not read its maps this interval (KeyError" in n for n in first.notices)
    second = source.poll()
    assert second.profile_idle == 7 and not second.notices
