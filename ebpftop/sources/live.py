"""The live source: loads the probe sets with BCC, attaches them, drains their
maps into a Snapshot at each poll, and detaches them.  The only module that
imports ``bcc``.

What the program text is (sources/program.py), how events and entries become
rows (sources/events.py) and the joins between polls (sources/joins.py) live
elsewhere, without bcc, and are unit-tested there.  Every probe set is one
C file concatenated into one BCC module: one clang compile at start-up and
one program per kernel hook; a set that fails to load is left out with the
reason as its status (program.load_with_fallback).
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import os
import sys
import tempfile
import threading
import time
from collections import deque

from ebpftop import aggregate, budget, capabilities, containers, model, probesets
from ebpftop import watch as watchlist
from ebpftop.history import MAX_ALERTS
from ebpftop.model import STATUS_OK, STATUS_STARTING, Alert, ProbeCost, Snapshot
from ebpftop.sources import bpf_syscall, events, joins, mapbatch, program
from ebpftop.sources.events import as_int

# perf_event_open(2): the software event counting page faults
PERF_TYPE_SOFTWARE = 1
PERF_COUNT_SW_PAGE_FAULTS = 2

PATH_CACHE_SIZE = 65536
# Where the container runtimes' files are read (containers.py), when not under /: the tests' fixtures
STATE_ROOT_ENV = "EBPFTOP_STATE_ROOT"


def _to_syslog(alert: Alert) -> None:
    import syslog

    from ebpftop.watch import syslog_message

    syslog.syslog(syslog.LOG_AUTHPRIV | syslog.LOG_WARNING, syslog_message(alert))


def _detach_tracepoints_at_once(bpf) -> None:
    """Detach every classic tracepoint program, in parallel.  Each detach waits
    for the kernel's RCU grace periods (about 70 ms here); one after the other,
    as BCC's cleanup does them, quitting took 1.5 s; together, about half."""
    from concurrent.futures import ThreadPoolExecutor

    tracepoints = list(bpf.tracepoint_fds)
    if not tracepoints:
        return
    with ThreadPoolExecutor(max_workers=len(tracepoints), thread_name_prefix="ebpftop-detach") as pool:
        for done in [pool.submit(bpf.detach_tracepoint, tp) for tp in tracepoints]:
            with contextlib.suppress(Exception):  # BCC's cleanup retries what is left
                done.result()


@contextlib.contextmanager
def _captured_fd2():
    with tempfile.TemporaryFile() as log:
        saved = os.dup(2)
        os.dup2(log.fileno(), 2)
        try:
            yield log
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _error_text(e: Exception) -> str:
    return e.strerror if isinstance(e, OSError) and e.strerror else program.first_line(str(e))


def _drain_with_bcc(table):
    """Every (key, value) of a hash map, each deleted as it is read, so
    nothing is counted twice and nothing between read and delete is lost."""
    try:
        return list(table.items_lookup_and_delete_batch())
    except Exception:  # noqa: BLE001 - kernels before 5.6 lack the batch ops
        items = []
        for k, _v in list(table.items()):
            try:
                items.append((k, table[k]))
                del table[k]
            except KeyError:
                pass
        return items


