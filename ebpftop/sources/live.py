"""The live source: loads the enabled probe sets into the kernel, hands each
set's collector (ebpftop/sets/) its maps, and at each poll makes a snapshot
of what they collected; detaches everything at close.

Every probe set is one C file concatenated into one BCC module: one clang
compile at start-up and one program per kernel hook; a set that fails to
load is left out with the reason as its status (program.load_with_fallback).
The pieces live beside this: the loader and the maps (kernel.py, the only
module that imports bcc), how programs are attached (attach.py), their
costs (program_stats.py) and --max-cpu (overhead.py).
"""

from __future__ import annotations

import ctypes
import gc
import os
import threading
import time
from collections.abc import Mapping

from ebpftop import act, budget, capabilities, containers, sets, snapshots
from ebpftop import watch as watchlist
from ebpftop.model import STATUS_OK, STATUS_STARTING, Snapshot
from ebpftop.sets.base import PollContext, as_int
from ebpftop.sets.file_opens import Alert
from ebpftop.sources import attach, bpf_syscall, joins, program
from ebpftop.sources.kernel import Kernel
from ebpftop.sources.overhead import Overhead
from ebpftop.sources.program_stats import ProgramStats

# Where the container runtimes' files are read (containers.py), when not under /: the tests' fixtures
STATE_ROOT_ENV = "EBPFTOP_STATE_ROOT"


