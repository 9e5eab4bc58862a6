"""The snapshot: everything one poll of the probes produced, frozen.

Rows are NamedTuples (immutable, and several times cheaper to build than
frozen dataclasses: a poll makes one per map entry).

Data flows one way: BPF maps -> source.poll() -> Snapshot -> filter -> panes.
A Snapshot is what the UI draws, what --json prints and what --record writes;
``to_dict``/``from_dict`` are the one JSON form of it.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import NamedTuple

# Which probe set fills which field: ebpftop/probesets.py.

STATUS_OK = "ok"
STATUS_STARTING = "starting"


class Container(NamedTuple):
    """What a cgroup is, when it is not the host's: a container, a pod's
    container, a systemd service or a user session (containers.py)."""

    kind: str  # docker, kubernetes, containerd, cri-o, podman, lxc, service, session
    id: str  # the runtime's container id, or the unit's name
    name: str  # the runtime's name for it, else a short id; the unit for a service
    pod: str = ""  # Kubernetes only
    namespace: str = ""  # Kubernetes only

    @property
    def label(self) -> str:
        """What the CONTAINER column shows: the name, pod/container for Kubernetes."""
        return f"{self.pod}/{self.name}" if self.pod else self.name

    def matches(self, name: str) -> bool:
        """--container NAME: its name, pod/container, pod, or a prefix of its id (4 characters at least)."""
        return name in (self.name, self.label, self.pod) or (len(name) >= 4 and self.id.startswith(name))

    def to_dict(self) -> dict:
        return {"kind": self.kind, "id": self.id, "name": self.name, "pod": self.pod, "namespace": self.namespace}

    @classmethod
    def from_dict(cls, d: dict) -> Container:
        return cls(kind=str(d["kind"]), id=str(d["id"]), name=str(d["name"]), pod=str(d.get("pod") or ""),
                   namespace=str(d.get("namespace") or ""))


HOST = "host"  # what --container and the CONTAINER column call rows of no container


class TcpConnection(NamedTuple):
    time: float  # wall-clock seconds since the epoch
    pid: int  # 0 when the owner is unknown (see bpf/tcp.c)
    comm: str
    family: str  # "ipv4" or "ipv6"
    saddr: str  # local address
    sport: int
    daddr: str  # remote address
    dport: int
    direction: str  # "connect" or "accept"
    cgroup: int = 0  # cgroup v2 id (0: unknown); Snapshot.containers says what it is

    def to_dict(self) -> dict:
        return {
            "pid": self.pid,
            "comm": self.comm,
            "family": self.family,
            "saddr": self.saddr,
            "sport": self.sport,
            "daddr": self.daddr,
            "dport": self.dport,
            "direction": self.direction,
            "time": iso_time(self.time),
            "cgroup": self.cgroup,
        }

    @classmethod
    def from_dict(cls, d: dict) -> TcpConnection:
        return cls(
            time=parse_iso_time(d["time"]),
            pid=int(d["pid"]),
            comm=str(d["comm"]),
            family=str(d["family"]),
            saddr=str(d["saddr"]),
            sport=int(d["sport"]),
            daddr=str(d["daddr"]),
            dport=int(d["dport"]),
            direction=str(d["direction"]),
            cgroup=int(d.get("cgroup", 0)),
        )


class TcpSession(NamedTuple):
    """One TCP connection's traffic (probe set tcp_traffic): bytes in the
    interval and since it opened, retransmitted segments and resets."""

    pid: int  # 0 when no owner was seen (accepted, never read from or written to)
    comm: str
    family: str  # "ipv4" or "ipv6"
    saddr: str  # local
    sport: int
    daddr: str  # remote
    dport: int
    direction: str  # "connect" or "accept"
    state: str  # ESTABLISHED, CLOSE_WAIT, ... (CLOSE once closed)
    opened: float  # wall-clock seconds: connect(), or the accepted connection's handshake
    closed: float | None  # when it closed; None while open
    tx_bytes: int  # sent in the interval
    rx_bytes: int  # received in the interval
    tx_total: int
    rx_total: int
    retransmits: int = 0  # segments, since it opened
    resets_sent: int = 0
    resets_received: int = 0
    cgroup: int = 0  # cgroup v2 id (0: unknown); Snapshot.containers says what it is

    def duration_s(self, now: float) -> float:
        return max(0.0, (self.closed if self.closed is not None else now) - self.opened)

    def to_dict(self) -> dict:
        d = self._asdict()
        d["opened"] = iso_time(self.opened)
        d["closed"] = None if self.closed is None else iso_time(self.closed)
        if self.closed is not None:
            d["duration_s"] = round(self.closed - self.opened, 6)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TcpSession:
        return cls(
            pid=int(d["pid"]), comm=str(d["comm"]), family=str(d["family"]),
            saddr=str(d["saddr"]), sport=int(d["sport"]), daddr=str(d["daddr"]), dport=int(d["dport"]),
            direction=str(d["direction"]), state=str(d["state"]),
            opened=parse_iso_time(d["opened"]),
            closed=None if d.get("closed") is None else parse_iso_time(d["closed"]),
            tx_bytes=int(d["tx_bytes"]), rx_bytes=int(d["rx_bytes"]),
            tx_total=int(d["tx_total"]), rx_total=int(d["rx_total"]),
            retransmits=int(d.get("retransmits", 0)), resets_sent=int(d.get("resets_sent", 0)),
            resets_received=int(d.get("resets_received", 0)), cgroup=int(d.get("cgroup", 0)),
        )


class TcpProcessTraffic(NamedTuple):
    """TCP bytes of one process over its connections (open or closed in the interval)."""

    comm: str
    pid: int
    connections: int
    tx_bytes: int
    rx_bytes: int
    tx_total: int
    rx_total: int
    retransmits: int
    resets: int
    cgroup: int = 0  # cgroup v2 id (0: unknown); Snapshot.containers says what it is

    def to_dict(self) -> dict:
        return self._asdict()


class UdpFlow(NamedTuple):
    """Datagrams and payload bytes of one process on one (local, remote) pair
    in the interval, both ways."""

    pid: int  # 0 when nobody was seen owning the receiving socket (see bpf/udp.c)
    comm: str
    family: str  # "ipv4" or "ipv6"
    laddr: str
    lport: int
    raddr: str
    rport: int
    tx_datagrams: int = 0
    tx_bytes: int = 0
    rx_datagrams: int = 0
    rx_bytes: int = 0
    cgroup: int = 0  # cgroup v2 id (0: unknown); Snapshot.containers says what it is

    def to_dict(self) -> dict:
        return {
            "pid": self.pid,
            "comm": self.comm,
            "family": self.family,
            "laddr": self.laddr,
            "lport": self.lport,
            "raddr": self.raddr,
            "rport": self.rport,
            "tx_datagrams": self.tx_datagrams,
            "tx_bytes": self.tx_bytes,
            "rx_datagrams": self.rx_datagrams,
            "rx_bytes": self.rx_bytes,
            "cgroup": self.cgroup,
        }

    @classmethod
    def from_dict(cls, d: dict) -> UdpFlow:
        return cls(
            pid=int(d["pid"]),
            comm=str(d["comm"]),
            family=str(d["family"]),
            laddr=str(d["laddr"]),
            lport=int(d["lport"]),
            raddr=str(d["raddr"]),
            rport=int(d["rport"]),
            tx_datagrams=int(d["tx_datagrams"]),
            tx_bytes=int(d["tx_bytes"]),
            rx_datagrams=int(d["rx_datagrams"]),
            rx_bytes=int(d["rx_bytes"]),
            cgroup=int(d.get("cgroup", 0)),
        )


class SyscallRow(NamedTuple):
    comm: str
    count: int
    by_pid: tuple[tuple[int, int], ...]  # (pid, count), largest first
    cgroup: int = 0  # cgroup v2 id (0: unknown); Snapshot.containers says what it is

    @property
    def pids(self) -> int:
        return len(self.by_pid)

    def to_dict(self) -> dict:
        return {
            "comm": self.comm,
            "count": self.count,
            "pids": self.pids,
            "by_pid": {str(pid): n for pid, n in self.by_pid},
            "cgroup": self.cgroup,
        }

    @classmethod
    def from_dict(cls, d: dict) -> SyscallRow:
        by_pid = tuple((int(p), int(n)) for p, n in d.get("by_pid", {}).items())
        return cls(comm=str(d["comm"]), count=int(d["count"]), by_pid=by_pid, cgroup=int(d.get("cgroup", 0)))


class Bucket(NamedTuple):
    """A log2 bucket: durations d with low_ns <= d < high_ns."""

    low_ns: int
    high_ns: int
    count: int


class Histogram(NamedTuple):
    buckets: tuple[Bucket, ...]  # ascending, only non-empty buckets
    sum_ns: int = 0  # exact sum of the durations counted

    @property
    def mean_ns(self) -> int | None:
        n = self.count
        return round(self.sum_ns / n) if n else None

    @property
    def count(self) -> int:
        return sum(b.count for b in self.buckets)

    def percentile(self, p: float) -> int | None:
        """The p-th percentile (0 < p < 100), interpolated linearly inside its
        log2 bucket: exact to within that bucket's width.  None when empty."""
        total = self.count
        if total == 0:
            return None
        rank = p / 100.0 * total
        seen = 0
        for b in self.buckets:
            if seen + b.count >= rank:
                frac = (rank - seen) / b.count
                return int(round(b.low_ns + frac * (b.high_ns - b.low_ns)))
            seen += b.count
        return self.buckets[-1].high_ns

    @staticmethod
    def merge(histograms) -> Histogram:
        counts: dict[tuple[int, int], int] = {}
        total = 0
        for h in histograms:
            total += h.sum_ns
            for b in h.buckets:
                counts[(b.low_ns, b.high_ns)] = counts.get((b.low_ns, b.high_ns), 0) + b.count
        return Histogram(tuple(Bucket(lo, hi, n) for (lo, hi), n in sorted(counts.items()) if n), total)

    @staticmethod
    def from_log2_slots(slots: dict[int, int], sum_ns: int = 0) -> Histogram:
        """From BCC's bpf_log2l() slots: slot k >= 1 holds [2^(k-1), 2^k), slot 0 holds 0."""
        buckets = []
        for slot in sorted(slots):
            n = slots[slot]
            if n <= 0:
                continue
            low, high = LOG2_BOUNDS[slot]
            buckets.append(Bucket(low, high, n))
        return Histogram(tuple(buckets), sum_ns)

    def to_dict(self) -> dict:
        return {
            "count": self.count,
            "p50_ns": self.percentile(50),
            "p90_ns": self.percentile(90),
            "p99_ns": self.percentile(99),
            "sum_ns": self.sum_ns,
            "buckets": [{"low_ns": b.low_ns, "high_ns": b.high_ns, "count": b.count} for b in self.buckets],
        }

    @classmethod
    def from_dict(cls, d: dict) -> Histogram:
        return cls(
            tuple(Bucket(int(b["low_ns"]), int(b["high_ns"]), int(b["count"])) for b in d["buckets"]),
            int(d.get("sum_ns", 0)),
        )


