"""--max-cpu while ebpftop runs: measures what each interval cost (the BPF
programs' run time in a window of the interval, and ebpftop's own CPU),
asks budget.Governor what to shed or restore, and applies its step:
sampling through each sampled set's mask map, detaching and attaching
programs through their attachments (sources/attach.py).  The live source
calls it with its lock held."""

from __future__ import annotations

import ctypes
import os
import threading
import time

from ebpftop import budget
from ebpftop.model import STATUS_OK, Budget
from ebpftop.sources import bpf_syscall


class Overhead:
    def __init__(self, max_cpu: float, interval_s: float, kernel, stats, attachments: dict, owners: dict,
                 running: tuple[str, ...], sample_masks: dict[str, str], lock: threading.Lock):
        """attachments: program -> its Attachment; owners: program -> the sets
        it serves; sample_masks: running set -> its sampling mask map."""
        self.max_cpu = max_cpu
        self.kernel = kernel
        self.stats = stats  # ProgramStats: on all the time with --probe-cost (or c in the Probes tab)
        self.attachments = attachments
        self.owners = owners
        self.sample_masks = sample_masks
        self.lock = lock
        self.governor = budget.Governor(max_cpu, tuple(sample_masks), running, owners)
        self.sampled_1_in = 1  # the sampled sets' sampling in the interval being counted
        # --max-cpu without --probe-cost measures its programs' run times in a
        # window of each interval, not all the time (open_window)
        self.window_s = min(budget.WINDOW_S, interval_s * budget.WINDOW_SHARE)
        self._window_fd: int | None = None
        self._window_start: tuple[float, dict[str, int]] | None = None
        self._window_timer: threading.Timer | None = None
        self._window: tuple[float, dict[str, int]] | None = None  # (seconds, run time per program) last measured
        self._window_failed = False
        self._detached: set[str] = set()  # programs detached to shed load
        self._mark = (time.monotonic(), time.process_time())  # at the last poll
        self._judging = False
        self.notices: list[str] = []

    # -- the measuring window ----------------------------------------------

    def open_window(self) -> None:
        """Turn the run-time statistics on for window_s: while they are on,
        every BPF program on the machine reads the clock twice more per run
        (measured: ebpftop's added ns per getppid() 38 -> 78), so --max-cpu
        keeps them on for a window of each interval only and takes the
        window's load as the interval's."""
        if self.stats.on or self._window_fd is not None:
            return  # on all the time already (the Probes tab's), or open
        try:
            self._window_fd = bpf_syscall.enable_run_time_stats()
        except OSError as e:
            if not self._window_failed:  # said once
                self._window_failed = True
                self.notices.append(f"--max-cpu: the kernel's BPF run-time statistics are unavailable "
                                    f"({e.strerror or e}; they need Linux 5.8): only ebpftop's own CPU is "
                                    f"measured, and the probes are never shed")
            return
        self._window_start = (time.monotonic(), self.stats.run_times())
        self._window_timer = threading.Timer(self.window_s, self._end_window)
        self._window_timer.daemon = True
        self._window_timer.start()

    def _end_window(self) -> None:
        with self.lock:
            self.close_window()

    def close_window(self) -> None:
        """The window's run time per program, kept for the next judgement."""
        if self._window_timer is not None:
            self._window_timer.cancel()
            self._window_timer = None
        if self._window_fd is None:
            return
        end = self.stats.run_times()
        os.close(self._window_fd)
        self._window_fd = None
        t0, start = self._window_start
        self._window = (max(time.monotonic() - t0, 1e-3), {name: ns - start.get(name, 0) for name, ns in end.items()})

    def _measure(self, probes) -> tuple[float, float | None, float, dict[str, float]]:
        """(load, kernel share, own share, per-program kernel shares) of the
        interval since the last poll, in percent of one CPU.  The kernel
        share is the whole interval's while the statistics are on all the
        time, else its window's."""
        now = (time.monotonic(), time.process_time())
        then, self._mark = self._mark, now
        wall = max(now[0] - then[0], 1e-3)
        own_pct = (now[1] - then[1]) / wall * 100
        if self.stats.on:
            ours = {p.name: p.run_time_ns for p in probes if p.ours}
        else:
            self.close_window()  # if the poll came before its end
            if self._window is None:
                return own_pct, None, own_pct, {}
            wall, ours = self._window
            self._window = None
        kernel_pct = sum(ours.values()) / (wall * 1e9) * 100
        return kernel_pct + own_pct, kernel_pct, own_pct, budget.program_costs(ours, wall)

    # -- judging and applying -------------------------------------------------

    def judge(self, probes, status: dict) -> Budget:
        """The interval that just ended: its load, and the step taken or
        undone (applied now; status says which sets are detached)."""
        load, kernel_pct, own_pct, costs = self._measure(probes)
        gov = self.governor
        if not self._judging:
            # The first interval is not judged: it holds start-up's CPU
            # (loading the TUI, say), not what ebpftop costs running.
            self._judging = True
            return gov.state(load, kernel_pct, own_pct)
        steps_before = len(gov.steps)
        step = gov.decide(load, kernel_pct or 0.0, costs)
        state = gov.state(load, kernel_pct, own_pct)
        if step is None:
            return state
        self._set_sampling(state.latency_sampled_1_in)
        self._set_detached(state, status)
        if len(gov.steps) > steps_before:
            what = (f"latency sampled 1 in {step.value} (its counts are estimates)" if step.kind == "sample"
                    else f"{', '.join(step.value)} detached")
            self.notices.append(f"over the --max-cpu budget ({load:.1f}% of a CPU > {self.max_cpu:g}%): {what}")
        else:
            n = state.latency_sampled_1_in
            what = (f"{', '.join(step.value)} attached again" if step.kind == "detach"
                    else f"latency sampled 1 in {n}" if n > 1 else "latency timed on every call again")
            self.notices.append(f"load {load:.1f}% of a CPU, under the --max-cpu budget of {self.max_cpu:g}%: {what}")
        return state

    def _set_sampling(self, n: int) -> None:
        for mask in self.sample_masks.values():
            self.kernel.table(mask)[ctypes.c_int(0)] = ctypes.c_uint(n - 1)
        self.sampled_1_in = n

    def _set_detached(self, state: Budget, status: dict) -> None:
        """Detach every program all of whose sets are shed; re-attach the
        others detached before (a restored set starts from empty maps: its
        maps were emptied at each poll while it was shed)."""
        shed = set(state.detached)
        for name in status:
            if name in shed:
                status[name] = budget.shed_status(state)
            elif budget.is_shed(status.get(name, "")):
                status[name] = STATUS_OK
        done = set()
        for prog in self.owners:  # the raw sys_enter is every entry-taking set's (sys_enter.c)
            a = self.attachments.get(prog)
            if a is None or id(a) in done:
                continue
            off = all(bool(self.owners.get(p)) and set(self.owners[p]) <= shed for p in a.programs)
            if off and prog not in self._detached and a.attached:
                a.detach()
                self._detached.update(a.programs)
            elif not off and prog in self._detached:
                try:
                    a.attach()
                except Exception as e:  # noqa: BLE001 - said, and tried again at the next step
                    self.notices.append(f"--max-cpu: could not attach {prog} again: {e}")
                    continue
                self._detached.difference_update(a.programs)
            done.add(id(a))
