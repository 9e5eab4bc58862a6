"""--max-cpu: an overhead budget, and what ebpftop gives up to keep it.

The load of an interval is what ebpftop cost the machine in it, as a share
of one CPU (as top shows %CPU): the run time of its BPF programs (the
kernel's run-time statistics: the "kernel part") plus ebpftop's own CPU time.
Over the budget, ebpftop sheds one step per interval, in this order:

1. the read()/write() latency probes sample 1 in 4, then 1 in 16, then 1 in
   64 calls (chosen at random in the kernel): their counts are scaled back
   up and marked as estimates; the syscall counts stay exact;
2. then the probe sets are detached, the most expensive (in the interval)
   first, until the load fits.

Only what costs something is shed: a step's target must cost at least
WORTH_SHEDDING of the budget.  When ebpftop's own CPU alone is over the
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


@dataclass
class Step:
    kind: str  # "sample" or "detach"
    value: object  # sampling: N; detach: the probe set
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
    def __init__(self, max_cpu_pct: float, latency: bool, probe_sets: tuple[str, ...]):
        self.max_cpu_pct = max_cpu_pct
        self.latency = latency  # the latency probes are running (they can be sampled)
        self.probe_sets = probe_sets  # those that can be detached
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
        return tuple(s.value for s in self.steps if s.kind == "detach")

    def decide(self, load_pct: float, kernel_pct: float, set_costs: dict[str, float]) -> Step | None:
        """Take or undo at most one step for the interval that just ended,
        whose load was load_pct, kernel_pct of it in ebpftop's programs
        (set_costs[set] in each probe set's).  Returns the step taken or
        undone."""
        self._tick += 1
        for s in self.steps:
            s.age += 1
        if self._fresh:
            self.steps[-1].kernel_after = kernel_pct
            self._fresh = False
        if load_pct > self.max_cpu_pct:
            step = self._next_step(kernel_pct, set_costs)
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

    def _next_step(self, kernel_pct: float, set_costs: dict[str, float]) -> Step | None:
        worth = WORTH_SHEDDING * self.max_cpu_pct
        if self.latency and "read_latency" not in self.detached and set_costs.get("read_latency", 0) >= worth:
            for n in SAMPLING_STEPS:
                if n > self.sample_1_in:
                    return Step("sample", n, kernel_pct)
        candidates = [(cost, name) for name, cost in set_costs.items()
                      if name in self.probe_sets and name not in self.detached and cost >= worth]
        if not candidates:
            return None  # what is left costs little: ebpftop's own CPU, or hooks the statistics miss
        return Step("detach", max(candidates)[1], kernel_pct)

    def state(self, load_pct: float, kernel_pct: float | None, own_pct: float) -> Budget:
        return Budget(max_cpu_pct=self.max_cpu_pct, load_pct=load_pct, kernel_pct=kernel_pct, own_pct=own_pct,
                      latency_sampled_1_in=self.sample_1_in, detached=self.detached)


DETACHED = "detached: over the --max-cpu budget"  # how a shed set's status starts


def shed_status(budget: Budget) -> str:
    """A detached set's status (its pane says it)."""
    return f"{DETACHED} of {budget.max_cpu_pct:g}% of a CPU (attached again when the load falls)"


def is_shed(status: str) -> bool:
    return status.startswith(DETACHED)


def set_costs(run_time_ns: dict[str, int], owners: dict[str, tuple[str, ...]], interval_s: float) -> dict[str, float]:
    """Each probe set's share of one CPU in the interval: each program's run
    time (by name) split evenly between the sets it serves."""
    out: dict[str, float] = {}
    for prog, ns in run_time_ns.items():
        sets = owners.get(prog, ())
        for s in sets:
            out[s] = out.get(s, 0.0) + ns / len(sets) / (interval_s * 1e9) * 100
    return out