EMPTY_HISTOGRAM = Histogram(())

# bpf_log2l() slot k >= 1 holds [2^(k-1), 2^k); slot 0 holds 0
LOG2_BOUNDS = tuple((0, 1) if k == 0 else (1 << (k - 1), 1 << k) for k in range(65))


class ProcessLatency(NamedTuple):
    comm: str
    pid: int
    histogram: Histogram
    cgroup: int = 0  # cgroup v2 id (0: unknown); Snapshot.containers says what it is


@dataclass(frozen=True)
class Latency:
    by_process: tuple[ProcessLatency, ...]
    # > 1: the probes sampled 1 call in N (--max-cpu shed load): every count
    # and sum is the sample's times N, an estimate; percentiles are unbiased
    sampled_1_in: int = 1

    @property
    def estimated(self) -> bool:
        return self.sampled_1_in > 1

    @property
    def total(self) -> Histogram:
        return Histogram.merge(p.histogram for p in self.by_process)

    def by_name(self) -> list[tuple[str, int, Histogram]]:
        """(comm, cgroup, histogram) per process name in each cgroup: a name
        in two containers is two rows."""
        groups: dict[tuple[str, int], list[Histogram]] = {}
        for p in self.by_process:
            groups.setdefault((p.comm, p.cgroup), []).append(p.histogram)
        return [(comm, cg, Histogram.merge(hs)) for (comm, cg), hs in sorted(groups.items())]

    def by_comm(self) -> dict[str, Histogram]:
        groups: dict[str, list[Histogram]] = {}
        for p in self.by_process:
            groups.setdefault(p.comm, []).append(p.histogram)
        return {comm: Histogram.merge(hs) for comm, hs in sorted(groups.items())}

    def to_dict(self) -> dict:
        return {
            "sampled_1_in": self.sampled_1_in,
            "estimated": self.estimated,
            "total": self.total.to_dict(),
            "by_comm": {comm: h.to_dict() for comm, h in self.by_comm().items()},
            "by_process": [
                {"comm": p.comm, "pid": p.pid, "cgroup": p.cgroup, **p.histogram.to_dict()} for p in self.by_process
            ],
        }

    @classmethod
    def from_dict(cls, d: dict) -> Latency:
        return cls(
            tuple(
                ProcessLatency(str(p["comm"]), int(p["pid"]), Histogram.from_dict(p), int(p.get("cgroup", 0)))
                for p in d.get("by_process", [])
            ),
            int(d.get("sampled_1_in", 1)),
        )


