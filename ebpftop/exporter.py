"""--prometheus: headless, serving /metrics in the Prometheus text format with
the official prometheus_client library."""

from __future__ import annotations

import ipaddress
import threading
import time

from ebpftop.headless import sleep_until
from ebpftop.metrics import LatencyHistogram, MetricsState
from ebpftop.sets import PROBE_SETS
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
            for p in PROBE_SETS:
                for family in p.counters:
                    m = CounterMetricFamily(family.name, family.doc, labels=list(family.labels))
                    for labels, v in s.counters[family.name].samples():
                        m.add_metric([visible(str(x)) for x in labels], v)
                    yield m
                for family in p.histograms:
                    h = HistogramMetricFamily(family.name, family.doc, labels=list(family.labels))
                    for labels, hist in sorted(s.histograms[family.name].values.items()):
                        h.add_metric([visible(str(x)) for x in labels], hist.cumulative(), hist.sum_ns / 1e9)
                    if not family.labels and not s.histograms[family.name].values:
                        h.add_metric([], LatencyHistogram().cumulative(), 0.0)  # exported from the start
                    yield h
            m = CounterMetricFamily("ebpftop_lost_events", "Events the probes could not record (a map full, "
                                    "a ring buffer overrun).", labels=["pane"])
            for name, v in sorted(s.lost.items()):  # the label says "pane": its name since the first release
                m.add_metric([name], v)
            yield m
            m = CounterMetricFamily("ebpftop_skipped_runs", "Probe runs the kernel skipped (its recursion guard: "
                                    "another BPF program was running on that CPU); each is an event not counted.",
                                    labels=["pane"])
            for name, v in sorted(s.skipped.items()):
                m.add_metric([name], v)
            yield m
            m = GaugeMetricFamily("ebpftop_probe_up", "1 when the pane's probe runs.", labels=["pane"])
            for name, st in sorted(s.status.items()):
                m.add_metric([name], 1.0 if st == "ok" else 0.0)
            yield m
            m = CounterMetricFamily("ebpftop_label_values_evicted", "Label values dropped to bound cardinality.",
                                    labels=["metric"])
            for name, counter in s.counters.items():
                m.add_metric([name.removeprefix("ebpftop_")], counter.evicted)
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
                for name in sorted(s.status):
                    m.add_metric([name], float(name in b.detached))
                yield m


# A connection that sends nothing for this long is closed: each connection is
# served in a thread of its own (300 idle connections once kept 302 threads).
IDLE_TIMEOUT_S = 10.0
# A connection is closed this long after it was accepted, however it trickles
# (a byte every 9 s passes the idle timeout), and at most this many are
# served at once (the next are closed at once): a local user, or anyone
# the address reaches, cannot hold threads without bound.  A scrape is one
# request per connection (HTTP/1.0) and takes milliseconds.
CONNECTION_DEADLINE_S = 30.0
MAX_CONNECTIONS = 32


