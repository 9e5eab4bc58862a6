"""What BPF programs cost: the kernel's run-time statistics of every program
on the machine (the Probes tab, --probe-cost), ebpftop's own marked, the
processes holding the others; and the runs the kernel skipped (a program
that would have recursed), which are events lost."""

from __future__ import annotations

import os
from collections.abc import Callable

from ebpftop.model import ProbeCost
from ebpftop.sources import bpf_syscall
from ebpftop.sources.joins import Deltas


class ProgramStats:
    """programs() -> ebpftop's loaded programs (name -> fd); hook_of(name) ->
    where one is attached, for the Probes tab."""

    def __init__(self, programs: Callable[[], dict[str, int]], hook_of: Callable[[str], str]):
        self.programs = programs
        self.hook_of = hook_of
        self.state = "off"  # "ok", "off", or why the statistics are unavailable
        self._fd: int | None = None  # open while the statistics are wanted
        self._deltas = Deltas()  # prog id -> (run time, runs): every program on the machine
        self._ours: dict[int, str] = {}  # prog id -> the name of one of ours
        self._holders: dict[int, list] = {}  # prog id -> processes holding it (refreshed when a new one shows)

    @property
    def on(self) -> bool:
        return self._fd is not None

    def set(self, on: bool) -> str:
        """Turn the kernel's run-time statistics of BPF programs on or off
        (while on, every BPF program on the machine costs two clock reads
        more per run).  Returns the new state, or why it is unavailable."""
        if on and self._fd is None:
            try:
                self._fd = bpf_syscall.enable_run_time_stats()
            except OSError as e:
                self.state = f"unavailable: BPF_ENABLE_STATS failed ({e.strerror or e}; needs Linux 5.8)"
                return self.state
            self._ours = {d.prog_id: name for name, d in self.ours().items()}
            self._deltas = Deltas({pid: (d.run_time_ns, d.run_cnt) for pid, d in host_programs().items()})
            self._holders = {}
            self.state = "ok"
        elif not on and self._fd is not None:
            os.close(self._fd)
            self._fd = None
            self.state = "off"
        return self.state

    def ours(self) -> dict[str, bpf_syscall.ProgDetails]:
        """Each of ebpftop's loaded programs by its name, as the kernel sees it."""
        out = {}
        for name, fd in self.programs().items():
            try:
                out[name] = bpf_syscall.prog_details(fd)
            except OSError:
                pass
        return out

    def run_times(self) -> dict[str, int]:
        return {name: d.run_time_ns for name, d in self.ours().items()}

    def misses(self) -> dict[str, int]:
        return {name: d.recursion_misses for name, d in self.ours().items()}

    def costs(self) -> tuple[ProbeCost, ...]:
        """Every BPF program on the machine in the interval, ebpftop's marked;
        the processes holding the others (rescanned when one appears)."""
        progs = host_programs()
        spent = self._deltas.step({pid: (d.run_time_ns, d.run_cnt) for pid, d in progs.items()})
        if any(pid not in self._ours and pid not in self._holders for pid in progs):
            self._holders = bpf_syscall.prog_holders()
            for pid in progs:
                self._holders.setdefault(pid, [])  # held by no process: not rescanned for it again
        costs = []
        for pid, d in progs.items():
            run_time, runs = spent[pid]
            ours = pid in self._ours
            name = self._ours.get(pid, d.name)
            costs.append(ProbeCost(name=name, runs=runs, run_time_ns=run_time, prog_id=pid, prog_type=d.prog_type,
                                   ours=ours, holders=() if ours else tuple(self._holders.get(pid, ())),
                                   hook_name=self.hook_of(name) if ours else ""))
        costs.sort(key=lambda c: (-c.run_time_ns, c.name))
        return tuple(costs)


def host_programs() -> dict[int, bpf_syscall.ProgDetails]:
    """Every BPF program on the machine, as bpftool prog list sees them."""
    out = {}
    for prog_id in bpf_syscall.host_prog_ids():
        try:
            fd = bpf_syscall.prog_fd_by_id(prog_id)
        except OSError:
            continue  # unloaded meanwhile
        try:
            out[prog_id] = bpf_syscall.prog_details(fd)
        except OSError:
            pass
        finally:
            os.close(fd)
    return out