class FileOpenRow(NamedTuple):
    comm: str
    pid: int
    path: str
    count: int
    errors: int
    truncated: bool = False  # the path was longer than the probe reads
    cgroup: int = 0  # cgroup v2 id (0: unknown); Snapshot.containers says what it is

    def to_dict(self) -> dict:
        return {
            "comm": self.comm,
            "pid": self.pid,
            "path": self.path,
            "count": self.count,
            "errors": self.errors,
            "truncated": self.truncated,
            "cgroup": self.cgroup,
        }

    @classmethod
    def from_dict(cls, d: dict) -> FileOpenRow:
        return cls(
            comm=str(d["comm"]),
            pid=int(d["pid"]),
            path=str(d["path"]),
            count=int(d["count"]),
            errors=int(d["errors"]),
            truncated=bool(d.get("truncated", False)),
            cgroup=int(d.get("cgroup", 0)),
        )


class PageFaultRow(NamedTuple):
    comm: str
    pid: int
    count: int
    cgroup: int = 0  # cgroup v2 id (0: unknown); Snapshot.containers says what it is

    def to_dict(self) -> dict:
        return {"comm": self.comm, "pid": self.pid, "count": self.count, "cgroup": self.cgroup}

    @classmethod
    def from_dict(cls, d: dict) -> PageFaultRow:
        return cls(comm=str(d["comm"]), pid=int(d["pid"]), count=int(d["count"]), cgroup=int(d.get("cgroup", 0)))


