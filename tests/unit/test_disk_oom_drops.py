"""Disk I/O, OOM kills and drops (issue 26) without a kernel: what the
collectors make of their maps and events, the names they give (devices,
drop reasons, op kinds), and what the running kernel's format files tell
them (tests/unit/data holds those of Linux 6.18)."""

from __future__ import annotations

import ctypes
import sys
import time
from pathlib import Path
from types import SimpleNamespace

from ebpftop.sets import disk, drops, oom
from ebpftop.sets.base import PollContext
from ebpftop.sets.tcp_traffic import TcpConnStruct
from tests.unit.snapshots import every_part_snapshot

DATA = Path(__file__).parent / "data"


def fmt(name: str) -> str:
    return (DATA / f"{name}.format").read_text()


# -- disk ---------------------------------------------------------------------


def test_dev_t_is_split_as_the_block_tracepoints_print_it():
    assert disk.minorbits(lambda tp: fmt("block_rq_complete"), "6.18.44") == {"DISK_MINORBITS": 20, "DISK_RQ_ARG": 0}
    assert disk.minorbits(lambda tp: "print fmt: \"%d,%d\", ((unsigned int) ((REC->dev) >> 8))", "6.1.0") == \
        {"DISK_MINORBITS": 8, "DISK_RQ_ARG": 0}
    assert disk.minorbits(lambda tp: "", "6.1.0")["DISK_MINORBITS"] == disk.MINORBITS


def test_the_request_is_the_raw_tracepoints_second_argument_before_linux_5_11():
    assert [disk.rq_arg(r) for r in ("5.8.0", "5.10.0-28-amd64", "5.11.0", "6.18.44-fc-v1300")] == [1, 1, 0, 0]


def test_devices_are_named_as_sys_dev_block_names_them_and_the_name_is_kept(tmp_path):
    d = tmp_path / "dev" / "block" / "7:3"
    d.mkdir(parents=True)
    (d / "uevent").write_text("MAJOR=7\nMINOR=3\nDEVNAME=loop3\nDEVTYPE=disk\n")
    names = disk.DeviceNames(str(tmp_path))
    assert names(7, 3) == "loop3"
    assert names(8, 0) == "8:0"  # not (yet) in /sys: its numbers, asked again next time
    (d / "uevent").unlink()
    assert names(7, 3) == "loop3"  # detached before its interval was read: still its name
    d8 = tmp_path / "dev" / "block" / "8:0"
    d8.mkdir()
    (d8 / "uevent").write_text("DEVNAME=sda\n")
    assert names(8, 0) == "sda"


def test_op_kinds_follow_the_c_constants():
    assert [disk.op_name(i) for i in range(5)] == ["read", "write", "discard", "flush", "other"]
    assert disk.op_name(99) == "other"
    assert disk.CONSTANTS["DISK_OP_FLUSH"] == 3


class _ByCtypesInt:
    """An array map as BCC's: indexed by ctypes ints."""

    def __init__(self, rows):
        self.rows = rows

    def __getitem__(self, key):
        return self.rows[key.value]

    def __setitem__(self, key, value):
        self.rows[key.value] = value


class DiskKernel:
    """disk_procs and disk_hists as sources/kernel.py's drain_percpu hands
    them over (the CPUs' copies summed), and the threshold array."""

    def __init__(self):
        self.procs: list = []
        self.hists: list = []
        self.threshold = _ByCtypesInt([None])

    def drain_percpu(self, name, key_fields, value_fields):
        rows = self.procs if name == "disk_procs" else self.hists
        out = list(rows)
        rows.clear()
        return out

    def table(self, name):
        assert name == "disk_slow_threshold"
        return self.threshold

    def symbolizer(self):
        return SimpleNamespace(kernel=lambda addr: {0xFFFF0001: "wb_workfn"}.get(addr, f"{addr:#x}"))