def serve(registry, listen: tuple[str, int], web=None):
    """Serve registry on http(s)://ADDR:PORT/metrics in a daemon thread, with
    web's TLS and basic auth (a webconfig.WebConfig, or None).  Returns the
    server (its shutdown() stops it); OSError when the address is refused.

    prometheus_client's own start_http_server wraps the listening socket, so
    each TLS handshake runs in the one thread that accepts connections: a
    client that connects and never says hello would stop every scrape.  Here
    the handshake runs in the connection's own thread, under the idle
    timeout and the connection's deadline."""
    import socket
    import ssl
    from socketserver import ThreadingMixIn
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

    from prometheus_client import make_wsgi_app

    addr, port = listen
    family = socket.getaddrinfo(addr, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0][0]
    tls = web.context if web is not None and web.tls else None
    app = make_wsgi_app(registry)
    if web is not None and web.users:
        from ebpftop.webconfig import BasicAuth

        app = BasicAuth(app, web.users)

    class Handler(WSGIRequestHandler):
        timeout = IDLE_TIMEOUT_S

        def handle(self):
            try:
                super().handle()
            except (TimeoutError, ConnectionError, ssl.SSLError):
                pass  # idle too long, gone, or broke its TLS: close it

        def log_message(self, *args):
            pass  # a line per scrape on stderr would bury what matters there

    slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
    lock = threading.Lock()
    open_since: dict[int, list] = {}  # id(accepted socket) -> [the socket in use, accepted at]
    stopped = threading.Event()

    class Server(ThreadingMixIn, WSGIServer):
        address_family = family
        daemon_threads = True
        allow_reuse_address = True

        def process_request(self, request, client_address):
            if not slots.acquire(blocking=False):
                self.shutdown_request(request)  # too many at once: closed, not queued
                return
            with lock:
                open_since[id(request)] = [request, time.monotonic()]
            try:
                super().process_request(request, client_address)  # its thread
            except RuntimeError:  # no thread to be had
                self._done(request)
                self.shutdown_request(request)

        def process_request_thread(self, request, client_address):
            try:
                super().process_request_thread(request, client_address)
            finally:
                self._done(request)

        def _done(self, request):
            with lock:
                open_since.pop(id(request), None)
            slots.release()

        def finish_request(self, request, client_address):
            if tls is None:
                return super().finish_request(request, client_address)
            request.settimeout(IDLE_TIMEOUT_S)
            key = id(request)
            try:
                conn = tls.wrap_socket(request, server_side=True)  # the handshake, in this connection's thread
            except OSError:  # ssl.SSLError is one
                return  # plain HTTP, a bad or absent client certificate, silence, or past its deadline
            with lock:
                if key in open_since:
                    open_since[key][0] = conn  # what the deadline shuts from now on
            try:
                super().finish_request(conn, client_address)
            finally:
                conn.close()

        def handle_error(self, request, client_address):
            pass  # a client's failure is not ebpftop's: no traceback on its stderr

        def shutdown(self):
            stopped.set()
            super().shutdown()

    def close_past_deadline():
        while not stopped.wait(1.0):
            now = time.monotonic()
            with lock:
                late = [sock for sock, since in open_since.values() if now - since > CONNECTION_DEADLINE_S]
            for sock in late:
                try:
                    # its thread's read or write ends, and the thread with it (the plain socket's
                    # shutdown: an SSLSocket's own would pull its TLS state from under that thread)
                    socket.socket.shutdown(sock, socket.SHUT_RDWR)
                except OSError:
                    pass

    server = Server((addr, port), Handler)
    server.set_app(app)
    threading.Thread(target=server.serve_forever, name="ebpftop-metrics", daemon=True).start()
    threading.Thread(target=close_past_deadline, name="ebpftop-metrics-deadline", daemon=True).start()
    return server


def run(source, listen: tuple[str, int], max_labels: int, web=None) -> int:
    from prometheus_client.registry import CollectorRegistry

    state = MetricsState(max_labels=max_labels)
    lock = threading.Lock()
    registry = CollectorRegistry()
    registry.register(SnapshotCollector(state, lock))
    addr, port = listen
    try:
        server = serve(registry, listen, web)
    except OSError as e:
        to_stderr(f"error: cannot listen on {addr}:{port}: {e.strerror or e}")
        return 2
    try:
        status = source.start()
        for name, reason in status.items():
            if reason != "ok":
                to_stderr(f"{name}: {reason}")
        with lock:
            state.status = dict(status)
        scheme = "https" if web is not None and web.tls else "http"
        auth = " (basic auth)" if web is not None and web.users else ""
        to_stderr(f"serving metrics on {scheme}://{addr if ':' not in addr else f'[{addr}]'}:{port}/metrics{auth}")
        if web is not None and web.users and not web.tls:
            to_stderr("warning: basic auth without TLS: the password crosses the network in clear")
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
        server.server_close()


# -- a recording as OpenMetrics, for backfill ---------------------------------


def _om_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _om_number(v: float) -> str:
    if v == int(v) and abs(v) < 1 << 53:
        return str(int(v))
    return repr(float(v))


def openmetrics(snapshots, instance: str, max_labels: int):
    """The recording's intervals as the exporter would have served them,
    each stamped with its interval's end, in the OpenMetrics text format
    that `promtool tsdb create-blocks-from openmetrics` reads (every family
    once, each series' points in time order, a histogram's buckets, count
    and sum together).  Yields text chunks; the last is "# EOF"."""
    state = MetricsState(max_labels=max_labels)
    collector = SnapshotCollector(state, threading.Lock())
    families: dict[str, tuple[str, str, dict]] = {}  # name -> (type, help, {series key: {time: [lines]}})
    for snap in snapshots:
        state.add(snap)
        for fam in collector.collect():
            kind = "counter" if fam.type == "counter" else fam.type
            _, _, series = families.setdefault(fam.name, (kind, fam.documentation, {}))
            for s in fam.samples:
                if s.name.endswith("_created"):
                    continue
                labels = {**s.labels, "instance": instance, "job": "ebpftop"}
                key = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
                text = ",".join(f'{k}="{_om_escape(str(v))}"' for k, v in labels.items())
                series.setdefault(key, {}).setdefault(snap.time, []).append(
                    f"{s.name}{{{text}}} {_om_number(s.value)} {snap.time:.3f}\n")
    for name, (kind, doc, series) in families.items():
        out = [f"# TYPE {name} {kind}\n", f"# HELP {name} {_om_escape(doc)}\n"]
        for points in series.values():
            for t in sorted(points):
                out += points[t]
        yield "".join(out)
    yield "# EOF\n"