class ProcessEvent(NamedTuple):
    """A process was forked, exec'd a program, or exited."""

    time: float
    kind: str  # "fork", "exec" or "exit"
    pid: int
    ppid: int  # fork: the parent; exec and exit: the parent if ebpftop saw the fork, else 0
    comm: str
    filename: str = ""  # exec: the program
    args: tuple = ()  # exec: the first arguments (argv[0] first), each cut at 47 bytes
    exit_code: int | None = None  # exit: the code given to exit_group(); None if killed by a signal
    lifetime_s: float | None = None  # exit: since the fork, when ebpftop saw it
    cgroup: int = 0  # cgroup v2 id (0: unknown); Snapshot.containers says what it is

    def to_dict(self) -> dict:
        return {
            "time": iso_time(self.time),
            "kind": self.kind,
            "pid": self.pid,
            "ppid": self.ppid,
            "comm": self.comm,
            "filename": self.filename,
            "args": list(self.args),
            "exit_code": self.exit_code,
            "lifetime_s": self.lifetime_s,
            "cgroup": self.cgroup,
        }

    @classmethod
    def from_dict(cls, d: dict) -> ProcessEvent:
        return cls(
            time=parse_iso_time(d["time"]),
            kind=str(d["kind"]),
            pid=int(d["pid"]),
            ppid=int(d["ppid"]),
            comm=str(d["comm"]),
            filename=str(d.get("filename", "")),
            args=tuple(str(a) for a in d.get("args", [])),
            exit_code=None if d.get("exit_code") is None else int(d["exit_code"]),
            lifetime_s=None if d.get("lifetime_s") is None else float(d["lifetime_s"]),
            cgroup=int(d.get("cgroup", 0)),
        )