def hist_slots(total: dict, queued: dict, device: dict) -> list:
    slots = [0] * (3 * disk.HIST_SLOTS)
    for part, h in enumerate((total, queued, device)):
        for slot, n in h.items():
            slots[part * disk.HIST_SLOTS + slot] = n
    return slots


def test_the_collector_names_devices_and_work_functions_and_splits_the_latency(monkeypatch):
    k = DiskKernel()
    c = disk.DiskCollector(k, {"slow_io_ms": 2.5})
    c.devices = lambda major, minor: {(254, 0): "vda", (7, 3): "loop3"}[(major, minor)]
    c.start()
    assert k.threshold.rows[0].value == 2_500_000
    k.procs += [
        ((1, 0, 100, 254, 0, 1, b"postgres\0"), (10, 40960, 10 * 500_000, 0)),
        ((1, 0xFFFF0001, 91, 254, 0, 1, b"kworker/u8:2\0"), (4, 4 * 131072, 4 * 3_000_000, 1)),
        ((1, 0, 100, 7, 3, 0, b"postgres\0"), (2, 8192, 200_000, 0)),
    ]
    k.hists += [((254, 0, 1), (hist_slots({18: 10, 21: 4}, {9: 14}, {18: 10, 21: 4}), [17_000_000, 9_000, 16_990_000])),
                ((7, 3, 0), (hist_slots({16: 2}, {}, {}), [200_000, 0, 0]))]
    out = c.collect(PollContext(0))
    rows = {(r.comm, r.device, r.op): r for r in out["disk_io"]}
    assert rows[("postgres", "vda", "write")].bytes == 40960 and rows[("postgres", "vda", "write")].avg_ns == 500_000
    kw = rows[("kworker/u8:2", "vda", "write")]
    assert kw.work == "wb_workfn" and kw.errors == 1 and kw.pid == 91
    devices = {(d.device, d.op): d for d in out["disk_devices"]}
    vda = devices[("vda", "write")]
    assert (vda.ops, vda.bytes) == (14, 40960 + 4 * 131072)  # from the processes' rows
    assert vda.latency.count == 14 and vda.queued.count == 14 and vda.on_device.count == 14
    assert vda.latency.sum_ns == 17_000_000
    assert devices[("loop3", "read")].queued.count == 0  # no issue seen: not measured
    assert out["disk_slow_ns"] == 2_500_000 and out["disk_slow"] == ()
    assert c.set_option("slow_io_ms", 0) and c.collect(PollContext(0))["disk_slow_ns"] == 0
    assert not c.set_option("profile_hz", 99)


def test_a_slow_io_event_is_decoded_with_its_device_and_kworker_function():
    k = DiskKernel()
    c = disk.DiskCollector(k, {})
    c.devices = lambda major, minor: "vda"
    c.start()
    assert c.slow_ns == 10_000_000  # the default
    e = disk.SlowEventStruct(ts_ns=time.monotonic_ns(), latency_ns=15_000_000, queued_ns=4_000_000, sector=2048,
                             cgroup=1, work_fn=0xFFFF0001, tgid=91, tid=93, major=254, minor=0, bytes=131072, op=1,
                             error=0, comm=b"kworker/u8:2")
    c.on_slow(ctypes.addressof(e), ctypes.sizeof(e))
    (s,) = c.collect(PollContext(0))["disk_slow"]
    assert (s.pid, s.tid, s.comm, s.work, s.device, s.op, s.sector, s.bytes) == \
        (91, 93, "kworker/u8:2", "wb_workfn", "vda", "write", 2048, 131072)
    assert s.latency_ns == 15_000_000 and s.queued_ns == 4_000_000
    assert abs(s.time - time.time()) < 5


def test_grouped_disk_rows_sum_per_container_device_and_kind():
    snap = every_part_snapshot()
    rows = disk.grouped(snap.disk_io, lambda r: "db" if r.comm == "postgres" else "host")
    by = {(r.comm, r.device, r.op): r for r in rows}
    assert by[("db", "vda", "write")].ops == 120 and by[("host", "vda", "write")].ops == 64
    assert all(r.pid == 0 for r in rows)


