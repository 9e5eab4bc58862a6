"""The CPU set's carry-over (sets/cpu.py): exact per-interval times from
cumulative kernel records whose last span is still open.  Pure functions
over plain data (no bcc, no clock): tests/unit/test_cpu.py runs them on
readings of a model of bpf/cpu.c's state machine.

The kernel (bpf/cpu.c) keeps, per thread, the nanoseconds *charged* to each
state (on CPU, runnable, blocked, sleeping) and the state the thread is in
now with the time it entered it (`since`).  A span is charged only when it
ends: a thread running since 3 s ago shows nothing charged for those 3 s.

At each poll, `now`:
  credit  P = (now - since) in `state`   (the open span, so far)
  charged K = the record's ns[]          (every closed span)
  reported for the interval = (K - K_before) - P_before + P
i.e. the open span is credited as it grows, and when the kernel later
charges the whole span, exactly what was credited for it is subtracted.
The two agree to the nanosecond because the kernel charges [since, end)
to `state`: the same start, the same state that user space credited.
Summed over intervals it telescopes to K + P at the last poll: nothing
counted twice, nothing lost.

Kept monotonic: a record copied while the kernel was updating it (a torn
read: new `since`, old ns[]) could make one interval's figure negative;
instead, reported totals never go down (max(before, K + P)), and the next
whole read catches up.
"""

from __future__ import annotations

from typing import NamedTuple

N_STATES = 4  # on CPU, runnable, blocked, sleeping: cpu_thread.ns[] (bpf/cpu.c)
U32 = 1 << 32


class ThreadReading(NamedTuple):
    """One cpu_threads (or cpu_dead) record, decoded."""

    tid: int
    birth: int  # ns: when the record was made (a reused tid is another thread)
    ns: tuple  # charged ns per state, cumulative
    state: int  # the open span's state
    since: int  # the open span's start (ns, CLOCK_MONOTONIC)
    voluntary: int  # cumulative, u32
    involuntary: int  # cumulative, u32
    hist: tuple  # run-queue waits per log2 slot, cumulative, u32 each
    tgid: int  # 0: not known yet (never switched out since ebpftop started)
    comm: str
    cgroup: int
    dead: bool = False  # from cpu_dead: its last switch is done, no open span
    first_tid: int = 0  # the tid the record was made under (0: tid)
    estimated: int = 0  # cumulative ns on CPU charged by estimate (a switch-in no probe saw)

    @property
    def key(self) -> tuple[int, int]:
        """Names the record across polls: a thread that execs from a
        non-leader thread changes tid (it takes the leader's), its record
        moves with it and keeps (first_tid, birth)."""
        return (self.first_tid or self.tid, self.birth)


class Carried(NamedTuple):
    """What was reported for one thread up to the last poll."""

    charged: tuple  # K at that poll
    credited: tuple  # P at that poll
    reported: tuple  # cumulative reported per state (K + P, kept monotonic)
    voluntary: int
    involuntary: int
    hist: tuple
    estimated: int = 0
    unseen: int = 0  # polls in a row that read no record of it


# A live record a poll did not read is carried this many polls more: read
# again, it is diffed against what was reported, not counted from zero (a
# crowded thread once had 550 run-queue waits reported for its 303, its
# history counted twice).  Gone for longer (its dead record lost), dropped.
KEEP_UNSEEN_POLLS = 3


class ThreadDelta(NamedTuple):
    """One thread's interval."""

    tid: int
    birth: int
    tgid: int
    comm: str
    cgroup: int
    ns: tuple  # per state, in the interval
    voluntary: int
    involuntary: int
    hist: tuple  # run-queue waits that ended in the interval, per slot
    wait_ns: int  # their sum (the charged part of the runnable time)
    dead: bool
    estimated_ns: int = 0  # of ns[0], what was charged by estimate in the interval


ZERO4 = (0, 0, 0, 0)


def credit(r: ThreadReading, now: int) -> tuple:
    """The open span's time so far, in its state (nothing for a dead thread)."""
    if r.dead or now <= r.since or not 0 <= r.state < N_STATES:
        return ZERO4
    out = [0, 0, 0, 0]
    out[r.state] = now - r.since
    return tuple(out)


def _u32_delta(new: int, old: int) -> int:
    return (new - old) % U32