class Alert(NamedTuple):
    """An open of a watched path, successful or not."""

    time: float
    pid: int
    ppid: int  # 0 when the process was gone before it could be read
    uid: int
    comm: str
    path: str
    ret: int  # the fd, or -errno
    cgroup: int = 0  # cgroup v2 id (0: unknown); Snapshot.containers says what it is

    @property
    def result(self) -> str:
        if self.ret >= 0:
            return "ok"
        import errno

        return errno.errorcode.get(-self.ret, str(self.ret))

    def to_dict(self) -> dict:
        return {
            "time": iso_time(self.time),
            "pid": self.pid,
            "ppid": self.ppid,
            "uid": self.uid,
            "comm": self.comm,
            "path": self.path,
            "result": self.result,
            "ret": self.ret,
            "cgroup": self.cgroup,
        }

    @classmethod
    def from_dict(cls, d: dict) -> Alert:
        return cls(
            time=parse_iso_time(d["time"]),
            pid=int(d["pid"]),
            ppid=int(d["ppid"]),
            uid=int(d["uid"]),
            comm=str(d["comm"]),
            path=str(d["path"]),
            ret=int(d["ret"]),
            cgroup=int(d.get("cgroup", 0)),
        )


RAW_TRACEPOINT_GROUPS = {"sys_enter": "raw_syscalls", "tcp_send_reset": "tcp", "tcp_retransmit_skb": "tcp",
                         "tcp_receive_reset": "tcp"}  # raw ones are named by event only


class ProbeCost(NamedTuple):
    """One BPF program on the machine in the interval, ebpftop's or another
    tool's, from the kernel's run-time statistics (BPF_ENABLE_STATS)."""

    name: str  # ebpftop's: tracepoint__<category>__<event>, ...; another's: the kernel's name for it
    runs: int
    run_time_ns: int
    prog_id: int = 0
    prog_type: str = ""  # tracepoint, kprobe, cgroup_skb, ... ("" in recordings made before it was kept)
    ours: bool = True  # one of ebpftop's own
    holders: tuple = ()  # ((pid, comm), ...) holding it open; () for ebpftop's (and for a pinned one)

    @property
    def owner(self) -> str:
        if self.ours:
            return "ebpftop"
        if len(self.holders) > 2:  # a program shared by a pool of processes: one name, and how many more
            pid, comm = self.holders[0]
            return f"{comm}[{pid}] +{len(self.holders) - 1} more"
        return ", ".join(f"{comm}[{pid}]" for pid, comm in self.holders) or "-"

    @property
    def hook(self) -> str:
        if not self.ours:
            return f"{self.prog_type or '?'} {self.name}"
        if self.name.startswith("tracepoint__"):
            category, _, event = self.name[len("tracepoint__"):].partition("__")
            return f"{category}:{event}"
        if self.name.startswith("raw_tracepoint__"):
            event = self.name[len("raw_tracepoint__"):]
            return f"{RAW_TRACEPOINT_GROUPS.get(event, '?')}:{event} (raw)"
        if self.name == "page_fault_event":
            return "perf:page-faults (user mode)"
        if self.name in ("udp_egress", "udp_ingress"):
            return f"cgroup_skb/{self.name[4:]} (every packet)"
        return self.name

    @property
    def avg_ns(self) -> float | None:
        return self.run_time_ns / self.runs if self.runs else None

    def cpu_pct(self, interval_s: float) -> float:
        """Share of one CPU spent in this program over the interval."""
        return self.run_time_ns / (interval_s * 1e9) * 100 if interval_s else 0.0

    def to_dict(self, interval_s: float) -> dict:
        return {
            "name": self.name,
            "hook": self.hook,
            "runs": self.runs,
            "run_time_ns": self.run_time_ns,
            "avg_ns": None if self.avg_ns is None else round(self.avg_ns, 1),
            "cpu_pct": round(self.cpu_pct(interval_s), 4),
            "prog_id": self.prog_id,
            "prog_type": self.prog_type,
            "ours": self.ours,
            "holders": [{"pid": pid, "comm": comm} for pid, comm in self.holders],
        }

    @classmethod
    def from_dict(cls, d: dict) -> ProbeCost:
        return cls(name=str(d["name"]), runs=int(d["runs"]), run_time_ns=int(d["run_time_ns"]),
                   prog_id=int(d.get("prog_id", 0)), prog_type=str(d.get("prog_type", "")),
                   ours=bool(d.get("ours", True)),
                   holders=tuple((int(h["pid"]), str(h["comm"])) for h in d.get("holders", [])))


