"""The live source: compiles bpf/*.c with BCC, attaches them, and drains their
maps into a Snapshot at each poll.  The only module that imports ``bcc``.

Every pane's probe set is concatenated into one BCC module: one clang compile
at start-up (about a second here) and one program per kernel hook.  If that
module fails to compile or load, each pane is tried alone to find the culprit;
it is marked failed with the reason and the rest run without it.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import os
import tempfile
import platform
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ebpftop import aggregate, capabilities
from ebpftop import watch as watchlist
from ebpftop.model import (
    PANES,
    STATUS_OK,
    STATUS_STARTING,
    Alert,
    ProbeCost,
    ProcessEvent,
    Snapshot,
    TcpConnection,
    UdpFlow,
)
from ebpftop.sources import bpf_syscall

TRACEFS_DIRS = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")

# Loss counter slots, as in bpf/ebpftop.h.
LOST_SLOT = {"syscalls": 0, "read_latency": 1, "file_opens": 2, "page_faults": 3, "tcp": 4, "alerts": 5,
             "processes": 6, "udp": 7}

# Source files per pane, in the order they are concatenated.
PANE_SOURCES = {
    "read_latency": "syscall_latency.c",
    "syscalls": "syscalls.c",
    "page_faults": "page_faults.c",
    "file_opens": "file_opens.c",
    "tcp": "tcp.c",
    "udp": "udp.c",
    "processes": "processes.c",
}
CONCAT_ORDER = ("read_latency", "syscalls", "page_faults", "file_opens", "tcp", "udp", "processes")
# lifecycle.c holds the task hooks these panes share (one program per hook)
LIFECYCLE_PANES = ("syscalls", "page_faults", "file_opens", "processes")

# Tracepoints without which a pane cannot run, and optional ones (enabled by a
# define when present: open(2) does not exist on arm64, for one).
REQUIRED_TRACEPOINTS = {
    "tcp": ["sock/inet_sock_set_state", "syscalls/sys_enter_accept4", "syscalls/sys_exit_accept4"],
    "udp": [],  # cgroup programs; sock:sock_recv_length where the kernel has it (capabilities)
    "syscalls": ["raw_syscalls/sys_enter"],
    "read_latency": ["syscalls/sys_enter_read", "syscalls/sys_exit_read",
                     "syscalls/sys_enter_write", "syscalls/sys_exit_write"],
    "file_opens": ["syscalls/sys_enter_openat", "syscalls/sys_exit_openat", "task/task_newtask"],
    "page_faults": [],  # exceptions:page_fault_user, or the perf event (capabilities)
    "processes": ["task/task_newtask", "sched/sched_process_exec", "sched/sched_process_exit",
                  "syscalls/sys_enter_execve", "syscalls/sys_enter_exit_group"],
}
OPTIONAL_TRACEPOINTS = {
    "EBPFTOP_HAVE_OPEN": ["syscalls/sys_enter_open", "syscalls/sys_exit_open"],
    "EBPFTOP_HAVE_OPENAT2": ["syscalls/sys_enter_openat2", "syscalls/sys_exit_openat2"],
    "EBPFTOP_HAVE_CREAT": ["syscalls/sys_enter_creat", "syscalls/sys_exit_creat"],
    "EBPFTOP_HAVE_ACCEPT": ["syscalls/sys_enter_accept", "syscalls/sys_exit_accept"],
    "EBPFTOP_HAVE_TASK_RENAME": ["task/task_rename"],
    "EBPFTOP_HAVE_EXEC": ["sched/sched_process_exec"],
    "EBPFTOP_HAVE_EXIT": ["sched/sched_process_exit"],
}

# The tracepoint fields each probe set reads (args->FIELD in bpf/*.c; a unit
# test keeps this in step with the C).  Checked against the running kernel's
# format files before compiling: a kernel that renamed or dropped one makes
# that probe set fail with the field named, not with a clang error.
REQUIRED_FIELDS = {
    "tcp": {"sock/inet_sock_set_state": ("oldstate", "newstate", "protocol", "family", "sport", "dport",
                                         "saddr", "daddr", "saddr_v6", "daddr_v6", "skaddr"),
            "syscalls/sys_enter_accept4": ("upeer_sockaddr",), "syscalls/sys_exit_accept4": ("ret",)},
    "udp": {},
    "syscalls": {"sched/sched_process_exec": ("pid", "old_pid")},  # lifecycle.c folds at exec
    "read_latency": {"syscalls/sys_exit_read": (), "syscalls/sys_exit_write": ()},
    "file_opens": {"syscalls/sys_enter_openat": ("filename",), "syscalls/sys_exit_openat": ("ret",),
                   "task/task_newtask": ("pid", "clone_flags")},
    "page_faults": {"sched/sched_process_exec": ("pid", "old_pid")},
    "processes": {"task/task_newtask": ("pid", "clone_flags"),
                  "sched/sched_process_exec": ("pid", "old_pid", "filename"),
                  "syscalls/sys_enter_execve": ("argv",), "syscalls/sys_enter_exit_group": ("error_code",)},
}

# perf_event_open(2): the software event counting page faults
PERF_TYPE_SOFTWARE = 1
PERF_COUNT_SW_PAGE_FAULTS = 2

# read(2)'s and write(2)'s syscall numbers, for the raw sys_enter hook.
NR_READ = {"x86_64": 0, "aarch64": 63, "riscv64": 63, "ppc64le": 3, "s390x": 3}
NR_WRITE = {"x86_64": 1, "aarch64": 64, "riscv64": 64, "ppc64le": 4, "s390x": 4}


@dataclass(frozen=True)
class MapSizes:
    """Caps on every map: a fork storm or a path scan fills them, it does not
    grow ebpftop without bound.  What does not fit is counted as lost."""

    syscalls: int = 16384
    read_latency: int = 16384
    file_opens: int = 16384
    page_faults: int = 16384
    tcp: int = 8192
    tcp_ringbuf_pages: int = 64  # 256 KiB: about 2,900 connection events
    udp: int = 16384
    per_thread: int = 65536  # per-thread scratch, where task-local storage is missing

    def defines(self) -> list[str]:
        return [
            f"-DSYSCALLS_MAP_SIZE={self.syscalls}",
            f"-DREAD_LATENCY_MAP_SIZE={self.read_latency}",
            f"-DFILE_OPENS_MAP_SIZE={self.file_opens}",
            f"-DPAGE_FAULTS_MAP_SIZE={self.page_faults}",
            f"-DTCP_MAP_SIZE={self.tcp}",
            f"-DTCP_RINGBUF_PAGES={self.tcp_ringbuf_pages}",
            f"-DUDP_MAP_SIZE={self.udp}",
            f"-DPER_THREAD_MAP_SIZE={self.per_thread}",
        ]


PATH_CACHE_SIZE = 65536

# An accepted connection that no accept() claimed within this long is reported
# with its owner unknown (the server called accept() without an address buffer).
UNCLAIMED_ACCEPT_AFTER_NS = 2_000_000_000

# Datagrams received by a socket nobody has read from yet wait this many
# polls for an owner before they are reported with the owner unknown (the
# receiver may simply read them after the poll).
UDP_OWNER_WAIT_POLLS = 1


def bpf_dir() -> Path:
    """The eBPF C sources: packaged inside ebpftop/ when installed, or the
    repository's bpf/ when run from a checkout (EBPFTOP_BPF_DIR overrides)."""
    override = os.environ.get("EBPFTOP_BPF_DIR")
    if override:
        return Path(override)
    here = Path(__file__).resolve().parent.parent
    for candidate in (here / "bpf", here.parent / "bpf"):
        if (candidate / "ebpftop.h").is_file():
            return candidate
    raise FileNotFoundError("ebpftop's eBPF sources (bpf/*.c) are missing from this installation")


