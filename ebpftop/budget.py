"""--max-cpu: an overhead budget, and what ebpftop gives up to keep it.

The load of an interval is what ebpftop cost the machine in it, as a share
of one CPU (as top shows %CPU): the run time of its BPF programs (the
kernel's run-time statistics: the "kernel part", measured in a window of
each interval, see WINDOW_S) plus ebpftop's own CPU time.
Over the budget, ebpftop sheds one step per interval, in this order:

1. the probe sets that can be sampled (the read()/write() latency probes)
   sample 1 in 4, then 1 in 16, then 1 in 64 calls (chosen at random in the
   kernel): their counts are scaled back up and marked as estimates; the
   syscall counts stay exact;
2. then probe sets are detached, one group per interval, until the load
   fits.  A program several sets share (the raw sys_enter serves five)
   stops only when all of them are detached, so what detaching some sets
   saves is the run time of the programs that stop with them.  The
   candidates are each set alone and, for each shared program, all the sets
   it still serves; the smallest group that would bring the load under the
   budget is taken, else the one that saves the most.  (Charging a shared
   program's cost evenly to its sets, as until 2026-11-25, detached the sets
   of a syscall flood one interval at a time, each saving nothing, until
   the last stopped the program.)

Only what costs something is shed: a step must save at least WORTH_SHEDDING
of the budget.  When ebpftop's own CPU alone is over the
budget (a busy TUI at a short interval), detaching quiet probes would lose
data and save nothing, so nothing is.

A step is undone (the last first) when either

- the load plus what that step saved when it was taken (the kernel part
  before it, less the first interval's after it) would stay under
  RESTORE_BELOW of the budget; or
- the step has been held for its hold time (HOLD_INTERVALS at first) and the
  kernel part is under RESTORE_BELOW of the budget.  What a detached set
  would cost now cannot be seen (its programs do not run): the flood may be
  over, or not.  So ebpftop tries; a step that has to be taken again at once
  (the flood was still on) is held twice as long the next time, up to
  MAX_HOLD_INTERVALS: under a steady flood ebpftop tries less and less
  often, one interval over the budget each time.  (Scaling the saving by
  the kernel part's ratio before and after was tried: a detached raw
  sys_enter leaves the kernel part near 0, and the prediction then
  said "fits" every other interval.)

Pure: the live source measures and applies (sources/live.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from ebpftop.model import Budget

SAMPLING_STEPS = (4, 16, 64)  # latency sampled 1 in N, in the order tried (powers of 2: a mask in C)
RESTORE_BELOW = 0.8  # a step is undone when the load it would bring back stays under this share of the budget
HOLD_INTERVALS = 3  # a step is tried undone after this many intervals under the budget, at first
MAX_HOLD_INTERVALS = 64
WORTH_SHEDDING = 0.1  # share of the budget a step's target must cost to be shed
# The run-time statistics that measure the probes' part make every BPF
# program on the machine dearer while they are on (two more clock reads per
# run: ebpftop's added ns per getppid() 38 -> 78 here), so --max-cpu turns
# them on for a window of each interval only, WINDOW_S or WINDOW_SHARE of
# the interval if less, and takes the window's load for the interval's.
WINDOW_S = 0.5
WINDOW_SHARE = 0.2


@dataclass
class Step:
    kind: str  # "sample" or "detach"
    value: object  # sampling: N; detach: the probe sets, a sorted tuple
    kernel_before: float  # the kernel part of the load when it was taken
    kernel_after: float | None = None  # the kernel part in the first interval with it taken
    hold: int = HOLD_INTERVALS  # intervals before it is tried undone, whatever its saving says
    age: int = 0  # intervals since it was taken

    @property
    def key(self) -> tuple:
        return (self.kind, self.value)

    @property
    def saved(self) -> float:
        """What the step took off the kernel part when it was taken (0 until known)."""
        if self.kernel_after is None:
            return 0.0
        return max(0.0, self.kernel_before - self.kernel_after)


class Governor:
    def __init__(self, max_cpu_pct: float, sampled: tuple[str, ...], probe_sets: tuple[str, ...],
                 owners: dict[str, tuple[str, ...]]):
        self.max_cpu_pct = max_cpu_pct
        self.sampled = sampled  # the running sets whose probes can be sampled (latency)
        self.probe_sets = probe_sets  # those that can be detached
        self.owners = owners  # program -> the probe sets it serves
        self.steps: list[Step] = []
        self._fresh = False  # the last step was taken at the previous interval
        self._tick = 0  # intervals judged
        self._hold: dict[tuple, int] = {}  # step key -> its hold time the next time it is taken
        self._undone_at: dict[tuple, int] = {}  # step key -> the interval it was last undone at

    @property
    def sample_1_in(self) -> int:
        ns = [s.value for s in self.steps if s.kind == "sample"]
        return ns[-1] if ns else 1

    @property
    def detached(self) -> tuple[str, ...]:
        return tuple(name for s in self.steps if s.kind == "detach" for name in s.value)

    def decide(self, load_pct: float, kernel_pct: float, program_costs: dict[str, float]) -> Step | None:
        """Take or undo at most one step for the interval that just ended,
        whose load was load_pct, kernel_pct of it in ebpftop's programs
        (program_costs[program] in each).  Returns the step taken or
        undone."""
        self._tick += 1
        for s in self.steps:
            s.age += 1
        if self._fresh:
            self.steps[-1].kernel_after = kernel_pct
            self._fresh = False
        if load_pct > self.max_cpu_pct:
            step = self._next_step(load_pct, kernel_pct, program_costs)
            if step is not None:
                hold = self._hold.get(step.key, HOLD_INTERVALS)
                if self._tick - self._undone_at.get(step.key, -10) <= 2:  # undone too early last time
                    hold = min(2 * hold, MAX_HOLD_INTERVALS)
                self._hold[step.key] = step.hold = hold
                self.steps.append(step)
                self._fresh = True
                return step
        if not self.steps:
            return None
        threshold = RESTORE_BELOW * self.max_cpu_pct
        last = self.steps[-1]
        if load_pct + last.saved <= threshold or (last.age >= last.hold and kernel_pct <= threshold):
            self._undone_at[last.key] = self._tick
            return self.steps.pop()
        return None

    def saving(self, group: frozenset[str], program_costs: dict[str, float]) -> float:
        """What detaching the sets of group (besides those detached) saves:
        the cost of every program none of whose other sets still runs."""
        gone = group | set(self.detached)
        return sum(cost for prog, cost in program_costs.items()
                   if self.owners.get(prog) and set(self.owners[prog]) <= gone
                   and not set(self.owners[prog]) <= set(self.detached))

    def _next_step(self, load_pct: float, kernel_pct: float, program_costs: dict[str, float]) -> Step | None:
        worth = WORTH_SHEDDING * self.max_cpu_pct
        detached = set(self.detached)
        sampled = set(self.sampled) - detached
        sampled_cost = sum(cost for prog, cost in program_costs.items() if sampled & set(self.owners.get(prog, ())))
        if sampled and sampled_cost >= worth:
            for n in SAMPLING_STEPS:
                if n > self.sample_1_in:
                    return Step("sample", n, kernel_pct)
        running = [name for name in self.probe_sets if name not in detached]
        groups = {frozenset([name]) for name in running}
        for sets in self.owners.values():
            group = frozenset(name for name in sets if name in running)
            if len(group) > 1 and set(sets) - detached <= group:  # every set it still serves can go
                groups.add(group)
        candidates = [(self.saving(g, program_costs), g) for g in groups]
        candidates = [(saved, g) for saved, g in candidates if saved >= worth]
        if not candidates:
            return None  # what is left costs little: ebpftop's own CPU, or hooks the statistics miss
        enough = [(len(g), -saved, sorted(g)) for saved, g in candidates if load_pct - saved <= self.max_cpu_pct]
        if enough:
            group = min(enough)[2]
        else:
            group = min((-saved, len(g), sorted(g)) for saved, g in candidates)[2]
        return Step("detach", tuple(group), kernel_pct)

    def state(self, load_pct: float, kernel_pct: float | None, own_pct: float) -> Budget:
        return Budget(max_cpu_pct=self.max_cpu_pct, load_pct=load_pct, kernel_pct=kernel_pct, own_pct=own_pct,
                      latency_sampled_1_in=self.sample_1_in, detached=self.detached)


DETACHED = "detached: over the --max-cpu budget"  # how a shed set's status starts


def shed_status(budget: Budget) -> str:
    """A detached set's status (its view says it)."""
    return f"{DETACHED} of {budget.max_cpu_pct:g}% of a CPU (attached again when the load falls)"


def is_shed(status: str) -> bool:
    return status.startswith(DETACHED)


def program_costs(run_time_ns: dict[str, int], interval_s: float) -> dict[str, float]:
    """Each program's share of one CPU in the interval, from its run time."""
    return {prog: ns / (interval_s * 1e9) * 100 for prog, ns in run_time_ns.items()}