class Budget(NamedTuple):
    """--max-cpu in the interval: what ebpftop cost (percent of one CPU) and
    what it gave up to stay under the budget (budget.py)."""

    max_cpu_pct: float
    load_pct: float  # kernel_pct (or 0 when unknown) + own_pct
    kernel_pct: float | None  # ebpftop's BPF programs' run time; None without run-time statistics
    own_pct: float  # ebpftop's own process
    latency_sampled_1_in: int = 1  # > 1: latency counts are estimates, scaled up from 1 call in N
    detached: tuple[str, ...] = ()  # probe sets detached to shed load

    @property
    def degraded(self) -> bool:
        return self.latency_sampled_1_in > 1 or bool(self.detached)

    def describe(self) -> str:
        parts = []
        if self.latency_sampled_1_in > 1:
            parts.append(f"latency sampled 1 in {self.latency_sampled_1_in}")
        if self.detached:
            parts.append("detached: " + ", ".join(self.detached))
        return "; ".join(parts)

    def to_dict(self) -> dict:
        return {"max_cpu_pct": self.max_cpu_pct, "load_pct": round(self.load_pct, 3),
                "kernel_pct": None if self.kernel_pct is None else round(self.kernel_pct, 3),
                "own_pct": round(self.own_pct, 3), "degraded": self.degraded,
                "latency_sampled_1_in": self.latency_sampled_1_in, "detached": list(self.detached)}

    @classmethod
    def from_dict(cls, d: dict) -> Budget:
        kernel = d.get("kernel_pct")
        return cls(max_cpu_pct=float(d["max_cpu_pct"]), load_pct=float(d["load_pct"]),
                   kernel_pct=None if kernel is None else float(kernel), own_pct=float(d["own_pct"]),
                   latency_sampled_1_in=int(d.get("latency_sampled_1_in", 1)),
                   detached=tuple(str(x) for x in d.get("detached", [])))