def tracefs_root() -> str | None:
    for d in TRACEFS_DIRS:
        if os.path.isdir(os.path.join(d, "events")):
            return d
    return None


def tracepoint_exists(root: str, name: str) -> bool:
    return os.path.isdir(os.path.join(root, "events", name))


def missing_field(tfs: str, tracepoints: dict) -> str | None:
    """The first 'group:event has no field F' among tracepoints' fields, or
    None.  A tracepoint that is absent is not checked here: REQUIRED_ and
    OPTIONAL_TRACEPOINTS decide about those."""
    for tp, fields in tracepoints.items():
        if not tracepoint_exists(tfs, tp):
            continue
        have = capabilities.format_fields(_read(os.path.join(tfs, "events", tp, "format")))
        for f in fields:
            if f not in have:
                return f"the kernel's {tp.replace('/', ':')} has no field {f}"
    return None


def as_int(value) -> int:
    """A map value as an int: BCC < 0.28 returns ints from batch lookups,
    later versions ctypes objects (iovisor/bcc 82469ea6)."""
    return int(getattr(value, "value", value))


def first_line(text: str) -> str:
    """The most useful line of a BCC/clang error: the first 'error:' line."""
    lines = [ln.strip() for ln in str(text).splitlines() if ln.strip()]
    for ln in lines:
        if "error:" in ln:
            return ln[:200]
    return (lines[0] if lines else "unknown error")[:200]