class LiveSource:
    kind = "live"
    label = ""

    def __init__(
        self,
        interval_s: float = 5.0,
        probe_sets: tuple[str, ...] = probesets.NAMES,
        map_sizes: dict | None = None,
        probe_cost: bool = False,
        watch: list[str] | None = None,
        syslog: bool = False,
        max_cpu: float | None = None,
    ):
        self.interval_s = interval_s
        self.probe_sets = tuple(p for p in probesets.NAMES if p in probe_sets)
        self.map_sizes = dict(map_sizes or {})
        probesets.defines((), self.map_sizes)  # an unknown map size fails here, not at start()
        self.status: dict[str, str] = {p: STATUS_STARTING for p in self.probe_sets}
        self.probe_stats = "off"
        self.caps: capabilities.Capabilities | None = None  # decided in start()
        self.capabilities: dict = {}  # self.caps as every snapshot carries it, with per-set notes
        self.watch = list(watch) if watch is not None else list(watchlist.DEFAULT_WATCH)
        self._syslog = syslog
        self._probe_cost_wanted = probe_cost
        self.max_cpu = max_cpu
        # --max-cpu without --probe-cost measures its programs' run times in a
        # window of each interval, not all the time (_open_budget_window)
        self.budget_window_s = min(budget.WINDOW_S, interval_s * budget.WINDOW_SHARE)
        self._window_fd: int | None = None
        self._window_start: tuple[float, dict[str, int]] | None = None
        self._window_timer: threading.Timer | None = None
        self._window: tuple[float, dict[str, int]] | None = None  # (seconds, run time per program) last measured
        self._window_failed = False
        self._governor: budget.Governor | None = None  # with max_cpu, once loaded
        self._sampled_1_in = 1  # the latency probes' sampling in the interval being counted
        self._detached_progs: set[str] = set()  # programs detached to shed load
        self._load_mark: tuple[float, float] | None = None  # (monotonic, process CPU time) at the last poll
        self._notices: list[str] = []
        self._budget_judging = False
        self._bpf = None
        self._lock = threading.Lock()
        self._start_lock = threading.Lock()
        self._started_status: dict[str, str] | None = None
        self._closed = False
        self._lost = joins.Deltas()
        self._owners: dict[str, tuple[str, ...]] = {}  # BPF program -> the probe sets it serves
        self._misses = joins.Deltas()  # runs the kernel skipped, per program
        self._stats_fd: int | None = None  # open while BPF run-time statistics are wanted
        self._stats = joins.Deltas()  # prog id -> (run time, runs): every program on the machine
        self._our_ids: dict[int, str] = {}  # prog id -> the name of one of ours
        self._holders: dict[int, list] = {}  # prog id -> processes holding it (refreshed when a new one shows)
        self._tcp_pending: list = []
        self._proc_pending: list = []
        self._alerts_interval: list[Alert] = []  # for the next snapshot
        self._alerts_new: deque[Alert] = deque(maxlen=MAX_ALERTS)  # for poll_alerts(), bounded
        self._paths: dict[int, str] = {}  # path hash -> path (see bpf/file_opens.c)
        self._drainers: dict[bytes, mapbatch.BatchDrainer | None] = {}  # None: BCC reads that map
        self._path_reader: mapbatch.ElementReader | None = None
        self._udp_owners = joins.UdpOwners()
        self._udp_links: list[int] = []  # cgroup link fds: closing them detaches udp.c's programs
        self._tcp_traffic = joins.TcpTraffic()
        self._tcp_evicted: list = []  # (sk, struct tcp_conn) from tcp_traffic.c's ring buffer
        self._tcp_resets_unowned = joins.Deltas()
        self._perf_fds: list[int] = []  # the page-fault perf events, where that is the hook
        # cgroup id -> container (containers.py); roots overridable for the tests
        self._cgroup_thread: threading.Thread | None = None  # names new cgroups as they come (_watch_cgroups)
        self._cgroup_stop = threading.Event()
        self._cgroup_ring = None
        self._shared_rings = False  # some ring buffer is open in BCC's poller
        self.cgroups = containers.Resolver(
            bpf_syscall.cgroup2_root(program.read_text("/proc/self/mounts")),
            os.environ.get(STATE_ROOT_ENV, "/"))

    # -- start-up ---------------------------------------------------------

    def _load(self, names: tuple[str, ...]):
        from bcc import BPF  # the only import of bcc in ebpftop

        text, cflags = program.source_text(names, self.caps, program.tracefs_root(), program.bpf_dir(),
                                           self.map_sizes)
        if self.max_cpu is not None:
            cflags.append("-DEBPFTOP_SAMPLING")  # only then: the sampling's test is off the hot path otherwise
        # clang and libbpf write their diagnostics to fd 2: keep them off the
        # screen, and keep the first error as the set's reason.
        with _captured_fd2() as log:
            try:
                return BPF(text=text.encode(), cflags=cflags)
            except Exception as e:  # noqa: BLE001 - BCC raises plain Exception
                log.seek(0)
                detail = log.read().decode("utf-8", "replace")
                raise RuntimeError(program.first_line(detail if "error" in detail else e)) from None

    def start(self) -> dict[str, str]:
        """Compile, load and attach (about 1.5 s here).  Idempotent: the TUI
        starts it in a thread before Textual is even imported, and the app's
        own call then waits for that one."""
        with self._start_lock:
            if self._started_status is None:
                self._started_status = self._start()
            return dict(self._started_status)

    def _start(self) -> dict[str, str]:
        tfs = program.tracefs_root()
        try:
            self.caps = capabilities.detect_here(tfs)
        except capabilities.UnsupportedError as e:
            for p in self.probe_sets:
                self.status[p] = str(e)
            return dict(self.status)
        self.capabilities = self.caps.to_dict()
        self.capabilities["notes"] = {p: n for p, n in self.caps.notes().items() if p in self.probe_sets}
        mounts = program.read_text("/proc/self/mounts")
        runnable = []
        for name in self.probe_sets:
            why = program.why_not_runnable(probesets.BY_NAME[name], tfs, mounts)
            if why:
                self.status[name] = why
            else:
                runnable.append(name)
        bpf, loaded, failed = program.load_with_fallback(tuple(runnable), self._load)
        self.status.update(failed)
        with self._lock:
            if self._closed:
                if bpf is not None:
                    bpf.cleanup()
                return dict(self.status)
            self._bpf = bpf
            for name in loaded:
                self.status[name] = STATUS_OK
            if bpf is not None:
                self._open_streams(bpf, loaded)
                if "udp" in loaded:
                    self._attach_udp(bpf)
                if "page_faults" in loaded and not self.caps.page_fault_tracepoint:
                    self._attach_page_fault_event(bpf)
            self._lost = joins.Deltas(self._read_lost())
            self._owners = program.program_owners(loaded, program.bpf_dir())
            self._misses = joins.Deltas(self._read_misses())
            if self.max_cpu is not None and bpf is not None:
                self._start_budget(bpf)
                if not self._probe_cost_wanted:
                    self._open_budget_window()
        if self._probe_cost_wanted and bpf is not None:
            self.set_probe_stats(True)
        return dict(self.status)

    # -- the overhead budget (--max-cpu; budget.py decides) ----------------

    def _start_budget(self, bpf) -> None:
        running = tuple(p for p in self.probe_sets if self.status.get(p) == STATUS_OK)
        self._governor = budget.Governor(self.max_cpu, "read_latency" in running, running, self._owners)
        self._load_mark = (time.monotonic(), time.process_time())

    def _measure_load(self, probes) -> tuple[float, float | None, float, dict[str, float]]:
        """(load, kernel share, own share, per-program kernel shares) of the
        interval since the last poll, in percent of one CPU.  The kernel
        share is the whole interval's while the statistics are on all the
        time (--probe-cost, or c in the Probes pane), else its window's."""
        now = (time.monotonic(), time.process_time())
        then, self._load_mark = self._load_mark or now, now
        wall = max(now[0] - then[0], 1e-3)
        own_pct = (now[1] - then[1]) / wall * 100
        if self._stats_fd is not None:
            ours = {p.name: p.run_time_ns for p in probes if p.ours}
        else:
            self._close_budget_window()  # if the poll came before its end
            if self._window is None:
                return own_pct, None, own_pct, {}
            wall, ours = self._window
            self._window = None
        kernel_pct = sum(ours.values()) / (wall * 1e9) * 100
        return kernel_pct + own_pct, kernel_pct, own_pct, budget.program_costs(ours, wall)

    def _open_budget_window(self) -> None:
        """Turn the run-time statistics on for budget_window_s: while they
        are on, every BPF program on the machine reads the clock twice more
        per run (measured: ebpftop's added ns per getppid() 38 -> 78), so
        --max-cpu keeps them on for a window of each interval only and
        takes the window's load as the interval's.  The lock is held."""
        if self._stats_fd is not None or self._window_fd is not None or self._closed:
            return  # on all the time already (the Probes pane's), or open
        try:
            self._window_fd = bpf_syscall.enable_run_time_stats()
        except OSError as e:
            if not self._window_failed:  # said once
                self._window_failed = True
                self._notices.append(f"--max-cpu: the kernel's BPF run-time statistics are unavailable "
                                     f"({e.strerror or e}; they need Linux 5.8): only ebpftop's own CPU is "
                                     f"measured, and the probes are never shed")
            return
        self._window_start = (time.monotonic(), self._our_run_times())
        self._window_timer = threading.Timer(self.budget_window_s, self._end_budget_window)
        self._window_timer.daemon = True
        self._window_timer.start()

    def _end_budget_window(self) -> None:
        with self._lock:
            self._close_budget_window()

    def _close_budget_window(self) -> None:
        """The window's run time per program, into self._window; the lock is held."""
        if self._window_timer is not None:
            self._window_timer.cancel()
            self._window_timer = None
        if self._window_fd is None:
            return
        end = self._our_run_times()
        os.close(self._window_fd)
        self._window_fd = None
        t0, start = self._window_start
        self._window = (max(time.monotonic() - t0, 1e-3), {name: ns - start.get(name, 0) for name, ns in end.items()})

    def _our_run_times(self) -> dict[str, int]:
        return {name: d.run_time_ns for name, d in self._our_programs().items()}

    def _apply_budget(self, probes) -> model.Budget:
        load, kernel_pct, own_pct, costs = self._measure_load(probes)
        gov = self._governor
        if not self._budget_judging:
            # The first interval is not judged: it holds start-up's CPU
            # (loading the TUI, say), not what ebpftop costs running.
            self._budget_judging = True
            return gov.state(load, kernel_pct, own_pct)
        steps_before = len(gov.steps)
        step = gov.decide(load, kernel_pct or 0.0, costs)
        state = gov.state(load, kernel_pct, own_pct)
        if step is None:
            return state
        self._set_sampling(state.latency_sampled_1_in)
        self._set_detached(state)
        if len(gov.steps) > steps_before:
            what = (f"latency sampled 1 in {step.value} (its counts are estimates)" if step.kind == "sample"
                    else f"{', '.join(step.value)} detached")
            self._notices.append(f"over the --max-cpu budget ({load:.1f}% of a CPU > {self.max_cpu:g}%): {what}")
        else:
            n = state.latency_sampled_1_in
            what = (f"{', '.join(step.value)} attached again" if step.kind == "detach"
                    else f"latency sampled 1 in {n}" if n > 1 else "latency timed on every call again")
            self._notices.append(f"load {load:.1f}% of a CPU, under the --max-cpu budget of {self.max_cpu:g}%: {what}")
        return state

    def _set_sampling(self, n: int) -> None:
        try:
            self._bpf[b"latency_sample_mask"][ctypes.c_int(0)] = ctypes.c_uint(n - 1)
        except KeyError:
            return  # the latency set is not loaded
        self._sampled_1_in = n

    def _set_detached(self, state: model.Budget) -> None:
        """Detach every program all of whose sets are shed; re-attach the
        others detached before (a restored set starts from empty maps)."""
        shed = set(state.detached)
        for name in self.probe_sets:
            if name in shed:
                self.status[name] = budget.shed_status(state)
            elif budget.is_shed(self.status.get(name, "")):
                self.status[name] = STATUS_OK  # its maps were emptied at this poll (_poll)
        for prog, sets in self._owners.items():  # the raw sys_enter is every entry-taking set's (sys_enter.c)
            off = bool(sets) and set(sets) <= shed
            if off and prog not in self._detached_progs and self._program_attached(prog):
                self._attach_program(prog, False)
                self._detached_progs.add(prog)
            elif not off and prog in self._detached_progs:
                self._attach_program(prog, True)
                self._detached_progs.discard(prog)

    def _program_attached(self, prog: str) -> bool:
        bpf = self._bpf
        if prog.startswith("tracepoint__"):
            return _tracepoint_of(prog) in bpf.tracepoint_fds
        if prog.startswith("raw_tracepoint__"):
            return prog[len("raw_tracepoint__"):].encode() in bpf.raw_tracepoint_fds
        if prog in ("udp_egress", "udp_ingress"):
            return bool(self._udp_links)
        if prog == "page_fault_event":
            return bool(self._perf_fds)
        return False

    def _attach_program(self, prog: str, on: bool) -> None:
        bpf = self._bpf
        with _captured_fd2():
            if prog.startswith("tracepoint__"):
                tp = _tracepoint_of(prog)
                if on:
                    bpf.attach_tracepoint(tp=tp, fn_name=prog.encode())
                else:
                    bpf.detach_tracepoint(tp)
            elif prog.startswith("raw_tracepoint__"):
                event = prog[len("raw_tracepoint__"):].encode()
                if on:
                    bpf.attach_raw_tracepoint(tp=event, fn_name=prog.encode())
                else:
                    bpf.detach_raw_tracepoint(event)
            elif prog in ("udp_egress", "udp_ingress"):  # linked together
                if on and not self._udp_links:
                    self._attach_udp(bpf)
                elif not on:
                    self._close_udp_links()
            elif prog == "page_fault_event":
                if on and not self._perf_fds:
                    self._attach_page_fault_event(bpf)
                elif not on:
                    for fd in self._perf_fds:
                        os.close(fd)
                    self._perf_fds = []

    def _open_streams(self, bpf, loaded) -> None:
        """The ring buffers, and the watch list the alerts need."""
        self._watch_cgroups(bpf)
        # the sets' ring buffers share BCC's one poller (cgroups.c's has its own)
        self._shared_rings = bool({"tcp", "processes", "tcp_traffic", "file_opens"} & set(loaded))
        if "tcp" in loaded:
            bpf[b"tcp_events"].open_ring_buffer(self._on_tcp_event)
        if "processes" in loaded:
            bpf[b"proc_events"].open_ring_buffer(self._on_proc_event)
        if "tcp_traffic" in loaded:
            bpf[b"tcp_evicted"].open_ring_buffer(self._on_tcp_evicted)
        if "file_opens" in loaded:
            watched = bpf[b"watched_paths"]
            for h in watchlist.hashes(self.watch):
                watched[ctypes.c_ulonglong(h)] = ctypes.c_ubyte(1)
            bpf[b"alert_events"].open_ring_buffer(self._on_alert)

    def _attach_udp(self, bpf) -> None:
        """Link udp.c's packet programs to the root of the cgroup v2 hierarchy
        (every process on the machine is under it).  On failure the UDP set
        says why and its programs are detached: the rest run."""
        from bcc import BPF

        root = bpf_syscall.cgroup2_root(program.read_text("/proc/self/mounts"))
        try:
            cgroup_fd = os.open(root or "/nonexistent", os.O_RDONLY | os.O_DIRECTORY)
        except OSError as e:
            self.status["udp"] = f"cannot open the cgroup v2 root {root}: {e.strerror}"
            return
        try:
            with _captured_fd2():
                for name, attach_type in ((b"udp_egress", bpf_syscall.BPF_CGROUP_INET_EGRESS),
                                          (b"udp_ingress", bpf_syscall.BPF_CGROUP_INET_INGRESS)):
                    fn = bpf.load_func(name, BPF.CGROUP_SKB)
                    self._udp_links.append(bpf_syscall.cgroup_link(fn.fd, cgroup_fd, attach_type))
        except Exception as e:  # noqa: BLE001 - BCC raises plain Exception
            self.status["udp"] = f"cannot attach to the cgroup v2 root {root}: {_error_text(e)}"
            self._close_udp_links()
        finally:
            os.close(cgroup_fd)

    def _attach_page_fault_event(self, bpf) -> None:
        """The perf software event page-faults, user mode only, every fault
        (period 1), on every CPU, for every task: where the kernel has no
        exceptions:page_fault_user (on arm64, for one)."""
        from bcc import BPF

        try:
            with _captured_fd2():
                fn = bpf.load_func(b"page_fault_event", BPF.PERF_EVENT)
            self._perf_fds = bpf_syscall.perf_event_with_program(
                fn.fd, PERF_TYPE_SOFTWARE, PERF_COUNT_SW_PAGE_FAULTS)
        except Exception as e:  # noqa: BLE001 - BCC raises plain Exception
            self.status["page_faults"] = f"cannot open the perf event page-faults: {_error_text(e)}"

    def _close_udp_links(self) -> None:
        for fd in self._udp_links:
            os.close(fd)
        self._udp_links = []

    def attached_hooks(self) -> dict:
        """Where the loaded programs are attached: classic and raw tracepoint
        names, cgroup_skb directions, and how many perf events (the bench's
        floor puts empty programs on exactly these)."""
        with self._lock:
            if self._bpf is None:
                return {"tracepoints": [], "raw_tracepoints": [], "cgroup_skb": [], "perf_events": 0}
            return {
                "tracepoints": sorted(k.decode() for k in self._bpf.tracepoint_fds),
                "raw_tracepoints": sorted(k.decode() for k in self._bpf.raw_tracepoint_fds),
                "cgroup_skb": ["egress", "ingress"] if self._udp_links else [],
                "perf_events": len(self._perf_fds),
            }

    # -- events between polls ---------------------------------------------

    def _on_tcp_event(self, _ctx, data, _size):
        e = self._bpf[b"tcp_events"].event(data)
        self._tcp_pending.append(events.tcp_connection(e, e.ts_ns, e.direction, bool(e.owner_known)))

    def _on_tcp_evicted(self, _ctx, data, _size):
        e = ctypes.cast(data, ctypes.POINTER(events.TcpEvictedStruct)).contents
        conn = events.TcpConnStruct()
        ctypes.pointer(conn)[0] = e.conn  # a copy: the ring buffer's memory is reused
        self._tcp_evicted.append((e.sk, conn))

    def _on_alert(self, _ctx, data, _size):
        e = self._bpf[b"alert_events"].event(data)
        alert = events.alert(e, e.ppid or events.ppid_of(e.pid))
        self._alerts_new.append(alert)
        self._alerts_interval.append(alert)
        if self._syslog:
            _to_syslog(alert)

    def _on_proc_event(self, _ctx, data, _size):
        self._proc_pending.append(events.process_event(ctypes.cast(data, ctypes.POINTER(events.ProcEventStruct)).contents))

    def _watch_cgroups(self, bpf) -> None:
        """New cgroups are named the moment they are made, by a thread of its
        own blocked on cgroups.c's ring buffer alone: a container's name
        lives in its runtime's files only while it exists, and a `docker run
        --rm` job can come and go between two reads of the shared ring
        buffers (half a second apart)."""
        from bcc.libbcc import _RINGBUF_CB_TYPE, lib

        def on_event(_ctx, data, _size) -> int:
            e = ctypes.cast(data, ctypes.POINTER(events.CgroupEventStruct)).contents
            self.cgroups.learn(e.id, aggregate.decode_c_string(e.path))
            return 0

        self._cgroup_callback = _RINGBUF_CB_TYPE(on_event)  # kept: the C side holds only a pointer
        ring = lib.bpf_new_ringbuf(bpf[b"cgroup_events"].map_fd, self._cgroup_callback, None)
        if not ring:
            return  # cgroups are then found by walking the cgroup mount at each poll
        self._cgroup_ring = ring
        self._cgroup_thread = threading.Thread(target=self._cgroup_loop, args=(lib,), name="ebpftop-cgroups",
                                               daemon=True)
        self._cgroup_thread.start()

    def _cgroup_loop(self, lib) -> None:
        while not self._cgroup_stop.is_set():
            lib.bpf_poll_ringbuf(self._cgroup_ring, 200)  # wakes on an event, or to look at the stop flag

    def _stop_watching_cgroups(self) -> None:
        if self._cgroup_thread is None:
            return
        from bcc.libbcc import lib

        self._cgroup_stop.set()
        self._cgroup_thread.join()
        self._cgroup_thread = None
        lib.bpf_free_ringbuf(self._cgroup_ring)
        self._cgroup_ring = None

    def _consume_rings(self) -> None:
        if self._bpf is not None and not self._closed and self._shared_rings:
            self._bpf.ring_buffer_consume()

    def poll_alerts(self) -> list[Alert]:
        """Alerts since the last call (the TUI asks every half second, so an
        alert shows at once, not at the next interval).  Kept for this call
        whether or not anyone makes it, up to MAX_ALERTS; the snapshots carry
        them as well, for --json and recordings."""
        with self._lock:
            self._consume_rings()
            new = list(self._alerts_new)
            self._alerts_new.clear()
            return new

    def drain_events(self) -> None:
        """Read the ring buffers now (headless modes call this every half
        second between polls); what is read waits for the next poll."""
        with self._lock:
            self._consume_rings()

    # -- polling ----------------------------------------------------------

    def _drain(self, name: bytes, key_fields: tuple[str, ...] | None, value_fields: tuple[str, ...]) -> list:
        """Every (key, value) of the hash map NAME, taken out of it, each a
        tuple of the fields asked for (a scalar's is "value"); with
        key_fields None, the values alone.  In bulk (mapbatch.py) where the
        kernel allows, else through BCC."""
        table = self._bpf[name]
        drainer = self._drainers.get(name, False)
        if drainer is False and not self.caps.map_batch:
            drainer = self._drainers[name] = None
        if drainer is False:
            try:
                drainer = mapbatch.BatchDrainer(table.map_fd, table.Key, table.Leaf, int(table.max_entries))
            except (TypeError, AttributeError):
                drainer = None
            self._drainers[name] = drainer
        if drainer is not None:
            try:
                return drainer.drain(key_fields, value_fields)
            except OSError:  # Linux < 5.6: no batch command
                self._drainers[name] = None

        def fields(obj, names):
            if names == ("value",):
                return (as_int(obj),)
            return tuple(getattr(obj, f) for f in names)

        if key_fields is None:
            return [fields(v, value_fields) for _k, v in _drain_with_bcc(table)]
        return [(fields(k, key_fields), fields(v, value_fields)) for k, v in _drain_with_bcc(table)]

    def poll(self) -> Snapshot:
        # A poll makes one object per map entry; the cyclic GC would otherwise
        # rescan every object in the process several times while it runs.
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            with self._lock:
                return self._poll()
        finally:
            if gc_was_enabled:
                gc.enable()

    def _poll(self) -> Snapshot:
        now = time.time()
        fields: dict = {}
        if self._bpf is not None:
            self._consume_rings()
            for name in self.probe_sets:
                status = self.status.get(name)
                if status == STATUS_OK:
                    fields.update(COLLECTORS[name](self, self._bpf))
                elif budget.is_shed(status or ""):
                    # Detached by --max-cpu, but a program it shares with a set
                    # still attached (the raw sys_enter) may go on counting for
                    # it: its maps are emptied, not shown, and never fill up.
                    COLLECTORS[name](self, self._bpf)
            if self._stats_fd is not None:
                fields["probes"] = self._probe_costs()
            if self._governor is not None:
                fields["budget"] = self._apply_budget(fields.get("probes", ()))
                self._open_budget_window()  # the next interval's
            if self._notices:
                fields["notices"], self._notices = tuple(self._notices), []
            lost_now = self._read_lost()
            counters = [c for p in self.probe_sets for c in probesets.BY_NAME[p].counters]
            lost = {c: n for c, n in self._lost.step(lost_now).items() if c in counters}
            fields["lost"] = joins.charge_misses(lost, self._misses.step(self._read_misses()), self._owners)
            fields["containers"] = self.cgroups.resolve(cgroups_in(fields))
        return Snapshot(time=now, interval_s=self.interval_s, status=dict(self.status),
                        probe_stats=self.probe_stats, capabilities=self.capabilities, **fields)

    def _collect_tcp(self, bpf) -> dict:
        table = bpf[b"tcp_pending_accept"]

        def take(key) -> bool:
            try:
                del table[key]  # an accept() may have claimed it meanwhile
                return True
            except KeyError:
                return False

        unclaimed = joins.unclaimed_accepts(list(table.items()), time.monotonic_ns(), take)
        tcp = self._tcp_pending + [events.tcp_connection(v, v.ts_ns, events.cdefs.DIRECTION_ACCEPT, False)
                                   for v in unclaimed]
        self._tcp_pending = []
        tcp.sort(key=lambda c: c.time, reverse=True)
        return {"tcp": tuple(tcp)}

    def _collect_tcp_traffic(self, bpf) -> dict:
        table = bpf[b"tcp_conns"]
        entries = [(k.value, v) for k, v in table.items()]
        evicted, self._tcp_evicted = self._tcp_evicted, []
        open_, closed, delete = self._tcp_traffic.step(entries, time.monotonic_ns(), evicted)
        for sk in delete:
            with contextlib.suppress(KeyError):
                del table[ctypes.c_ulonglong(sk)]
        unowned = sum(as_int(n) for n in bpf[b"tcp_resets_unowned"][ctypes.c_int(0)])
        return {
            "tcp_connections": aggregate.busiest_first([events.tcp_session(*r) for r in open_]),
            "tcp_closed": tuple(sorted((events.tcp_session(*r) for r in closed), key=lambda s: s.closed)),
            "tcp_resets_unowned": self._tcp_resets_unowned.step({"n": unowned})["n"],
        }

    def _collect_udp(self, bpf) -> dict:
        """The interval's flows.  Sent datagrams carry their sender; received
        ones are matched to their socket's owner (bpf/udp.c) -- or wait a poll
        for it, then go out with the owner unknown."""
        owners = bpf[b"udp_owner"]

        def owner_of(cookie: int):
            try:
                o = owners[ctypes.c_ulonglong(cookie)]
            except KeyError:
                return None
            return o.tgid, aggregate.decode_c_string(o.comm), o.cgroup

        entries = self._udp_owners.entries(_drain_with_bcc(bpf[b"udp_flows"]), owner_of, self.caps.sock_recv_length)
        return {"udp": aggregate.udp_flows(entries)}

    def _collect_syscalls(self, bpf) -> dict:
        return {"syscalls": aggregate.syscall_rows(self._thread_counts(bpf, b"syscall_counts", b"syscall_folded"))}

    def _collect_page_faults(self, bpf) -> dict:
        return {"page_faults": aggregate.page_fault_rows(self._thread_counts(bpf, b"fault_counts", b"fault_folded"))}

    def _collect_read_latency(self, bpf) -> dict:
        entries = ([], [])  # by latency_key.op: OP_READ, OP_WRITE
        decode = aggregate.decode_c_string
        for (cgroup, comm, tgid, slot, op), (count, sum_ns) in self._drain(
                b"latency_hist", ("cgroup", "comm", "tgid", "slot", "op"), ("count", "sum_ns")):
            entries[op].append((decode(comm), tgid, slot, count, sum_ns, cgroup))
        n = self._sampled_1_in  # set at a poll: the whole interval was counted with it
        return {"read_latency": aggregate.latency(entries[events.cdefs.OP_READ], n),
                "write_latency": aggregate.latency(entries[events.cdefs.OP_WRITE], n)}

    def _collect_file_opens(self, bpf) -> dict:
        decode = aggregate.decode_c_string
        known = self._paths.get  # nearly every path is cached: no method call per entry for it
        rows = aggregate.file_open_rows(
            (decode(comm), tgid, known(path_hash) or self._path(bpf, path_hash), flags, count, errors, cgroup)
            for (path_hash, cgroup, tgid, flags, comm), (count, errors) in self._drain(
                b"file_opens", ("path_hash", "cgroup", "tgid", "flags", "comm"), ("count", "errors"))
        )
        alerts, self._alerts_interval = tuple(self._alerts_interval), []
        return {"file_opens": rows, "alerts": alerts}

    def _collect_processes(self, bpf) -> dict:
        # Newest first, by time: the ring buffer holds events in the order the
        # CPUs reserved their slots, which two CPUs' events a microsecond
        # apart can invert (a test saw it once in three runs).
        events_, self._proc_pending = sorted(self._proc_pending, key=lambda e: e.time, reverse=True), []
        return {"processes": tuple(events_)}

    def _read_lost(self) -> dict[str, int]:
        if self._bpf is None:
            return {}
        table = self._bpf[b"lost"]
        return {name: sum(as_int(n) for n in table[ctypes.c_int(slot)])
                for name, slot in probesets.LOST_SLOT.items()}

    def _path(self, bpf, path_hash: int) -> str:
        """The path behind a hash, from the kernel's LRU map of paths, cached:
        a path is read from the kernel once, not at every poll."""
        path = self._paths.get(path_hash)
        if path is None:
            if self._path_reader is None:
                table = bpf[b"open_paths"]
                self._path_reader = mapbatch.ElementReader(table.map_fd, ctypes.sizeof(table.Key),
                                                           ctypes.sizeof(table.Leaf))
            raw = self._path_reader.get(path_hash.to_bytes(8, sys.byteorder))
            if raw is None:
                return "<path evicted before it was read>"
            path = aggregate.decode_c_string(raw)
            if len(self._paths) >= PATH_CACHE_SIZE:
                self._paths.clear()
            self._paths[path_hash] = path
        return path

    def _thread_counts(self, bpf, counts_name: bytes, folded_name: bytes):
        """(comm, tgid, count, cgroup) from a per-thread map and its folded
        twin.  The per-thread map is drained first: a fold between the two
        drains then lands in the folded map before it is read, never in neither."""
        decode = aggregate.decode_c_string
        entries = [(decode(comm), tgid, count, cgroup) for count, cgroup, tgid, comm
                   in self._drain(counts_name, None, ("count", "cgroup", "tgid", "comm"))]
        entries += [(decode(comm), tgid, count, cgroup) for (cgroup, comm, tgid), (count,)
                    in self._drain(folded_name, ("cgroup", "comm", "tgid"), ("value",))]
        return entries

    # -- probe costs ------------------------------------------------------

    def set_probe_stats(self, on: bool) -> str:
        """Turn the kernel's run-time statistics of BPF programs on or off
        (while on, every BPF program on the machine costs two clock reads
        more per run).  Returns the new state, or why it is unavailable."""
        with self._lock:
            if on and self._stats_fd is None:
                try:
                    self._stats_fd = bpf_syscall.enable_run_time_stats()
                except OSError as e:
                    self.probe_stats = f"unavailable: BPF_ENABLE_STATS failed ({e.strerror or e}; needs Linux 5.8)"
                    return self.probe_stats
                self._our_ids = self._our_program_ids()
                self._stats = joins.Deltas({pid: (d.run_time_ns, d.run_cnt) for pid, d in self._host_programs().items()})
                self._holders = {}
                self.probe_stats = "ok"
            elif not on and self._stats_fd is not None:
                os.close(self._stats_fd)
                self._stats_fd = None
                self.probe_stats = "off"
            return self.probe_stats

    def _our_programs(self) -> dict[str, bpf_syscall.ProgDetails]:
        """Each of ebpftop's loaded programs by its name, as the kernel sees it."""
        if self._bpf is None:
            return {}
        out = {}
        for name, fn in self._bpf.funcs.items():
            with contextlib.suppress(OSError):
                out[name.decode()] = bpf_syscall.prog_details(fn.fd)
        return out

    def _read_misses(self) -> dict[str, int]:
        return {name: d.recursion_misses for name, d in self._our_programs().items()}

    def _our_program_ids(self) -> dict[int, str]:
        return {d.prog_id: name for name, d in self._our_programs().items()}

    @staticmethod
    def _host_programs() -> dict[int, bpf_syscall.ProgDetails]:
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

    def _probe_costs(self) -> tuple[ProbeCost, ...]:
        """Every BPF program on the machine in the interval, ebpftop's marked;
        the processes holding the others (rescanned when one appears)."""
        progs = self._host_programs()
        spent = self._stats.step({pid: (d.run_time_ns, d.run_cnt) for pid, d in progs.items()})
        if any(pid not in self._our_ids and pid not in self._holders for pid in progs):
            self._holders = bpf_syscall.prog_holders()
            for pid in progs:
                self._holders.setdefault(pid, [])  # held by no process: not rescanned for it again
        costs = []
        for pid, d in progs.items():
            run_time, runs = spent[pid]
            ours = pid in self._our_ids
            costs.append(ProbeCost(name=self._our_ids.get(pid, d.name), runs=runs, run_time_ns=run_time,
                                   prog_id=pid, prog_type=d.prog_type, ours=ours,
                                   holders=() if ours else tuple(self._holders.get(pid, ()))))
        costs.sort(key=lambda c: (-c.run_time_ns, c.name))
        return tuple(costs)

    def close(self) -> None:
        self.set_probe_stats(False)
        with self._lock:
            self._closed = True
            self._close_budget_window()
            self._stop_watching_cgroups()
            self._close_udp_links()
            for fd in self._perf_fds:
                os.close(fd)
            self._perf_fds = []
            if self._bpf is not None:
                _detach_tracepoints_at_once(self._bpf)
                self._bpf.cleanup()
                self._bpf = None


def _tracepoint_of(prog: str) -> bytes:
    """BCC's program tracepoint__GROUP__EVENT -> b"GROUP:EVENT"."""
    group, _, event = prog[len("tracepoint__"):].partition("__")
    return f"{group}:{event}".encode()


def cgroups_in(fields: dict) -> set[int]:
    """The cgroup ids of every row in a snapshot's fields."""
    ids: set[int] = set()
    for name in model.ROW_LISTS:
        ids.update(r.cgroup for r in fields.get(name, ()))
    for name in ("read_latency", "write_latency"):
        if name in fields:
            ids.update(p.cgroup for p in fields[name].by_process)
    return ids


# What each probe set contributes to a snapshot, from its maps.
COLLECTORS = {
    "read_latency": LiveSource._collect_read_latency,
    "syscalls": LiveSource._collect_syscalls,
    "page_faults": LiveSource._collect_page_faults,
    "file_opens": LiveSource._collect_file_opens,
    "tcp": LiveSource._collect_tcp,
    "tcp_traffic": LiveSource._collect_tcp_traffic,
    "udp": LiveSource._collect_udp,
    "processes": LiveSource._collect_processes,
}
