"""The CPU set's user side on hand-built data: no kernel, no root.  First
the carry-over (sets/cpu_carry.py): a small model of bpf/cpu.c's records (Kernel below: the same transitions,
charged the same way) produces the readings; the truth is the timeline
itself, so each interval's figures can be checked to the nanosecond."""

from __future__ import annotations

import random
import struct
import time
from types import SimpleNamespace

import pytest

from ebpftop.sets.base import PollContext
from ebpftop.sets.cpu_carry import CpuReading, ThreadReading, advance, advance_cpus, by_process, credit

ON, RUNNABLE, BLOCKED, SLEEPING = range(4)
SLOTS = 40


class Kernel:
    """bpf/cpu.c's state machine, one record per thread."""

    def __init__(self):
        self.live: dict[int, dict] = {}
        self.dead: dict[tuple, dict] = {}

    def _new(self, tid, state, t, tgid=0):
        self.live[tid] = dict(tid=tid, birth=t, ns=[0, 0, 0, 0], state=state, since=t, vol=0, invol=0,
                              hist=[0] * SLOTS, tgid=tgid, comm=f"t{tid}" if tgid else "", cgroup=1)
        return self.live[tid]

    @staticmethod
    def _transition(r, state, t):
        if t > r["since"]:
            r["ns"][r["state"]] += t - r["since"]
        r["since"] = t
        r["state"] = state

    def switch_out(self, tid, t, to, tgid, dead=False):
        r = self.live.get(tid) or self._new(tid, ON, t)
        if to == RUNNABLE:
            r["invol"] += 1
        elif not dead:
            r["vol"] += 1
        r["tgid"], r["comm"] = tgid, f"t{tid}"
        self._transition(r, to, t)
        if dead:
            self.dead[(tid, r["birth"])] = self.live.pop(tid)

    def switch_in(self, tid, t):
        r = self.live.get(tid)
        if r is None:
            self._new(tid, ON, t)
            return
        if r["state"] == RUNNABLE:
            wait = t - r["since"]
            r["hist"][min(max(wait, 0).bit_length(), SLOTS - 1)] += 1
        self._transition(r, ON, t)

    def wakeup(self, tid, t):
        r = self.live.get(tid)
        if r is None:
            self._new(tid, RUNNABLE, t)
        elif r["state"] in (BLOCKED, SLEEPING):
            self._transition(r, RUNNABLE, t)

    @staticmethod
    def reading(r, dead=False):
        return ThreadReading(r["tid"], r["birth"], tuple(r["ns"]), r["state"], r["since"], r["vol"] % 2**32,
                             r["invol"] % 2**32, tuple(h % 2**32 for h in r["hist"]), r["tgid"], r["comm"],
                             r["cgroup"], dead)

    def read(self):
        """Live records, then the dead ones, drained."""
        out = [self.reading(r) for r in self.live.values()]
        out += [self.reading(r, dead=True) for r in self.dead.values()]
        self.dead.clear()
        return out


def overlap(a0, a1, b0, b1):
    return max(0, min(a1, b1) - max(a0, b0))


def test_running_across_polls_then_out():
    """A thread on CPU since t=100 is credited at each poll, and when the
    kernel charges the whole slice, what was credited is subtracted."""
    k = Kernel()
    k.switch_in(7, 100)
    carried = {}
    carried, d = advance(carried, k.read(), 300)
    assert d[0].ns == (200, 0, 0, 0)
    carried, d = advance(carried, k.read(), 500)
    assert d[0].ns == (200, 0, 0, 0)
    k.switch_out(7, 650, SLEEPING, tgid=7)  # charged: 550 on CPU in one lump
    carried, d = advance(carried, k.read(), 700)
    assert d[0].ns == (150, 0, 0, 50)  # 550 - 400 credited before; then asleep 650..700
    carried, d = advance(carried, k.read(), 900)
    assert d[0].ns == (0, 0, 0, 200)


def test_poll_exactly_at_transition_and_before_since():
    k = Kernel()
    k.switch_in(1, 100)
    carried, d = advance({}, k.read(), 100)  # now == since: nothing yet
    assert d[0].ns == (0, 0, 0, 0)
    carried, d = advance(carried, k.read(), 90)  # a clock read older than since: no credit, no negative
    assert d[0].ns == (0, 0, 0, 0)


