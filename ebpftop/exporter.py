"""--prometheus: headless, serving /metrics in the Prometheus text format with
the official prometheus_client library."""

from __future__ import annotations

import ipaddress
import threading
import time

from ebpftop.headless import sleep_until
from ebpftop.metrics import MetricsState
from ebpftop.text import to_stderr, visible  # label values: a \r in a name broke the scrape parser

DEFAULT_ADDR = "127.0.0.1"


def parse_listen(text: str) -> tuple[str, int]:
    """'9435' -> 127.0.0.1:9435 (loopback unless the user names an address);
    '0.0.0.0:9435', '[::1]:9435'.  ValueError with the reason otherwise."""
    addr, _, port = text.rpartition(":")
    if not addr:
        addr = DEFAULT_ADDR
    if addr.startswith("[") and addr.endswith("]"):
        addr = addr[1:-1]
    try:
        ipaddress.ip_address(addr)
    except ValueError:
        if addr != "localhost":
            raise ValueError(f"not an IP address: {addr!r}") from None
    try:
        n = int(port)
    except ValueError:
        raise ValueError(f"not a port number: {port!r}") from None
    if not 0 < n < 65536:
        raise ValueError(f"port must be 1-65535, not {n}")
    return addr, n


class SnapshotCollector:
    """A prometheus_client collector reading a MetricsState under a lock."""

    def __init__(self, state: MetricsState, lock: threading.Lock):
        self.state = state
        self.lock = lock

    def collect(self):
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

        with self.lock:
            s = self.state
            for name, doc, counter in (
                ("ebpftop_syscalls", "Syscalls by process name (raw_syscalls:sys_enter).", s.syscalls),
                ("ebpftop_page_faults", "User page faults by process name.", s.page_faults),
                ("ebpftop_file_opens", "open/openat/openat2 calls by process name.", s.file_opens),
                ("ebpftop_file_open_errors", "Failed open/openat/openat2 calls by process name.", s.file_open_errors),
            ):
                m = CounterMetricFamily(name, doc, labels=["comm"])
                for (comm,), v in counter.samples():
                    m.add_metric([visible(comm)], v)
                yield m
            m = CounterMetricFamily("ebpftop_tcp_connections", "New TCP connections by direction and service port.",
                                    labels=["direction", "port"])
            for (direction, port), v in s.tcp.samples():
                m.add_metric([direction, port], v)
            yield m
            for name, doc, counter in (
                ("ebpftop_udp_datagrams", "UDP datagrams by process name and direction (sent, received).",
                 s.udp_datagrams),
                ("ebpftop_udp_bytes", "UDP payload bytes by process name and direction (sent, received).",
                 s.udp_bytes),
                ("ebpftop_tcp_bytes", "TCP bytes sent and received by process name (what sendmsg/recvmsg moved).",
                 s.tcp_bytes),
                ("ebpftop_tcp_retransmits", "Retransmitted TCP segments by process name (direction: sent).",
                 s.tcp_retransmits),
                ("ebpftop_tcp_resets", "TCP resets by process name and direction (sent, received).", s.tcp_resets),
            ):
                m = CounterMetricFamily(name, doc, labels=["comm", "direction"])
                for (comm, direction), v in counter.samples():
                    m.add_metric([visible(comm), direction], v)
                yield m
            for name, doc, counter in (
                ("ebpftop_container_syscalls", "Syscalls by container (host: in none).", s.container_syscalls),
                ("ebpftop_container_page_faults", "User page faults by container.", s.container_page_faults),
                ("ebpftop_container_file_opens", "open/openat/openat2 calls by container.", s.container_file_opens),
            ):
                m = CounterMetricFamily(name, doc, labels=["container", "kind"])
                for (container, kind), v in counter.samples():
                    m.add_metric([visible(container), kind], v)
                yield m
            m = CounterMetricFamily("ebpftop_container_tcp_bytes", "TCP bytes sent and received by container.",
                                    labels=["container", "direction"])
            for (container, direction), v in s.container_tcp_bytes.samples():
                m.add_metric([visible(container), direction], v)
            yield m
            m = CounterMetricFamily("ebpftop_watched_file_opens", "Opens of watched (sensitive) files, by process "
                                    "name and result (ok or the errno).", labels=["comm", "result"])
            for (comm, result), v in s.alerts.samples():
                m.add_metric([visible(comm), result], v)
            yield m
            h = HistogramMetricFamily("ebpftop_read_latency_seconds", "read() latency, all processes.")
            h.add_metric([], s.read_latency.cumulative(), s.read_latency.sum_ns / 1e9)
            yield h
            h = HistogramMetricFamily("ebpftop_write_latency_seconds", "write() latency, all processes.")
            h.add_metric([], s.write_latency.cumulative(), s.write_latency.sum_ns / 1e9)
            yield h
            h = HistogramMetricFamily("ebpftop_read_latency_by_comm_seconds", "read() latency by process name.",
                                      labels=["comm"])
            for comm, hist in sorted(s.read_latency_by_comm.items()):
                h.add_metric([visible(comm)], hist.cumulative(), hist.sum_ns / 1e9)
            yield h
            m = CounterMetricFamily("ebpftop_lost_events", "Events the probes could not record (a map full, "
                                    "a ring buffer overrun).", labels=["pane"])
            for pane, v in sorted(s.lost.items()):
                m.add_metric([pane], v)
            yield m
            m = GaugeMetricFamily("ebpftop_probe_up", "1 when the pane's probe runs.", labels=["pane"])
            for pane, st in sorted(s.status.items()):
                m.add_metric([pane], 1.0 if st == "ok" else 0.0)
            yield m
            m = CounterMetricFamily("ebpftop_label_values_evicted", "Label values dropped to bound cardinality.",
                                    labels=["metric"])
            for name, counter in (("syscalls", s.syscalls), ("page_faults", s.page_faults),
                                  ("file_opens", s.file_opens), ("tcp_connections", s.tcp),
                                  ("udp_datagrams", s.udp_datagrams), ("udp_bytes", s.udp_bytes),
                                  ("tcp_bytes", s.tcp_bytes), ("tcp_retransmits", s.tcp_retransmits),
                                  ("tcp_resets", s.tcp_resets), ("container_syscalls", s.container_syscalls),
                                  ("container_page_faults", s.container_page_faults),
                                  ("container_file_opens", s.container_file_opens),
                                  ("container_tcp_bytes", s.container_tcp_bytes)):
                m.add_metric([name], counter.evicted)
            yield m
            yield GaugeMetricFamily("ebpftop_polls", "Polls of the kernel maps so far.", value=s.polls)
            if s.budget is not None:  # --max-cpu
                b = s.budget
                yield GaugeMetricFamily("ebpftop_degraded", "1 while ebpftop sheds load to keep its --max-cpu "
                                        "budget (latency sampled, probe sets detached).", value=float(b.degraded))
                yield GaugeMetricFamily("ebpftop_load_cpu_percent", "What ebpftop cost in the last interval, in "
                                        "percent of one CPU: its BPF programs' run time and its own CPU.",
                                        value=b.load_pct)
                yield GaugeMetricFamily("ebpftop_max_cpu_percent", "The --max-cpu budget.", value=b.max_cpu_pct)
                yield GaugeMetricFamily("ebpftop_latency_sampled_1_in", "The latency probes time 1 call in N "
                                        "(1: every call; above, the latency counts are estimates).",
                                        value=b.latency_sampled_1_in)
                m = GaugeMetricFamily("ebpftop_probe_set_detached", "1 while a probe set is detached to keep "
                                      "the --max-cpu budget.", labels=["pane"])
                for pane in sorted(s.status):
                    m.add_metric([pane], float(pane in b.detached))
                yield m