@dataclass(frozen=True)
class Snapshot:
    time: float  # end of the interval, seconds since the epoch
    interval_s: float
    tcp: tuple[TcpConnection, ...] = ()
    udp: tuple[UdpFlow, ...] = ()  # flows with traffic in the interval
    tcp_connections: tuple[TcpSession, ...] = ()  # open TCP connections, busiest in the interval first
    tcp_closed: tuple[TcpSession, ...] = ()  # TCP connections that closed in the interval
    tcp_resets_unowned: int = 0  # resets sent for no socket (to a closed port) in the interval
    syscalls: tuple[SyscallRow, ...] = ()
    read_latency: Latency = field(default_factory=lambda: Latency(()))
    write_latency: Latency = field(default_factory=lambda: Latency(()))
    file_opens: tuple[FileOpenRow, ...] = ()
    page_faults: tuple[PageFaultRow, ...] = ()
    processes: tuple[ProcessEvent, ...] = ()  # fork/exec/exit in the interval, newest first
    alerts: tuple[Alert, ...] = ()  # opens of watched paths in the interval, oldest first
    probes: tuple[ProbeCost, ...] = ()  # ebpftop's own programs, when their statistics are on
    probe_stats: str = "off"  # "ok", "off", or why the statistics are not available
    status: dict = field(default_factory=dict)  # pane -> "ok", "starting" or the reason it is not running
    lost: dict = field(default_factory=dict)  # pane -> events lost in this interval
    # what the kernel and BCC offered and the fallbacks taken (capabilities.py);
    # its "notes" say, per probe set, what a fallback changes
    capabilities: dict = field(default_factory=dict)
    # cgroup id -> what it is, for every row's cgroup that is not the host's
    containers: dict = field(default_factory=dict)
    notices: tuple[str, ...] = ()  # what ebpftop itself did in the interval (a flight recording written)
    budget: Budget | None = None  # with --max-cpu: the interval's load and what was shed

    def container_of(self, cgroup: int) -> Container | None:
        return self.containers.get(cgroup)

    def to_dict(self) -> dict:
        """Every row gains "container": {kind, id, name, pod, namespace}, or
        None on the host."""
        return _with_containers({
            "time": iso_time(self.time),
            "interval_s": self.interval_s,
            "tcp": [c.to_dict() for c in self.tcp],
            "udp": [f.to_dict() for f in self.udp],
            "tcp_connections": [c.to_dict() for c in self.tcp_connections],
            "tcp_closed": [c.to_dict() for c in self.tcp_closed],
            "tcp_resets_unowned": self.tcp_resets_unowned,
            "syscalls": [r.to_dict() for r in self.syscalls],
            "read_latency": self.read_latency.to_dict(),
            "write_latency": self.write_latency.to_dict(),
            "file_opens": [r.to_dict() for r in self.file_opens],
            "page_faults": [r.to_dict() for r in self.page_faults],
            "processes": [e.to_dict() for e in self.processes],
            "alerts": [a.to_dict() for a in self.alerts],
            "probes": [p.to_dict(self.interval_s) for p in self.probes],
            "probe_stats": self.probe_stats,
            "status": dict(self.status),
            "lost": dict(self.lost),
            "capabilities": self.capabilities,
            "notices": list(self.notices),
            "budget": None if self.budget is None else self.budget.to_dict(),
        }, self.containers)

    @classmethod
    def from_dict(cls, d: dict) -> Snapshot:
        return cls(
            time=parse_iso_time(d["time"]),
            interval_s=float(d["interval_s"]),
            tcp=tuple(TcpConnection.from_dict(x) for x in d["tcp"]),
            udp=tuple(UdpFlow.from_dict(x) for x in d.get("udp", [])),  # absent in older recordings
            tcp_connections=tuple(TcpSession.from_dict(x) for x in d.get("tcp_connections", [])),
            tcp_closed=tuple(TcpSession.from_dict(x) for x in d.get("tcp_closed", [])),
            tcp_resets_unowned=int(d.get("tcp_resets_unowned", 0)),
            syscalls=tuple(SyscallRow.from_dict(x) for x in d["syscalls"]),
            read_latency=Latency.from_dict(d["read_latency"]),
            write_latency=Latency.from_dict(d.get("write_latency", {})),  # absent in older recordings
            file_opens=tuple(FileOpenRow.from_dict(x) for x in d["file_opens"]),
            page_faults=tuple(PageFaultRow.from_dict(x) for x in d["page_faults"]),
            processes=tuple(ProcessEvent.from_dict(x) for x in d.get("processes", [])),
            alerts=tuple(Alert.from_dict(x) for x in d.get("alerts", [])),
            probes=tuple(ProbeCost.from_dict(x) for x in d.get("probes", [])),
            probe_stats=str(d.get("probe_stats", "off")),
            status={str(k): str(v) for k, v in d["status"].items()},
            lost={str(k): int(v) for k, v in d["lost"].items()},
            capabilities=dict(d.get("capabilities") or {}),  # absent in older recordings
            containers=_containers_in(d),
            notices=tuple(str(n) for n in d.get("notices", [])),
            budget=Budget.from_dict(d["budget"]) if d.get("budget") else None,
        )


ROW_LISTS = ("tcp", "udp", "tcp_connections", "tcp_closed", "syscalls", "file_opens", "page_faults", "processes",
             "alerts")


def _with_containers(d: dict, containers: dict) -> dict:
    def add(row: dict) -> None:
        c = containers.get(row.get("cgroup", 0))
        row["container"] = None if c is None else c.to_dict()

    for name in ROW_LISTS:
        for row in d[name]:
            add(row)
    for lat in ("read_latency", "write_latency"):
        for row in d[lat]["by_process"]:
            add(row)
    return d


def _containers_in(d: dict) -> dict:
    """The rows' containers, back from their JSON form (None or absent: the host)."""
    out = {}
    rows = [r for name in ROW_LISTS for r in d.get(name, [])]
    rows += [r for lat in ("read_latency", "write_latency") for r in (d.get(lat) or {}).get("by_process", [])]
    for row in rows:
        c = row.get("container")
        if c is not None:
            if not isinstance(c, dict):
                raise ValueError(f"a row's container is not an object: {c!r}")
            out[int(row.get("cgroup", 0))] = Container.from_dict(c)
    return out


def iso_time(t: float) -> str:
    return _dt.datetime.fromtimestamp(t, _dt.timezone.utc).isoformat(timespec="milliseconds")


def parse_iso_time(s: str) -> float:
    return _dt.datetime.fromisoformat(s).timestamp()