def test_wait_histogram_and_sum():
    k = Kernel()
    k.switch_in(5, 0)
    k.switch_out(5, 1000, SLEEPING, tgid=5)
    k.wakeup(5, 3000)
    k.switch_in(5, 3000 + 700)  # a 700 ns wait: slot 10 ([512, 1024))
    carried, d = advance({}, k.read(), 4000)
    t = d[0]
    assert t.ns == (1000 + 300, 700, 0, 2000)
    assert t.hist[10] == 1 and sum(t.hist) == 1
    assert t.wait_ns == 700
    assert t.voluntary == 1 and t.involuntary == 0


def test_open_wait_is_credited_but_not_in_histogram():
    k = Kernel()
    k.switch_in(5, 0)
    k.switch_out(5, 100, RUNNABLE, tgid=5)  # preempted at 100
    carried, d = advance({}, k.read(), 400)
    assert d[0].ns == (100, 300, 0, 0) and sum(d[0].hist) == 0 and d[0].wait_ns == 0
    k.switch_in(5, 1000)
    carried, d = advance(carried, k.read(), 1000)
    assert d[0].ns == (0, 600, 0, 0) and sum(d[0].hist) == 1 and d[0].wait_ns == 900
    assert d[0].involuntary == 0  # counted in the first interval
    assert advance({}, k.read(), 1000)[1][0].involuntary == 1


def test_dead_thread_counted_once_whichever_read_sees_it():
    k = Kernel()
    k.switch_in(9, 0)
    carried, d = advance({}, k.read(), 100)
    live = k.read()  # live read: 9 still running
    k.switch_out(9, 150, SLEEPING, tgid=9, dead=True)  # dies between the two reads
    dead = k.read()  # dead drain: 9's final record
    readings = [r for r in live if not r.dead] + [r for r in dead if r.dead]
    assert [r.tid for r in readings] == [9, 9]
    carried, d = advance(carried, readings, 200)
    assert len(d) == 1 and d[0].dead and d[0].ns == (50, 0, 0, 0)
    assert carried == {}
    carried, d = advance(carried, k.read(), 300)
    assert d == []


def test_record_moved_by_exec_is_the_same_thread():
    """A non-leader thread execs: its record moves from its tid to the
    leader's and keeps (first_tid, birth): counted on, not counted twice."""
    r = ThreadReading(21, 5, (200, 0, 0, 0), ON, 205, 0, 0, (0,) * SLOTS, 20, "a", 1, False, 21)
    carried, d = advance({}, [r], 300)
    assert d[0].ns == (295, 0, 0, 0)
    moved = r._replace(tid=20, comm="b")
    carried, d = advance(carried, [moved], 400)
    assert d[0].ns == (100, 0, 0, 0) and d[0].tid == 20 and d[0].comm == "b"


def test_tid_reused_is_another_thread():
    k = Kernel()
    k.switch_in(4, 0)
    k.switch_out(4, 100, SLEEPING, tgid=4, dead=True)
    carried, d = advance({}, k.read(), 150)
    k.wakeup(4, 200)  # a new thread, same tid
    k.switch_in(4, 260)
    carried, d = advance(carried, k.read(), 300)
    assert len(d) == 1 and d[0].birth == 200 and d[0].ns == (40, 60, 0, 0)


def test_torn_read_never_negative_and_catches_up():
    """A record copied in the middle of a transition: since and state are
    new but ns[] is old.  That interval is short; nothing is negative; the
    next poll restores the exact total."""
    k = Kernel()
    k.switch_in(3, 0)
    carried, d = advance({}, k.read(), 100)
    assert d[0].ns == (100, 0, 0, 0)
    k.switch_out(3, 150, SLEEPING, tgid=3)
    whole = k.read()[0]
    torn = whole._replace(ns=(0, 0, 0, 0))  # ns[ON] not yet += 150
    carried, d = advance(carried, [torn], 200)
    assert all(x >= 0 for x in d[0].ns)
    assert d[0].ns == (0, 0, 0, 50)
    carried, d2 = advance(carried, [whole], 300)
    assert d2[0].ns == (50, 0, 0, 100)  # on CPU 100..150 arrives late, not lost
    # the other tear (new ns[], old since and state): a span credited twice, then held back
    k2 = Kernel()
    k2.switch_in(3, 0)
    c, _ = advance({}, k2.read(), 100)
    k2.switch_out(3, 150, SLEEPING, tgid=3)
    whole = k2.read()[0]
    torn = whole._replace(state=ON, since=0)
    c, d = advance(c, [torn], 200)  # ON: 150 charged + 200 credited = 350 (truth: 150)
    assert d[0].ns == (250, 0, 0, 0)
    c, d = advance(c, [whole], 300)
    assert d[0].ns == (0, 0, 0, 150)  # ON held back (max), never negative