# A connection that sends nothing for this long is closed: prometheus_client
# serves each connection in a thread of its own, with no timeout (300 idle
# connections kept 302 threads).
IDLE_TIMEOUT_S = 10.0


def drop_idle_connections(server) -> None:
    """From now on, each connection's socket of server times out when idle,
    and is closed without a traceback on stderr."""

    class IdleTimeoutHandler(server.RequestHandlerClass):
        timeout = IDLE_TIMEOUT_S

        def handle(self):
            try:
                super().handle()
            except (TimeoutError, ConnectionError):
                pass  # idle too long, or gone: close it

    server.RequestHandlerClass = IdleTimeoutHandler


def run(source, listen: tuple[str, int], max_labels: int) -> int:
    from prometheus_client import start_http_server
    from prometheus_client.registry import CollectorRegistry

    state = MetricsState(max_labels=max_labels)
    lock = threading.Lock()
    registry = CollectorRegistry()
    registry.register(SnapshotCollector(state, lock))
    addr, port = listen
    try:
        server, _thread = start_http_server(port, addr=addr, registry=registry)
    except OSError as e:
        to_stderr(f"error: cannot listen on {addr}:{port}: {e.strerror}")
        return 2
    drop_idle_connections(server)
    try:
        status = source.start()
        for pane, reason in status.items():
            if reason != "ok":
                to_stderr(f"{pane}: {reason}")
        with lock:
            state.status = dict(status)
        to_stderr(f"serving metrics on http://{addr if ':' not in addr else f'[{addr}]'}:{port}/metrics")
        deadline = time.monotonic() + source.interval_s
        while True:
            sleep_until(source, deadline)  # reading the ring buffers every half second
            deadline += source.interval_s
            snap = source.poll()
            for notice in snap.notices:  # a flight recording written, say
                to_stderr(notice)
            with lock:
                state.add(snap)
    finally:
        server.shutdown()