class ProcEventStruct(ctypes.Structure):
    """struct proc_event of bpf/processes.c (BCC cannot infer it: 2-D array)."""

    _fields_ = [
        ("ts_ns", ctypes.c_uint64),
        ("lifetime_ns", ctypes.c_uint64),
        ("kind", ctypes.c_uint32),
        ("pid", ctypes.c_uint32),
        ("ppid", ctypes.c_uint32),
        ("exit_code", ctypes.c_int32),
        ("has_code", ctypes.c_uint32),
        ("argc", ctypes.c_uint32),
        ("comm", ctypes.c_char * 16),
        ("filename", ctypes.c_char * 128),
        ("args", (ctypes.c_char * 48) * 4),
    ]


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def _ppid(pid: int) -> int:
    """The parent of pid, read at once (0 if it is already gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return int(f.read().rsplit(b")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return 0


def _to_syslog(alert: Alert) -> None:
    import syslog

    from ebpftop.text import visible

    syslog.syslog(
        syslog.LOG_AUTHPRIV | syslog.LOG_WARNING,
        f"ebpftop: watched file opened: path={visible(alert.path)} result={alert.result} pid={alert.pid} "
        f"ppid={alert.ppid} uid={alert.uid} comm={visible(alert.comm)}",
    )


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


class LiveSource:
    def __init__(
        self,
        interval_s: float = 5.0,
        panes: tuple[str, ...] = PANES,
        sizes: MapSizes = MapSizes(),
        probe_cost: bool = False,
        watch: list[str] | None = None,
        syslog: bool = False,
    ):
        self.interval_s = interval_s
        self.panes = tuple(p for p in PANES if p in panes)
        self.sizes = sizes
        self.status: dict[str, str] = {p: STATUS_STARTING for p in self.panes}
        self._bpf = None
        self._lock = threading.Lock()
        self._start_lock = threading.Lock()
        self._started_status: dict[str, str] | None = None
        self._lost_seen: dict[str, int] = {}
        self._tcp_pending: list[TcpConnection] = []
        self._paths: dict[int, str] = {}  # path hash -> path (see bpf/file_opens.c)
        self._stats_fd: int | None = None  # open while BPF run-time statistics are wanted
        self._stats_seen: dict[str, tuple[int, int]] = {}
        self.probe_stats = "off"
        self._probe_cost_wanted = probe_cost
        self.watch = list(watch) if watch is not None else list(watchlist.DEFAULT_WATCH)
        self._syslog = syslog
        self._alerts_new: list[Alert] = []  # not yet handed to poll_alerts()
        self._alerts_polled = False  # someone (the TUI) reads alerts between polls
        self._proc_pending: list[ProcessEvent] = []
        self._alerts_interval: list[Alert] = []  # not yet in a snapshot
        self._closed = False
        self._udp_links: list[int] = []  # cgroup link fds: closing them detaches udp.c's programs
        self._udp_waiting: list[tuple] = []  # received, owner not yet known: (polls waited, key, value)
        self.caps: capabilities.Capabilities | None = None  # decided in start()
        self.capabilities: dict = {}  # self.caps as every snapshot carries it, with per-pane notes
        self._perf_fds: list[int] = []  # the page-fault perf events, where that is the hook

    # -- start-up ---------------------------------------------------------

    def _source_text(self, panes: tuple[str, ...], root: Path) -> tuple[str, list[str]]:
        cflags = self.sizes.defines() + self.caps.defines()
        for p in panes:
            cflags.append(f"-DEBPFTOP_{p.upper()}")
        cflags.append(f"-DNR_READ={NR_READ.get(platform.machine(), -1)}")
        cflags.append(f"-DNR_WRITE={NR_WRITE.get(platform.machine(), -1)}")
        tfs = tracefs_root()
        for define, tps in OPTIONAL_TRACEPOINTS.items():
            if tfs and all(tracepoint_exists(tfs, tp) for tp in tps):
                cflags.append(f"-D{define}")
        parts = [(root / "ebpftop.h").read_text()]
        for p in CONCAT_ORDER:
            if p in panes:
                parts.append(f'#line 1 "{PANE_SOURCES[p]}"\n' + (root / PANE_SOURCES[p]).read_text())
        # lifecycle.c: the shared task hooks; without task storage also what
        # frees a thread's scratch when it exits
        if any(p in panes for p in LIFECYCLE_PANES) or not self.caps.task_storage:
            parts.append('#line 1 "lifecycle.c"\n' + (root / "lifecycle.c").read_text())
        return "\n".join(parts), cflags

    def _load(self, panes: tuple[str, ...], root: Path):
        from bcc import BPF  # the only import of bcc in ebpftop

        text, cflags = self._source_text(panes, root)
        # clang and libbpf write their diagnostics to fd 2: keep them off the
        # screen, and keep the first error as the pane's reason.
        with _captured_fd2() as log:
            try:
                return BPF(text=text.encode(), cflags=cflags)
            except Exception as e:  # noqa: BLE001 - BCC raises plain Exception
                log.seek(0)
                detail = log.read().decode("utf-8", "replace")
                raise RuntimeError(first_line(detail) if "error" in detail else first_line(str(e))) from None

    def start(self) -> dict[str, str]:
        """Compile, load and attach (about 1.5 s here).  Idempotent: the TUI
        starts it in a thread before Textual is even imported, and the app's
        own call then waits for that one."""
        with self._start_lock:
            if self._started_status is None:
                self._started_status = self._start()
            return dict(self._started_status)

    def _start(self) -> dict[str, str]:
        tfs = tracefs_root()
        try:
            self.caps = capabilities.detect_here(tfs)
            self.capabilities = self.caps.to_dict()
            self.capabilities["notes"] = {p: n for p, n in self.caps.notes().items() if p in self.panes}
        except capabilities.UnsupportedError as e:
            for p in self.panes:
                self.status[p] = str(e)
            return dict(self.status)
        runnable = []
        for p in self.panes:
            missing = [tp for tp in REQUIRED_TRACEPOINTS[p] if not (tfs and tracepoint_exists(tfs, tp))]
            no_field = missing_field(tfs, REQUIRED_FIELDS[p]) if tfs and not missing else None
            if missing:
                self.status[p] = f"kernel lacks tracepoint {missing[0].replace('/', ':')}"
            elif no_field:
                self.status[p] = no_field
            elif p == "udp" and bpf_syscall.cgroup2_root(_read("/proc/self/mounts")) is None:
                self.status[p] = ("needs the cgroup v2 hierarchy mounted "
                                  "(mount -t cgroup2 none /sys/fs/cgroup/unified)")
            else:
                runnable.append(p)
        root = bpf_dir()
        panes = tuple(runnable)
        bpf = None
        if panes:
            try:
                bpf = self._load(panes, root)
            except Exception as combined_error:  # noqa: BLE001 - BCC raises plain Exception
                # Find which panes fail on their own; keep the others.
                good = []
                for p in panes:
                    try:
                        self._load((p,), root).cleanup()
                        good.append(p)
                    except Exception as e:  # noqa: BLE001
                        self.status[p] = f"failed to load: {first_line(e)}"
                panes = tuple(good)
                if panes and len(good) == len(runnable):
                    # Each loads alone but not together: report that, run none.
                    for p in panes:
                        self.status[p] = f"failed to load: {first_line(combined_error)}"
                    panes = ()
                elif panes:
                    try:
                        bpf = self._load(panes, root)
                    except Exception as e:  # noqa: BLE001
                        for p in panes:
                            self.status[p] = f"failed to load: {first_line(e)}"
                        panes = ()
        with self._lock:
            if self._closed:
                if bpf is not None:
                    bpf.cleanup()
                return dict(self.status)
            self._bpf = bpf
            if bpf is not None and "tcp" in panes:
                bpf[b"tcp_events"].open_ring_buffer(self._on_tcp_event)
            if bpf is not None and "processes" in panes:
                bpf[b"proc_events"].open_ring_buffer(self._on_proc_event)
            if bpf is not None and "file_opens" in panes:
                watched = bpf[b"watched_paths"]
                for h in watchlist.hashes(self.watch):
                    watched[ctypes.c_ulonglong(h)] = ctypes.c_ubyte(1)
                bpf[b"alert_events"].open_ring_buffer(self._on_alert)
            for p in panes:
                self.status[p] = STATUS_OK
            if bpf is not None and "udp" in panes:
                self._attach_udp(bpf)
            if bpf is not None and "page_faults" in panes and not self.caps.page_fault_tracepoint:
                self._attach_page_fault_event(bpf)
            self._lost_seen = self._read_lost()
        if self._probe_cost_wanted and bpf is not None:
            self.set_probe_stats(True)
        return dict(self.status)

    def _attach_udp(self, bpf) -> None:
        """Link udp.c's packet programs to the root of the cgroup v2 hierarchy
        (every process on the machine is under it).  On failure the UDP pane
        says why, and its tracepoint is detached: the rest run."""
        from bcc import BPF

        root = bpf_syscall.cgroup2_root(_read("/proc/self/mounts"))
        try:
            cgroup_fd = os.open(root or "/nonexistent", os.O_RDONLY | os.O_DIRECTORY)
        except OSError as e:
            self.status["udp"] = f"cannot open the cgroup v2 root {root}: {e.strerror}"
        else:
            try:
                with _captured_fd2():
                    for name, attach_type in ((b"udp_egress", bpf_syscall.BPF_CGROUP_INET_EGRESS),
                                              (b"udp_ingress", bpf_syscall.BPF_CGROUP_INET_INGRESS)):
                        fn = bpf.load_func(name, BPF.CGROUP_SKB)
                        self._udp_links.append(bpf_syscall.cgroup_link(fn.fd, cgroup_fd, attach_type))
            except Exception as e:  # noqa: BLE001 - BCC raises plain Exception
                why = e.strerror if isinstance(e, OSError) and e.strerror else first_line(str(e))
                self.status["udp"] = f"cannot attach to the cgroup v2 root {root}: {why}"
            finally:
                os.close(cgroup_fd)
        if self.status["udp"] != STATUS_OK:
            self._close_udp_links()
            if self.caps.sock_recv_length:
                with contextlib.suppress(Exception):
                    bpf.detach_tracepoint(b"sock:sock_recv_length")

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
            why = e.strerror if isinstance(e, OSError) and e.strerror else first_line(str(e))
            self.status["page_faults"] = f"cannot open the perf event page-faults: {why}"

    def _close_udp_links(self) -> None:
        for fd in self._udp_links:
            os.close(fd)
        self._udp_links = []

    # -- polling ----------------------------------------------------------

    def _on_tcp_event(self, _ctx, data, _size):
        e = self._bpf[b"tcp_events"].event(data)
        self._tcp_pending.append(self._tcp_connection(e, e.ts_ns, e.direction, bool(e.owner_known)))

    def _on_alert(self, _ctx, data, _size):
        e = self._bpf[b"alert_events"].event(data)
        alert = Alert(
            time=self._wall_time(e.ts_ns),
            pid=e.pid,
            ppid=e.ppid or _ppid(e.pid),
            uid=e.uid,
            comm=aggregate.decode_c_string(e.comm),
            path=aggregate.decode_c_string(e.path),
            ret=e.ret,
        )
        self._alerts_new.append(alert)
        self._alerts_interval.append(alert)
        if self._syslog:
            _to_syslog(alert)

    def _on_proc_event(self, _ctx, data, _size):
        e = ctypes.cast(data, ctypes.POINTER(ProcEventStruct)).contents
        kind = {1: "fork", 2: "exec", 3: "exit"}.get(e.kind, "?")
        self._proc_pending.append(ProcessEvent(
            time=self._wall_time(e.ts_ns),
            kind=kind,
            pid=e.pid,
            ppid=e.ppid,
            comm=aggregate.decode_c_string(e.comm),
            filename=aggregate.decode_c_string(e.filename) if kind == "exec" else "",
            args=tuple(aggregate.decode_c_string(bytes(e.args[i])) for i in range(min(e.argc, len(e.args)))),
            exit_code=e.exit_code if kind == "exit" and e.has_code else None,
            lifetime_s=e.lifetime_ns / 1e9 if kind == "exit" and e.lifetime_ns else None,
        ))

    def poll_alerts(self) -> list[Alert]:
        """Alerts since the last call: the UI asks every half second, so an
        alert shows at once rather than at the next interval."""
        with self._lock:
            self._alerts_polled = True
            if self._bpf is None or self.status.get("file_opens") != STATUS_OK:
                return []
            self._bpf.ring_buffer_consume()
            new, self._alerts_new = self._alerts_new, []
            return new

    def drain_events(self) -> None:
        """Read the ring buffers now (headless modes call this every half
        second between polls); what is read waits for the next poll."""
        with self._lock:
            if self._bpf is None or self._closed:
                return
            if any(self.status.get(p) == STATUS_OK for p in ("tcp", "file_opens", "processes")):
                self._bpf.ring_buffer_consume()
            if not self._alerts_polled:
                self._alerts_new = []  # nobody reads them between polls: the snapshot carries them

    @staticmethod
    def _wall_time(ts_ns: int) -> float:
        # bpf_ktime_get_ns() is CLOCK_MONOTONIC
        return time.time() - (time.monotonic_ns() - ts_ns) / 1e9

    def _tcp_connection(self, e, ts_ns: int, direction: int, owner_known: bool) -> TcpConnection:
        return TcpConnection(
            time=self._wall_time(ts_ns),
            pid=e.pid if owner_known else 0,
            comm=aggregate.decode_c_string(e.comm) if owner_known else "",
            family=aggregate.family_name(e.family),
            saddr=aggregate.format_addr(e.family, e.saddr),
            sport=e.sport,
            daddr=aggregate.format_addr(e.family, e.daddr),
            dport=e.dport,
            direction="connect" if direction == 1 else "accept",
        )

    @staticmethod
    def _drain(table):
        """Every (key, value) of a hash map, each deleted as it is read, so
        nothing is counted twice and nothing between read and delete is lost."""
        try:
            return list(table.items_lookup_and_delete_batch())
        except Exception:  # noqa: BLE001 - kernels before 5.6 lack the batch ops
            items = []
            for k, v in list(table.items()):
                try:
                    items.append((k, table[k]))
                    del table[k]
                except KeyError:
                    pass
            return items

    def _read_lost(self) -> dict[str, int]:
        if self._bpf is None:
            return {}
        table = self._bpf[b"lost"]
        totals = {}
        for pane, slot in LOST_SLOT.items():
            totals[pane] = sum(as_int(n) for n in table[ctypes.c_int(slot)])
        return totals

    def _unclaimed_accepts(self) -> list[TcpConnection]:
        table = self._bpf[b"tcp_pending_accept"]
        now = time.monotonic_ns()
        out = []
        for k, v in list(table.items()):
            if now - v.ts_ns < UNCLAIMED_ACCEPT_AFTER_NS:
                continue
            try:
                del table[k]  # it may have been claimed meanwhile: then skip it
            except KeyError:
                continue
            out.append(self._tcp_connection(v, v.ts_ns, 2, False))
        return out

    def poll(self) -> Snapshot:
        # A poll makes one object per map entry; the cyclic GC would otherwise
        # rescan every object in the process several times while it runs.
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            return self._poll()
        finally:
            if gc_was_enabled:
                gc.enable()

    def _poll(self) -> Snapshot:
        with self._lock:
            bpf = self._bpf
            now = time.time()
            if bpf is None:
                return Snapshot(time=now, interval_s=self.interval_s, status=dict(self.status),
                                capabilities=self.capabilities)
            running = {p for p, s in self.status.items() if s == STATUS_OK}
            kw = {}
            if running & {"tcp", "file_opens", "processes"}:
                bpf.ring_buffer_consume()
            if "processes" in running:
                kw["processes"] = tuple(reversed(self._proc_pending))
                self._proc_pending = []
            if "file_opens" in running:
                kw["alerts"] = tuple(self._alerts_interval)
                self._alerts_interval = []
                if not self._alerts_polled:
                    # headless: nobody asks poll_alerts(); the snapshot is the only reader.
                    # Otherwise the alerts this poll drained still go to poll_alerts().
                    self._alerts_new = []
            if "tcp" in running:
                tcp = self._tcp_pending + self._unclaimed_accepts()
                self._tcp_pending = []
                tcp.sort(key=lambda c: c.time, reverse=True)
                kw["tcp"] = tuple(tcp)
            if "udp" in running:
                kw["udp"] = self._udp_flows(bpf)
            if "syscalls" in running:
                kw["syscalls"] = aggregate.syscall_rows(self._thread_counts("syscall_counts", "syscall_folded"))
            if "page_faults" in running:
                kw["page_faults"] = aggregate.page_fault_rows(self._thread_counts("fault_counts", "fault_folded"))
            if "read_latency" in running:
                entries = ([], [])  # read, write
                for k, v in self._drain(bpf[b"latency_hist"]):
                    entries[k.op].append((aggregate.decode_c_string(k.comm), k.tgid, k.slot, v.count, v.sum_ns))
                kw["read_latency"] = aggregate.latency(entries[0])
                kw["write_latency"] = aggregate.latency(entries[1])
            if "file_opens" in running:
                kw["file_opens"] = aggregate.file_open_rows(
                    (aggregate.decode_c_string(k.comm), k.tgid, self._path(k.path_hash), k.flags, v.count, v.errors)
                    for k, v in self._drain(bpf[b"file_opens"])
                )
            if self._stats_fd is not None:
                kw["probes"] = self._probe_costs()
            lost_now = self._read_lost()
            counted = [*self.panes, "alerts"] if "file_opens" in self.panes else list(self.panes)
            lost = {p: lost_now[p] - self._lost_seen.get(p, 0) for p in counted if p in lost_now}
            self._lost_seen = lost_now
            return Snapshot(
                time=now,
                interval_s=self.interval_s,
                status=dict(self.status),
                lost=lost,
                probe_stats=self.probe_stats,
                capabilities=self.capabilities,
                **kw,
            )

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
                self._stats_seen = self._read_prog_stats()
                self.probe_stats = "ok"
            elif not on and self._stats_fd is not None:
                os.close(self._stats_fd)
                self._stats_fd = None
                self.probe_stats = "off"
            return self.probe_stats

    def _read_prog_stats(self) -> dict[str, tuple[int, int]]:
        if self._bpf is None:
            return {}
        out = {}
        for name, fn in self._bpf.funcs.items():
            try:
                out[name.decode()] = bpf_syscall.prog_run_stats(fn.fd)
            except OSError:
                continue
        return out

    def _probe_costs(self) -> tuple[ProbeCost, ...]:
        now = self._read_prog_stats()
        costs = []
        for name, (run_time, runs) in now.items():
            t0, r0 = self._stats_seen.get(name, (0, 0))
            costs.append(ProbeCost(name=name, runs=runs - r0, run_time_ns=run_time - t0))
        self._stats_seen = now
        costs.sort(key=lambda c: (-c.run_time_ns, c.name))
        return tuple(costs)

    def _udp_flows(self, bpf) -> tuple[UdpFlow, ...]:
        """The interval's flows.  Sent datagrams carry their sender; received
        ones are matched to their socket's owner (bpf/udp.c) -- or wait a poll
        for it, then go out with the owner unknown."""
        owners = bpf[b"udp_owner"]
        resolved: dict[int, tuple[int, str] | None] = {}
        entries = []
        waiting = [(0, k, v) for k, v in self._drain(bpf[b"udp_flows"])] + self._udp_waiting
        self._udp_waiting = []
        for waited, k, v in waiting:
            if k.dir == aggregate.UDP_SENT:
                pid, comm = k.tgid, aggregate.decode_c_string(k.comm)
            else:
                if k.cookie not in resolved:
                    try:
                        o = owners[ctypes.c_ulonglong(k.cookie)]
                        resolved[k.cookie] = (o.tgid, aggregate.decode_c_string(o.comm))
                    except KeyError:
                        resolved[k.cookie] = None
                owner = resolved[k.cookie]
                if owner is None and waited < UDP_OWNER_WAIT_POLLS and self.caps.sock_recv_length:
                    self._udp_waiting.append((waited + 1, k, v))
                    continue
                pid, comm = owner or (0, "")
            entries.append((
                pid, comm, aggregate.family_name(k.family),
                aggregate.format_addr(k.family, k.laddr), k.lport,
                aggregate.format_addr(k.family, k.raddr), k.rport,
                k.dir, v.datagrams, v.bytes,
            ))
        return aggregate.udp_flows(entries)

    def _path(self, path_hash: int) -> str:
        """The path behind a hash, from the kernel's LRU map of paths, cached:
        a path is read from the kernel once, not at every poll."""
        path = self._paths.get(path_hash)
        if path is None:
            try:
                raw = self._bpf[b"open_paths"][ctypes.c_ulonglong(path_hash)].path
            except KeyError:
                return "<path evicted before it was read>"
            path = aggregate.decode_c_string(raw)
            if len(self._paths) >= PATH_CACHE_SIZE:
                self._paths.clear()
            self._paths[path_hash] = path
        return path

    def _thread_counts(self, counts_name: str, folded_name: str):
        """(comm, tgid, count) from a per-thread map and its folded twin.  The
        per-thread map is drained first: a fold between the two drains then
        lands in the folded map before it is read, never in neither."""
        entries = [
            (aggregate.decode_c_string(v.comm), v.tgid, v.count)
            for _k, v in self._drain(self._bpf[counts_name.encode()])
        ]
        entries += [
            (aggregate.decode_c_string(k.comm), k.tgid, as_int(v))
            for k, v in self._drain(self._bpf[folded_name.encode()])
        ]
        return entries

    def close(self) -> None:
        self.set_probe_stats(False)
        with self._lock:
            self._closed = True
            self._close_udp_links()
            for fd in self._perf_fds:
                os.close(fd)
            self._perf_fds = []
            if self._bpf is not None:
                _detach_tracepoints_at_once(self._bpf)
                self._bpf.cleanup()
                self._bpf = None