def advance(carried: dict, readings, now: int) -> tuple[dict, list[ThreadDelta]]:
    """One poll: (carried for the next poll, the interval's thread deltas).

    `readings`: every live record, then every drained dead one (read in
    that order: a thread that dies in between is in both, and its dead
    record, the newer, wins; read the other way round it could be in
    neither and come back next poll as a new thread).  A thread carried
    but read nowhere is carried KEEP_UNSEEN_POLLS polls more, then dropped
    (its dead record was lost)."""
    latest: dict = {}
    for r in readings:
        old = latest.get(r.key)
        if old is None or r.dead or not old.dead:
            latest[r.key] = r
    out_carried: dict = {}
    deltas: list[ThreadDelta] = []
    for key, r in latest.items():
        prev = carried.get(key)
        if prev is None:
            prev = Carried(ZERO4, ZERO4, ZERO4, 0, 0, (0,) * len(r.hist))
        p = credit(r, now)
        total = tuple(k + c for k, c in zip(r.ns, p))
        reported = tuple(max(t, b) for t, b in zip(total, prev.reported))
        ns = tuple(a - b for a, b in zip(reported, prev.reported))
        hist = tuple(_u32_delta(a, b) for a, b in zip(r.hist, prev.hist))
        wait_ns = max(0, r.ns[1] - prev.charged[1])
        deltas.append(ThreadDelta(r.tid, r.birth, r.tgid, r.comm, r.cgroup, ns,
                                  _u32_delta(r.voluntary, prev.voluntary),
                                  _u32_delta(r.involuntary, prev.involuntary), hist, wait_ns, r.dead,
                                  max(0, r.estimated - prev.estimated)))
        if not r.dead:
            out_carried[key] = Carried(tuple(r.ns), p, reported, r.voluntary, r.involuntary, tuple(r.hist),
                                       r.estimated)
    for key, c in carried.items():
        if key not in latest and c.unseen < KEEP_UNSEEN_POLLS:
            out_carried[key] = c._replace(unseen=c.unseen + 1)
    return out_carried, deltas


class CpuReading(NamedTuple):
    """cpu_percpu for one CPU."""

    cpu: int
    idle_ns: int  # charged idle time, cumulative
    last_switch: int  # ns (0: no switch seen on it yet)
    idle: bool  # the idle task runs now (since last_switch)
    untraced_ns: int = 0  # cumulative: spans after a switch never traced (attributed by estimate)


def advance_cpus(carried: dict, readings, now: int) -> tuple[dict, dict, dict]:
    """Per CPU: (carried, idle ns in the interval, untraced ns in the
    interval), with the same credit of an idle span still open."""
    out: dict = {}
    idle: dict = {}
    untraced: dict = {}
    for r in readings:
        p = now - r.last_switch if r.idle and r.last_switch and now > r.last_switch else 0
        total = r.idle_ns + p
        before, before_u = carried.get(r.cpu, (total, r.untraced_ns))  # first poll: a baseline
        reported = max(total, before)
        idle[r.cpu] = reported - before
        untraced[r.cpu] = max(0, r.untraced_ns - before_u)
        out[r.cpu] = (reported, max(before_u, r.untraced_ns))
    return out, idle, untraced


class ProcessDelta(NamedTuple):
    tgid: int
    comm: str
    cgroup: int
    threads: tuple  # its ThreadDeltas
    ns: tuple
    voluntary: int
    involuntary: int
    hist: tuple
    wait_ns: int
    estimated_ns: int = 0


def by_process(deltas, tgid_of=None) -> dict[int, ProcessDelta]:
    """Threads folded into processes by tgid.  `tgid_of(tid)`, for a thread
    whose record does not know its process yet (first slice), may find it
    (in /proc); otherwise it stands alone under its tid.  The process row
    takes the name and cgroup of its main thread (tid == tgid) when it has
    one in the interval, else of its first thread."""
    groups: dict[int, list] = {}
    for d in deltas:
        tgid = d.tgid or (tgid_of(d.tid) if tgid_of else 0) or d.tid
        if d.tgid != tgid:
            d = d._replace(tgid=tgid)
        groups.setdefault(tgid, []).append(d)
    out = {}
    for tgid, ts in groups.items():
        ts.sort(key=lambda d: d.tid)
        main = next((d for d in ts if d.tid == tgid and d.comm), next((d for d in ts if d.comm), ts[0]))
        slots = max(len(d.hist) for d in ts)
        out[tgid] = ProcessDelta(
            tgid, main.comm, main.cgroup, tuple(ts),
            tuple(sum(d.ns[i] for d in ts) for i in range(N_STATES)),
            sum(d.voluntary for d in ts), sum(d.involuntary for d in ts),
            tuple(sum(d.hist[i] for d in ts if i < len(d.hist)) for i in range(slots)),
            sum(d.wait_ns for d in ts), sum(d.estimated_ns for d in ts))
    return out