def test_counters_wrap_at_u32():
    base = ThreadReading(1, 0, (0, 0, 0, 0), ON, 0, 2**32 - 2, 5, (2**32 - 1,) + (0,) * (SLOTS - 1), 1, "a", 1)
    carried, _ = advance({}, [base], 0)
    after = base._replace(voluntary=3, hist=(4,) + (0,) * (SLOTS - 1))
    _, d = advance(carried, [after], 0)
    assert d[0].voluntary == 5 and d[0].hist[0] == 5


@pytest.mark.parametrize("seed", range(30))
def test_random_timelines_are_exact_per_interval(seed):
    """Random threads, random transitions, polls at random instants (often
    mid-slice): every interval's figures equal the time each thread really
    spent in each state inside that interval."""
    rnd = random.Random(seed)
    k = Kernel()
    # the truth: per tid+birth, spans (state, start, end)
    spans: dict[tuple, list] = {}
    current: dict[int, tuple] = {}  # tid -> (birth, state, since)

    def enter(tid, state, t):
        if tid in current:
            birth, s, since = current[tid]
            spans.setdefault((tid, birth), []).append((s, since, t))
        else:
            birth = t
        current[tid] = (birth, state, t)

    def die(tid, t):
        birth, s, since = current.pop(tid)
        spans.setdefault((tid, birth), []).append((s, since, t))

    t = 0
    polls = sorted(rnd.sample(range(1, 20000), 25))
    events = []
    for tid in range(1, 6):
        tt = rnd.randrange(0, 2000)
        events.append((tt, "wake", tid))
    carried: dict = {}
    reported: dict[tuple, list] = {}
    prev_poll = 0
    pending = sorted(events)
    # a simple scheduler: each thread cycles wake -> in -> out(random) -> ...
    queue = list(pending)
    step = 0
    while queue:
        queue.sort()
        tt, what, tid = queue.pop(0)
        while polls and polls[0] <= tt:
            now = polls.pop(0)
            carried, d = advance(carried, k.read(), now)
            for x in d:
                acc = reported.setdefault((x.tid, x.birth), [])
                acc.append((prev_poll, now, x.ns))
            prev_poll = now
        t = tt
        step += 1
        if what == "wake":
            k.wakeup(tid, t)
            enter(tid, RUNNABLE, t)
            queue.append((t + rnd.randrange(0, 300), "in", tid))
        elif what == "in":
            k.switch_in(tid, t)
            enter(tid, ON, t)
            queue.append((t + rnd.randrange(1, 900), "out", tid))
        elif what == "out":
            to = rnd.choice((RUNNABLE, BLOCKED, SLEEPING, SLEEPING, "dead" if step > 40 else SLEEPING))
            if to == "dead":
                k.switch_out(tid, t, SLEEPING, tgid=tid, dead=True)
                die(tid, t)
                if rnd.random() < 0.5:  # the tid comes back as a new thread
                    queue.append((t + rnd.randrange(1, 500), "wake", tid))
            else:
                k.switch_out(tid, t, to, tgid=tid)
                enter(tid, to, t)
                if to == RUNNABLE:
                    queue.append((t + rnd.randrange(0, 400), "in", tid))
                else:
                    queue.append((t + rnd.randrange(1, 1500), "wake", tid))
        if t > 20000:
            break
    for now in polls:
        carried, d = advance(carried, k.read(), now)
        for x in d:
            reported.setdefault((x.tid, x.birth), []).append((prev_poll, now, x.ns))
        prev_poll = now
    end = prev_poll
    # close the truth at the last poll
    for tid, (birth, s, since) in current.items():
        spans.setdefault((tid, birth), []).append((s, since, max(since, end)))
    checked = 0
    for key, rows in reported.items():
        truth_spans = spans.get(key, [])
        for p0, p1, ns in rows:
            want = [0, 0, 0, 0]
            for s, a, b in truth_spans:
                want[s] += overlap(a, b, p0, p1)
            assert list(ns) == want, (key, p0, p1)
            checked += 1
    assert checked > 20