# -- OOM kills ----------------------------------------------------------------


def oom_event(kind, pid, comm=b"", trigger=0, anon=0, cgroup=0) -> oom.OomEventStruct:
    return oom.OomEventStruct(ts_ns=time.monotonic_ns(), kind=oom.CONSTANTS[kind], pid=pid, tgid=pid, comm=comm,
                              trigger_pid=trigger, trigger_comm=b"hog" if trigger else b"", anon_rss=anon,
                              cgroup=cgroup, uid=1000)


def feed(c, e) -> None:
    c.on_event(ctypes.addressof(e), ctypes.sizeof(e))


def test_a_kill_joins_its_mark_and_its_victims_exit():
    c = oom.OomCollector(None, {})
    feed(c, oom_event("OOM_MARK", 5150, b"java", trigger=5151, anon=4_194_304, cgroup=1))
    assert c.collect(PollContext(0)) == {"oom_kills": ()}  # not exited yet
    feed(c, oom_event("OOM_EXIT", 5150, b"java", cgroup=77))
    (k,) = c.collect(PollContext(0))["oom_kills"]
    assert (k.pid, k.comm, k.cgroup, k.anon_rss_kb, k.trigger_pid, k.trigger_comm) == \
        (5150, "java", 77, 4_194_304, 5151, "hog")  # the victim's cgroup, from its exit
    (a,) = c.take_alerts()
    assert a == k and a.PART == "oom_kills"
    assert "triggered by hog (pid 5151)" in a.alert_detail and "anon-rss 4.0 GiB" in a.alert_text()
    assert a.alert_cause == "java (pid 5150) killed by the OOM killer"  # a flight recording's notice
    assert c.take_alerts() == []


def test_a_mark_whose_victim_never_exits_is_shown_after_the_wait(monkeypatch):
    c = oom.OomCollector(None, {})
    feed(c, oom_event("OOM_MARK", 77, b"stuck"))
    assert c.take_alerts() == []
    later = time.monotonic_ns() + oom.JOIN_WAIT_NS + 1
    monkeypatch.setattr(oom.time, "monotonic_ns", lambda: later)
    (k,) = c.take_alerts()
    assert (k.pid, k.comm) == (77, "stuck")
    assert c.collect(PollContext(0))["oom_kills"] == (k,)
    feed(c, oom_event("OOM_EXIT", 77, b"stuck"))  # its exit, late (a victim in D state for seconds)
    assert c.take_alerts() == [] and c.collect(PollContext(0))["oom_kills"] == ()  # not a second kill


def test_mark_victim_fields_come_from_the_format_file():
    have = oom.oom_fields(lambda tp: fmt("mark_victim"))
    assert have == {f"OOM_HAVE_{f.upper()}": 1 for f in oom.FIELDS}  # Linux 6.18 gives them all
    assert oom.oom_fields(lambda tp: "format:\n\tfield:int pid;\toffset:8;\tsize:4;\tsigned:1;\n") == {}


# -- drops --------------------------------------------------------------------


def test_drop_reasons_are_named_from_this_kernels_format_file():
    names = drops.reason_names(fmt("kfree_skb"))
    assert names[2] == "NOT_SPECIFIED" and names[5] == "SOCKET_FILTER" and names[12] == "NETFILTER_DROP"
    assert drops.reason_name(12, names) == "NETFILTER_DROP"
    assert drops.reason_name(drops.REASON_SLOTS - 1, names) == "OTHER_SUBSYSTEM"
    assert drops.reason_name(0x30002, {}) == "SUBSYS3:2"
    assert drops.reason_name(3, {}) == "NO_REASON"  # a kernel before 5.17: no reason at all
    consts = drops.drop_constants(lambda tp: fmt("kfree_skb"))
    assert consts["DROPS_HAVE_REASON"] == 1 and consts["DROPS_HAVE_RX_SK"] == 1
    assert "DROPS_NOT_A_DROP" not in consts  # 6.18's kfree_skb never passes SKB_CONSUMED: its table starts at 2
    older = 'format:\n\tfield:void * rx_sk;\n\tfield:enum skb_drop_reason reason;\n\nprint fmt: "%s", ' \
            '__print_symbolic(REC->reason, { 1, "CONSUMED" }, { 2, "NOT_SPECIFIED" })'
    assert drops.drop_constants(lambda tp: older)["DROPS_NOT_A_DROP"] == 1
    assert drops.drop_constants(lambda tp: "format:\n\tfield:void * skbaddr;\n") == {}