class LiveSource:
    kind = "live"
    label = ""

    def __init__(self, interval_s: float = 5.0, probe_sets: tuple[str, ...] = sets.NAMES, map_sizes: dict | None = None,
                 probe_cost: bool = False, watch: list[str] | None = None, syslog: bool = False,
                 max_cpu: float | None = None, options: Mapping | None = None):
        """options: what the sets' collectors read (sets/*.py say which)."""
        self.interval_s = interval_s
        self.probe_sets = tuple(p for p in sets.NAMES if p in probe_sets)
        self.options = {"watch": list(watch) if watch is not None else list(watchlist.DEFAULT_WATCH),
                        "syslog": syslog, **(options or {})}
        # sizes the options call for (the profile's ring, by its rate), then those asked for
        self.map_sizes = {**sets.sizes_for(self.options), **(map_sizes or {})}
        sets.defines((), self.map_sizes)  # an unknown map size fails here, not at start()
        self.status: dict[str, str] = {p: STATUS_STARTING for p in self.probe_sets}
        self.caps: capabilities.Capabilities | None = None  # decided in start()
        self.capabilities: dict = {}  # self.caps as every snapshot carries it, with per-set notes
        self.max_cpu = max_cpu
        self.kernel: Kernel | None = None
        self.collectors: dict = {}  # probe set -> its collector, once loaded
        self.attachments: dict[str, attach.Attachment] = {}  # program -> how it is attached
        self.stats = ProgramStats(lambda: self.kernel.program_fds() if self.kernel else {}, self._hook_of)
        self.overhead: Overhead | None = None  # with max_cpu, once loaded
        self._probe_cost_wanted = probe_cost
        self._owners: dict[str, tuple[str, ...]] = {}  # BPF program -> the probe sets it serves
        self._lost = joins.Deltas()
        self._misses = joins.Deltas()  # runs the kernel skipped, per program
        self._notices: list[str] = []
        self._lock = threading.Lock()
        self._start_lock = threading.Lock()
        self._started_status: dict[str, str] | None = None
        self._closed = False
        self._counted_since: float | None = None  # time.monotonic() of the last poll (or of the start)
        self.cgroups = containers.Resolver(bpf_syscall.cgroup2_root(program.read_text("/proc/self/mounts")),
                                           os.environ.get(STATE_ROOT_ENV, "/"))

    @property
    def probe_stats(self) -> str:
        return self.stats.state

    # -- start-up ---------------------------------------------------------

    def start(self) -> dict[str, str]:
        """Compile, load and attach (about 1.5 s here).  Idempotent: the TUI
        starts it in a thread before Textual is even imported, and the app's
        own call then waits for that one."""
        with self._start_lock:
            if self._started_status is None:
                self._started_status = self._start()
            return dict(self._started_status)

    def _load(self, names: tuple[str, ...]) -> Kernel:
        text, cflags = program.source_text(names, self.caps, program.tracefs_root(), program.bpf_dir(), self.map_sizes)
        if self.max_cpu is not None:
            cflags.append("-DEBPFTOP_SAMPLING")  # only then: the sampling's test is off the hot path otherwise
        return Kernel.load(text, cflags, self.caps)

    def _start(self) -> dict[str, str]:
        tfs = program.tracefs_root()
        try:
            self.caps = capabilities.detect_here(tfs)
        except capabilities.UnsupportedError as e:
            self.status.update(dict.fromkeys(self.probe_sets, str(e)))
            return dict(self.status)
        self.capabilities = self.caps.to_dict()
        self.capabilities["notes"] = {p: n for p, n in self.caps.notes().items() if p in self.probe_sets}
        mounts = program.read_text("/proc/self/mounts")
        runnable = []
        for name in self.probe_sets:
            why = program.why_not_runnable(sets.BY_NAME[name], tfs, mounts)
            if why:
                self.status[name] = why
            else:
                runnable.append(name)
        kernel, loaded, failed = program.load_with_fallback(tuple(runnable), self._load)
        self.status.update(failed)
        with self._lock:
            if self._closed:
                if kernel is not None:
                    kernel.close()
                return dict(self.status)
            self.kernel = kernel
            if kernel is not None:
                self._run(kernel, loaded)
        if self._probe_cost_wanted and kernel is not None:
            self.set_probe_stats(True)
        return dict(self.status)

    def _run(self, kernel: Kernel, loaded: tuple[str, ...]) -> None:
        """Collectors, ring buffers and attachments of the loaded sets; the lock is held."""
        for name in loaded:
            self.status[name] = STATUS_OK
            collector = sets.BY_NAME[name].collector(kernel, self.options)
            for ring, method in collector.rings.items():
                kernel.open_ring(ring, getattr(collector, method))
            collector.start()
            self.collectors[name] = collector
        # new cgroups named the moment they are made: a `docker run --rm` job
        # can come and go between two reads of the shared ring buffers
        kernel.read_ring_in_thread("cgroup_events", self._on_cgroup, "ebpftop-cgroups")
        for a in attach.attached_by_bcc(kernel):
            self.attachments.update(dict.fromkeys(a.programs, a))
        for name in loaded:
            for a in attach.declared(kernel, sets.BY_NAME[name], self.options):
                try:
                    a.attach()
                except Exception as e:  # noqa: BLE001 - the set says why; the others run
                    self.status[name] = str(e)
                    continue
                self.attachments.update(dict.fromkeys(a.programs, a))
        self._lost = joins.Deltas(self._read_lost())
        self._counted_since = time.monotonic()
        self._owners = program.program_owners(loaded, program.bpf_dir(), self.caps)
        self._misses = joins.Deltas(self.stats.misses())
        if self.max_cpu is not None:
            running = tuple(p for p in self.probe_sets if self.status.get(p) == STATUS_OK)
            masks = {p: sets.BY_NAME[p].sample_mask for p in running if sets.BY_NAME[p].sample_mask}
            self.overhead = Overhead(self.max_cpu, self.interval_s, kernel, self.stats, self.attachments,
                                     self._owners, running, masks, self._lock)
            self.overhead.open_window()

    def _on_cgroup(self, data, _size) -> None:
        e = ctypes.cast(data, ctypes.POINTER(containers.CgroupEventStruct)).contents
        self.cgroups.learn(e.id, containers.decode_path(e.path))

    def _hook_of(self, prog: str) -> str:
        a = self.attachments.get(prog)
        return a.hook_name(prog) if a is not None else ""

    # -- polling ----------------------------------------------------------

    def poll(self) -> Snapshot:
        # A poll makes one object per map entry; the cyclic GC would otherwise
        # rescan every object in the process several times while it runs.
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            with self._lock:
                snap = self._poll()
            # each process's start time as it is now, at the end of its interval
            # (an action on its row is checked against it: act.py); read from
            # /proc outside the lock, which poll_alerts waits on every half second
            return snap.replace(starts=act.start_times(snapshots.processes(snap.parts)))
        finally:
            if gc_was_enabled:
                gc.enable()

    def _poll(self) -> Snapshot:
        now = time.time()
        # the interval the counts cover, as measured: a poll can come late
        # (a loaded machine, a TUI busy drawing), and rates and shares of a
        # CPU are of the time that passed, not of the --interval asked for
        mono = time.monotonic()
        interval_s = self.interval_s if self._counted_since is None else max(0.001, round(mono - self._counted_since, 3))
        self._counted_since = mono
        parts: dict = {}
        own: dict = {}
        if self.kernel is not None:
            self.kernel.consume_rings()
            sampled = self.overhead.sampled_1_in if self.overhead else 1  # set at a poll: the whole interval had it
            for name, collector in self.collectors.items():
                ctx = PollContext(time.monotonic_ns(), sampled if sets.BY_NAME[name].sample_mask else 1)
                status = self.status.get(name, "")
                if status == STATUS_OK:
                    try:
                        parts.update(collector.collect(ctx))
                    except Exception as e:  # noqa: BLE001 - one set's read failing must not stop the others
                        # its parts stay empty this interval, said once in the notices; it is read again
                        # at the next poll (a lookup that failed once here: a per-CPU array's, under test)
                        self._notices.append(f"{name}: could not read its maps this interval "
                                             f"({type(e).__name__}: {e})")
                elif budget.is_shed(status):
                    # Detached by --max-cpu, but a program it shares with a set
                    # still attached (the raw sys_enter) may go on counting for
                    # it: its maps are emptied, not shown, and never fill up.
                    collector.discard(ctx)
            if self.stats.on:
                own["probes"] = self.stats.costs()
            if self.overhead is not None:
                own["budget"] = self.overhead.judge(own.get("probes", ()), self.status)
                self._notices += self.overhead.notices
                self.overhead.notices = []
                self.overhead.open_window()  # the next interval's
            lost = {c: n for c, n in self._lost.step(self._read_lost()).items()
                    if any(c in sets.BY_NAME[p].loss_counters for p in self.probe_sets)}
            own["lost"] = lost
            own["skipped"] = joins.skipped_by_set(self._misses.step(self.stats.misses()), self._owners)
            own["containers"] = self.cgroups.resolve(snapshots.cgroups(parts))
        if self._notices:
            own["notices"], self._notices = tuple(self._notices), []
        return snapshots.new(now, interval_s, status=dict(self.status), probe_stats=self.probe_stats,
                             capabilities=self.capabilities, **own, **parts)

    def _read_lost(self) -> dict[str, int]:
        table = self.kernel.table("lost")
        return {name: sum(as_int(n) for n in table[ctypes.c_int(slot)]) for name, slot in sets.LOST_SLOT.items()}

    def poll_alerts(self) -> list[Alert]:
        """Alerts since the last call (the TUI asks every half second, so an
        alert shows at once, not at the next interval).  The snapshots carry
        them as well, for --json and recordings."""
        with self._lock:
            if self.kernel is None or self._closed:
                return []
            self.kernel.consume_rings()
            return [a for c in self.collectors.values() for a in c.take_alerts()]

    def drain_events(self) -> None:
        """Read the ring buffers now (headless modes call this every half
        second between polls); what is read waits for the next poll."""
        with self._lock:
            if self.kernel is not None and not self._closed:
                self.kernel.consume_rings()

    def set_probe_stats(self, on: bool) -> str:
        with self._lock:
            return self.stats.set(on)

    def set_option(self, name: str, value) -> bool:
        with self._lock:
            if self._closed:
                return False
            self.options = {**self.options, name: value}
            return any([c.set_option(name, value) for c in self.collectors.values()])

    def attached_hooks(self) -> dict:
        """Where the loaded programs are attached: classic and raw tracepoint
        names, cgroup_skb directions, and the perf events opened (type,
        config, period, frequency, user_only: the bench's floor puts empty
        programs on exactly these)."""
        with self._lock:
            if self.kernel is None:
                return {"tracepoints": [], "raw_tracepoints": [], "cgroup_skb": [], "perf_events": []}
            links = [a for a in set(self.attachments.values()) if isinstance(a, attach.CgroupSkbLinks) and a.attached]
            perf = [a for a in set(self.attachments.values()) if isinstance(a, attach.PerfEvents)]
            return {
                "tracepoints": self.kernel.attached_tracepoints(),
                "raw_tracepoints": self.kernel.attached_raw_tracepoints(),
                "cgroup_skb": [d for a in links for _, d in a.declared.programs],
                "perf_events": [{"type": a.declared.event_type, "config": a.declared.config,
                                 "period": a.declared.period, "frequency": a.frequency,
                                 "user_only": a.declared.user_only} for a in perf if a.fds],
            }

    def close(self) -> None:
        self.set_probe_stats(False)
        with self._lock:
            self._closed = True
            if self.overhead is not None:
                self.overhead.close_window()
            for a in set(self.attachments.values()):
                if not isinstance(a, (attach.Tracepoint, attach.RawTracepoint)):
                    a.detach()
            if self.kernel is not None:
                self.kernel.close()
                self.kernel = None