def test_credit_of_dead_is_nothing():
    r = ThreadReading(1, 0, (5, 0, 0, 0), ON, 10, 0, 0, (), 1, "x", 0, dead=True)
    assert credit(r, 100) == (0, 0, 0, 0)


def test_cpu_idle_carry():
    c, idle, _ = advance_cpus({}, [CpuReading(0, 1000, 500, True)], 700)
    assert idle == {0: 0}  # first poll: a baseline
    c, idle, _ = advance_cpus(c, [CpuReading(0, 1000, 500, True)], 900)
    assert idle == {0: 200}
    c, idle, _ = advance_cpus(c, [CpuReading(0, 1000 + 600, 1100, False)], 1200)  # idle 500..1100 charged
    assert idle == {0: 200}  # 600 charged - 400 credited
    c, idle, unt = advance_cpus(c, [CpuReading(0, 1600, 1100, False, 50)], 1300)
    assert idle == {0: 0} and unt == {0: 50}


def test_threads_sum_to_process_and_unknown_tgid_resolved():
    deltas = [
        ThreadReading(10, 0, (300, 10, 0, 0), ON, 0, 1, 2, (0,) * SLOTS, 10, "srv", 5),
        ThreadReading(11, 0, (200, 20, 0, 0), ON, 0, 0, 1, (0,) * SLOTS, 10, "srv-w", 5),
        ThreadReading(12, 0, (100, 30, 0, 0), ON, 0, 0, 0, (0,) * SLOTS, 0, "", 0),  # first slice
    ]
    _, d = advance({}, deltas, 0)
    procs = by_process(d, tgid_of=lambda tid: 10 if tid == 12 else 0)
    p = procs[10]
    assert p.comm == "srv" and len(p.threads) == 3
    assert p.ns == (600, 60, 0, 0) == tuple(sum(t.ns[i] for t in p.threads) for i in range(4))
    assert p.voluntary == 1 and p.involuntary == 3
    alone = by_process(d)  # no resolver: the unknown thread stands alone
    assert set(alone) == {10, 12}


# -- the collector, on a fake kernel's maps -----------------------------------

class FakeKernel:
    """cpu_threads and the per-CPU maps as the loader hands them over:
    tuples of the fields asked for (sources/kernel.py)."""

    def __init__(self):
        self.threads: dict[int, dict] = {}
        self.dead: list = []
        self.percpu = [SimpleNamespace(idle_ns=0, last_switch=0, idle=0, untraced_ns=0) for _ in range(2)]
        self.stats = {0: [0, 0], 1: [0, 0], 2: [0, 0]}

    def record(self, tid, tgid, comm, ns, state=ON, since=0, hist=None, vol=0, invol=0, birth=1, estimated=0):
        self.threads[tid] = dict(ns=struct.pack("=4Q", *ns), since=since, birth=birth, cgroup=7, state=state,
                                 tgid=tgid, voluntary=vol, involuntary=invol, first_tid=tid, comm=comm,
                                 hist=struct.pack(f"={SLOTS}I", *(hist or [0] * SLOTS)), estimated_ns=estimated)

    def drain(self, name, key_fields, value_fields, delete=True):
        assert name == "cpu_threads"  # the dead come through the cpu_dead ring
        rows = [((tid,), tuple(r[f] for f in value_fields)) for tid, r in self.threads.items()]
        return rows

    def table(self, name):
        return _Index(self.percpu if name == "cpu_percpu" else self.stats)


class _Index(dict):
    """A table indexed by ctypes ints, as BCC's."""

    def __init__(self, value):
        super().__init__()
        self.value = value

    def __getitem__(self, key):
        v = self.value
        return v if isinstance(v, list) else v[key.value]