class DropKernel:
    def __init__(self, conns):
        self.counts: list = []
        self.totals = [[0, 0] for _ in range(drops.REASON_SLOTS)]
        self.conns = conns

    def format_of(self, tp):
        return fmt("kfree_skb")

    def reader(self, name):
        assert name == "tcp_conns"
        return SimpleNamespace(get=lambda key: self.conns.get(int.from_bytes(key, sys.byteorder)))

    def drain(self, name, key_fields, value_fields):
        out, self.counts = self.counts, []
        return out

    def table(self, name):
        return _ByCtypesInt(self.totals)


def conn(pid, comm, sport, dport) -> bytes:
    c = TcpConnStruct(pid=pid, comm=comm, family=2, sport=sport, dport=dport, cgroup=9)
    c.saddr[:4] = [127, 0, 0, 1]
    c.daddr[:4] = [127, 0, 0, 1]
    return bytes(c)


def test_drops_are_charged_to_the_connection_the_kernel_names_and_the_rest_to_the_host():
    k = DropKernel({0xAA: conn(4242, b"server", 8080, 51000), 0xBB: conn(0, b"", 8080, 51001)})
    c = drops.DropsCollector(k, {})
    c.start()
    names = {n: v for v, n in c.names.items()}
    k.counts += [((0xAA, names["SOCKET_FILTER"], 0x0800), (5,)), ((0xBB, names["TCP_OLD_DATA"], 0x0800), (2,)),
                 ((0xCC, names["SOCKET_RCVBUFF"], 0x86DD), (1,))]  # 0xCC: a socket ebpftop does not follow
    k.totals[names["SOCKET_FILTER"]][0] = 5
    k.totals[names["NETFILTER_DROP"]][0], k.totals[names["NETFILTER_DROP"]][1] = 30, 10
    k.totals[names["TCP_OLD_DATA"]][1] = 2
    k.totals[names["SOCKET_RCVBUFF"]][1] = 1
    out = c.collect(PollContext(0))
    rows = {(d.reason, d.pid): d for d in out["drops"]}
    srv = rows[("SOCKET_FILTER", 4242)]
    assert (srv.comm, srv.laddr, srv.lport, srv.rport, srv.count, srv.cgroup) == ("server", "127.0.0.1", 8080, 51000, 5, 9)
    assert rows[("TCP_OLD_DATA", 0)].laddr == "127.0.0.1"  # a connection whose owner was not seen yet
    assert rows[("SOCKET_RCVBUFF", 0)].laddr == "" and rows[("SOCKET_RCVBUFF", 0)].protocol == "ipv6"
    assert {t.reason: t.count for t in out["drop_reasons"]} == \
        {"NETFILTER_DROP": 40, "SOCKET_FILTER": 5, "TCP_OLD_DATA": 2, "SOCKET_RCVBUFF": 1}
    snap = every_part_snapshot().replace(**out)
    assert [(d.reason, d.count) for d in drops.unattributed(snap)] == [("NETFILTER_DROP", 40)]
    k.totals[names["NETFILTER_DROP"]][0] += 3
    again = c.collect(PollContext(0))  # the totals are cumulative in the kernel: the interval's difference
    assert again["drops"] == () and [(t.reason, t.count) for t in again["drop_reasons"]] == [("NETFILTER_DROP", 3)]