def test_the_collector_makes_thread_rows_the_process_histogram_and_cpu_busy(monkeypatch):
    from ebpftop.sets import cpu

    k = FakeKernel()
    now = time.monotonic_ns() + 10**12  # the open spans start after the collector reads its clock: no credit
    k.record(10, 10, b"srv\0", (2_000_000, 100_000, 0, 0), state=ON, since=now, hist=[0] * 12 + [3] + [0] * 27,
             vol=5, invol=2)
    k.record(11, 10, b"srv-io\0", (500_000, 0, 3_000_000, 0), state=SLEEPING, since=now, vol=9)
    k.record(12, 0, b"", (0, 0, 0, 0), state=SLEEPING, since=now)  # never switched out: its process from /proc
    k.record(13, 13, b"idle-one\0", (0, 0, 0, 0), state=SLEEPING, since=now)  # only asleep: no row
    monkeypatch.setattr(cpu, "tgid_from_proc", lambda tid: 10)
    monkeypatch.setattr(cpu, "comm_from_proc", lambda tid: "from-proc")
    c = cpu.CpuCollector(k, {})
    first = c.collect(PollContext(0))
    assert first["cpus"] == ()  # the first poll is the CPUs' baseline
    rows = {t.tid: t for t in first["cpu_threads"]}
    assert set(rows) == {10, 11}  # 12 and 13 only slept
    assert rows[10].on_cpu_ns == 2_000_000 and rows[10].pid == 10 and rows[10].comm == "srv"
    assert rows[11].blocked_ns == 3_000_000 and rows[11].comm == "srv-io"
    proc = cpu.by_process(first["cpu_threads"])
    assert len(proc) == 1 and proc[0].threads == 2 and proc[0].on_cpu_ns == 2_500_000 and proc[0].comm == "srv"
    lat = first["runq_latency"]
    assert [(p.comm, p.pid, p.histogram.count) for p in lat.by_process] == [("srv", 10, 3)]
    assert lat.by_process[0].histogram.sum_ns == 100_000  # the runnable time charged: the waits' sum
    # the next poll: only what grew
    k.record(10, 10, b"srv\0", (2_500_000, 100_000, 0, 0), state=ON, since=now, hist=[0] * 12 + [3] + [0] * 27,
             vol=5, invol=3)
    k.percpu[0].idle_ns, k.percpu[1].idle_ns = 1_000, 2_000
    second = c.collect(PollContext(0))
    rows = {t.tid: t for t in second["cpu_threads"]}
    assert rows[10].on_cpu_ns >= 500_000 and rows[10].involuntary == 1 and second["runq_latency"].by_process == ()
    assert [b.cpu for b in second["cpus"]] == [0, 1] and second["cpus"][0].idle_ns == 1_000


def test_process_rows_take_the_main_threads_name_and_group_by_container():
    from ebpftop.sets.cpu import CpuThread, by_process, grouped

    threads = [CpuThread(21, 20, "worker", 300, 0, 0, 0, 1, 0, cgroup=5),
               CpuThread(20, 20, "server", 100, 50, 0, 850, 2, 1, cgroup=5),
               CpuThread(30, 30, "other", 900, 0, 0, 100, 0, 0, cgroup=6)]
    procs = by_process(threads)
    assert [(p.pid, p.comm, p.threads, p.on_cpu_ns) for p in procs] == [(30, "other", 1, 900), (20, "server", 2, 400)]
    g = grouped(threads, lambda t: "web" if t.cgroup == 5 else "db")
    assert {(r.comm, r.on_cpu_ns, r.pid) for r in g} == {("web", 400, 0), ("db", 900, 0)}


def test_prev_state_masks_come_from_the_format_file():
    from ebpftop.sets.cpu import prev_state_masks

    fmt = ('print fmt: "... prev_state=%s%s ...", (REC->prev_state & ((((0x00000000 | 0x00000001 | 0x00000002 | '
           '0x00000004 | 0x00000008 | 0x00000010 | 0x00000020 | 0x00000040) + 1) << 1) - 1)) ? __print_flags(REC->'
           'prev_state & ((((0x00000000 | 0x00000001 | 0x00000002 | 0x00000004 | 0x00000008 | 0x00000010 | 0x00000020'
           ' | 0x00000040) + 1) << 1) - 1), "|", { 0x00000001, "S" }, { 0x00000002, "D" }, { 0x00000004, "T" }, '
           '{ 0x00000008, "t" }, { 0x00000010, "X" }, { 0x00000020, "Z" }, { 0x00000040, "P" }, { 0x00000080, "I" }) : '
           '"R", REC->prev_state & (((0x00000000 | 0x00000001 | 0x00000002 | 0x00000004 | 0x00000008 | 0x00000010 | '
           '0x00000020 | 0x00000040) + 1) << 1) ? "+" : ""')
    assert prev_state_masks(lambda tp: fmt) == {"PREV_STATE_SLEEP_MASK": "0xff", "PREV_STATE_BLOCKED": "0x2",
                                                "PREV_STATE_DEAD": "0x30"}
    with pytest.raises(ValueError, match="no S or D"):
        prev_state_masks(lambda tp: "")


def test_a_process_with_thousands_of_threads_keeps_its_busiest_and_sums_the_rest():
    from ebpftop.sets.cpu import OTHER_THREADS, CpuThread, bounded_threads, by_process

    threads = [CpuThread(100 + i, 100, "srv" if i == 0 else "worker", 1000 + i, 10, 0, 5, 1, 0, cgroup=3)
               for i in range(500)]
    threads.append(CpuThread(7, 7, "other", 50, 0, 0, 0, 1, 0))
    kept = bounded_threads(threads, per_process=32)
    srv = [t for t in kept if t.pid == 100]
    assert len(srv) == 33 and sum(t.threads for t in srv) == 500
    rest = next(t for t in srv if t.tid == 0)
    assert rest.comm == OTHER_THREADS and rest.threads == 468 and rest.cgroup == 3
    assert [t.tid for t in srv][:1] == [100]  # the main thread, which names the process, whatever it did
    assert min(t.on_cpu_ns for t in srv if t.tid > 100) > max(t.on_cpu_ns for t in threads[1:469])  # the busiest
    before, after = by_process(threads), by_process(kept)
    assert before == after  # the process rows are the same, to the nanosecond and the thread
    assert [p.comm for p in after if p.pid == 100] == ["srv"]
    assert [t for t in kept if t.pid == 7] == [threads[-1]]  # a process under the bound is untouched


def test_a_thread_that_lived_and_died_between_two_polls_comes_through_the_dead_ring():
    import ctypes

    from ebpftop.sets import cpu

    k = FakeKernel()
    c = cpu.CpuCollector(k, {})
    c.collect(PollContext(0))
    e = cpu.CpuDeadEventStruct(tid=20)
    e.thread.ns[:] = [1_500_000, 200_000, 0, 300_000]
    e.thread.birth, e.thread.tgid, e.thread.first_tid, e.thread.cgroup = 5, 20, 20, 7
    e.thread.voluntary, e.thread.involuntary, e.thread.comm = 2, 1, b"short-lived"
    e.thread.hist[10] = 1
    c.on_dead(ctypes.addressof(e), ctypes.sizeof(e))
    out = c.collect(PollContext(0))
    [t] = out["cpu_threads"]
    assert (t.tid, t.pid, t.comm, t.on_cpu_ns, t.runnable_ns, t.sleeping_ns) == (20, 20, "short-lived", 1_500_000,
                                                                                 200_000, 300_000)
    assert (t.voluntary, t.involuntary, t.cgroup) == (2, 1, 7)
    assert [(p.pid, p.histogram.count) for p in out["runq_latency"].by_process] == [(20, 1)]
    assert c.collect(PollContext(0))["cpu_threads"] == ()  # counted once


def test_a_record_one_poll_did_not_read_is_not_counted_twice():
    """A live record missing from one poll's reading (read again at the
    next) is diffed against what was reported before, not counted from
    zero; one unseen for longer than KEEP_UNSEEN_POLLS polls is dropped."""
    from ebpftop.sets.cpu_carry import KEEP_UNSEEN_POLLS

    k = Kernel()
    k.switch_in(5, 0)
    k.switch_out(5, 100, SLEEPING, tgid=5)
    k.wakeup(5, 200)
    k.switch_in(5, 900)  # a 700 ns wait
    carried, d = advance({}, k.read(), 1000)
    assert sum(d[0].hist) == 1
    carried, d = advance(carried, [], 1100)  # this poll read no record of it
    assert d == [] and len(carried) == 1
    k.switch_out(5, 1200, SLEEPING, tgid=5)
    k.wakeup(5, 1300)
    k.switch_in(5, 1400)
    carried, d = advance(carried, k.read(), 1500)
    assert sum(d[0].hist) == 1 and d[0].wait_ns == 100  # the new wait only
    assert sum(d[0].ns) == 500  # 1000..1500, nothing again from before
    for _ in range(KEEP_UNSEEN_POLLS):
        carried, _ = advance(carried, [], 1600)
        assert len(carried) == 1
    carried, _ = advance(carried, [], 1700)
    assert carried == {}
