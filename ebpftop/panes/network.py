"""The Network tab: TCP connections with their traffic, the same summed per
process, the closed ones, new TCP connections (t goes round these four),
UDP flows (u switches between TCP and UDP), or packet drops with the
kernel's reason (d)."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding

from ebpftop import snapshots
from ebpftop.panes.base import View, ViewInput
from ebpftop.panes.table import Column, SortableTable, clock, num, safe
from ebpftop.render import byte_size, count
from ebpftop.sets import tcp_traffic
from ebpftop.sets.drops import unattributed
from ebpftop.sets.tcp import TcpConnection
from ebpftop.sets.tcp_traffic import TcpProcessTraffic, TcpSession
from ebpftop.sets.udp import UdpFlow


class TcpTable(SortableTable):
    COLUMNS = (
        Column("time", "TIME", lambda c: c.time, lambda c: Text(clock(c.time)), numeric=True),
        Column("pid", "PID", lambda c: c.pid, lambda c: num(c.pid, "-" if c.pid == 0 else str(c.pid)), numeric=True),
        Column("comm", "COMM", lambda c: c.comm, lambda c: safe(c.comm) if c.comm else Text("?", style="dim")),
        Column("dir", "DIR", lambda c: c.direction, lambda c: safe(c.direction)),
        Column("family", "IP", lambda c: c.family, lambda c: safe(c.family[-1:])),
        Column("saddr", "SADDR", lambda c: c.saddr, lambda c: safe(c.saddr)),
        Column("sport", "SPORT", lambda c: c.sport, lambda c: num(c.sport, str(c.sport)), numeric=True),
        Column("daddr", "DADDR", lambda c: c.daddr, lambda c: safe(c.daddr)),
        Column("dport", "DPORT", lambda c: c.dport, lambda c: num(c.dport, str(c.dport)), numeric=True),
    )

    def row_key(self, c: TcpConnection) -> str:
        return f"{c.time:.9f}/{c.direction}/{c.saddr}/{c.sport}/{c.daddr}/{c.dport}"

    def row_process(self, c: TcpConnection):
        return (c.pid, c.comm) if c.pid else None


class UdpTable(SortableTable):
    """UDP flows of the interval: (UdpFlow, interval_s) rows."""

    COLUMNS = (
        Column("pid", "PID", lambda r: r[0].pid, lambda r: num(0, str(r[0].pid) if r[0].pid else "-"), numeric=True),
        Column("comm", "COMM", lambda r: r[0].comm, lambda r: safe(r[0].comm) if r[0].comm else Text("?", style="dim")),
        Column("family", "IP", lambda r: r[0].family, lambda r: safe(r[0].family[-1:])),
        Column("laddr", "LADDR", lambda r: r[0].laddr, lambda r: safe(r[0].laddr)),
        Column("lport", "LPORT", lambda r: r[0].lport, lambda r: num(0, str(r[0].lport)), numeric=True),
        Column("raddr", "RADDR", lambda r: r[0].raddr, lambda r: safe(r[0].raddr)),
        Column("rport", "RPORT", lambda r: r[0].rport, lambda r: num(0, str(r[0].rport)), numeric=True),
        Column("tx", "SENT", lambda r: r[0].tx_datagrams, lambda r: num(r[0].tx_datagrams), numeric=True),
        Column("tx_bytes", "SENT B", lambda r: r[0].tx_bytes, lambda r: num(0, byte_size(r[0].tx_bytes)), numeric=True),
        Column("rx", "RECV", lambda r: r[0].rx_datagrams, lambda r: num(r[0].rx_datagrams), numeric=True),
        Column("rx_bytes", "RECV B", lambda r: r[0].rx_bytes, lambda r: num(0, byte_size(r[0].rx_bytes)), numeric=True),
        Column("rate", "B/S", lambda r: r[0].tx_bytes + r[0].rx_bytes,
               lambda r: num(0, byte_size(round((r[0].tx_bytes + r[0].rx_bytes) / r[1]))), numeric=True),
    )
    DEFAULT_SORT = 11

    def row_key(self, r: tuple[UdpFlow, float]) -> str:
        f = r[0]
        return f"{f.pid}\0{f.comm}\0{f.laddr}\0{f.lport}\0{f.raddr}\0{f.rport}"

    def row_process(self, r):
        return (r[0].pid, r[0].comm) if r[0].pid else None


def _age(seconds: float) -> str:
    s = int(seconds)
    if seconds < 1:  # a loopback request lives about a millisecond
        return f"{seconds * 1000:.1f}ms"
    if s < 60:
        return f"{seconds:.1f}s" if seconds < 10 else f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def _rate(n: int, interval_s: float) -> Text:
    return num(0, byte_size(round(n / interval_s)) + "/s")


class TcpTrafficTable(SortableTable):
    """Open TCP connections and those closed in the interval: (TcpSession,
    interval_s, snapshot time) rows; the busiest first."""

    COLUMNS = (
        Column("pid", "PID", lambda r: r[0].pid, lambda r: num(0, str(r[0].pid) if r[0].pid else "-"), numeric=True),
        Column("comm", "COMM", lambda r: r[0].comm, lambda r: safe(r[0].comm) if r[0].comm else Text("?", style="dim")),
        Column("local", "LOCAL", lambda r: (r[0].saddr, r[0].sport), lambda r: safe(_endpoint(r[0].saddr, r[0].sport))),
        Column("remote", "REMOTE", lambda r: (r[0].daddr, r[0].dport), lambda r: safe(_endpoint(r[0].daddr, r[0].dport))),
        Column("state", "STATE", lambda r: r[0].state, lambda r: safe(r[0].state)),
        Column("age", "AGE", lambda r: r[0].duration_s(r[2]), lambda r: num(0, _age(r[0].duration_s(r[2]))), numeric=True),
        Column("tx_rate", "TX/S", lambda r: r[0].tx_bytes, lambda r: _rate(r[0].tx_bytes, r[1]), numeric=True),
        Column("rx_rate", "RX/S", lambda r: r[0].rx_bytes, lambda r: _rate(r[0].rx_bytes, r[1]), numeric=True),
        Column("tx_total", "TX", lambda r: r[0].tx_total, lambda r: num(0, byte_size(r[0].tx_total)), numeric=True),
        Column("rx_total", "RX", lambda r: r[0].rx_total, lambda r: num(0, byte_size(r[0].rx_total)), numeric=True),
        Column("retrans", "RETRANS", lambda r: r[0].retransmits, lambda r: num(r[0].retransmits), numeric=True),
        Column("resets", "RST S/R", lambda r: r[0].resets_sent + r[0].resets_received,
               lambda r: num(0, f"{r[0].resets_sent}/{r[0].resets_received}"), numeric=True),
    )
    DEFAULT_SORT = 6

    def _sorted(self):
        col = self.cols[self.sort_index]
        if col.key in ("tx_rate", "rx_rate"):  # by rate: both ways together, so the busiest is on top
            return sorted(self._rows, key=lambda r: (r[0].tx_bytes + r[0].rx_bytes, col.sort_key(r)),
                          reverse=self.sort_reverse)
        return super()._sorted()

    def row_key(self, r) -> str:
        c = r[0]
        return f"{c.opened:.9f}/{c.saddr}/{c.sport}/{c.daddr}/{c.dport}"

    def row_process(self, r):
        return (r[0].pid, r[0].comm) if r[0].pid else None


class TcpClosedTable(SortableTable):
    """Closed TCP connections, newest first (tcplife): TcpSession rows."""

    COLUMNS = (
        Column("closed", "CLOSED", lambda c: c.closed, lambda c: Text(clock(c.closed)), numeric=True),
        Column("pid", "PID", lambda c: c.pid, lambda c: num(0, str(c.pid) if c.pid else "-"), numeric=True),
        Column("comm", "COMM", lambda c: c.comm, lambda c: safe(c.comm) if c.comm else Text("?", style="dim")),
        Column("dir", "DIR", lambda c: c.direction, lambda c: safe(c.direction)),
        Column("local", "LOCAL", lambda c: (c.saddr, c.sport), lambda c: safe(_endpoint(c.saddr, c.sport))),
        Column("remote", "REMOTE", lambda c: (c.daddr, c.dport), lambda c: safe(_endpoint(c.daddr, c.dport))),
        Column("life", "LIFETIME", lambda c: c.duration_s(c.closed), lambda c: num(0, _age(c.duration_s(c.closed))),
               numeric=True),
        Column("tx_total", "TX", lambda c: c.tx_total, lambda c: num(0, byte_size(c.tx_total)), numeric=True),
        Column("rx_total", "RX", lambda c: c.rx_total, lambda c: num(0, byte_size(c.rx_total)), numeric=True),
        Column("retrans", "RETRANS", lambda c: c.retransmits, lambda c: num(c.retransmits), numeric=True),
        Column("resets", "RST S/R", lambda c: c.resets_sent + c.resets_received,
               lambda c: num(0, f"{c.resets_sent}/{c.resets_received}"), numeric=True),
    )

    def row_key(self, c: TcpSession) -> str:
        return f"{c.opened:.9f}/{c.saddr}/{c.sport}/{c.daddr}/{c.dport}"

    def row_process(self, c: TcpSession):
        return (c.pid, c.comm) if c.pid else None


def _endpoint(addr: str, port: int) -> str:
    return f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"


class TcpProcessTable(SortableTable):
    """TCP bytes per process (like nethogs): (TcpProcessTraffic, interval_s) rows."""

    COLUMNS = (
        Column("pid", "PID", lambda r: r[0].pid, lambda r: num(0, str(r[0].pid) if r[0].pid else "-"), numeric=True),
        Column("comm", "COMM", lambda r: r[0].comm, lambda r: safe(r[0].comm) if r[0].comm else Text("?", style="dim")),
        Column("conns", "CONNS", lambda r: r[0].connections, lambda r: num(r[0].connections), numeric=True),
        Column("tx_rate", "TX/S", lambda r: r[0].tx_bytes, lambda r: _rate(r[0].tx_bytes, r[1]), numeric=True),
        Column("rx_rate", "RX/S", lambda r: r[0].rx_bytes, lambda r: _rate(r[0].rx_bytes, r[1]), numeric=True),
        Column("tx_total", "TX", lambda r: r[0].tx_total, lambda r: num(0, byte_size(r[0].tx_total)), numeric=True),
        Column("rx_total", "RX", lambda r: r[0].rx_total, lambda r: num(0, byte_size(r[0].rx_total)), numeric=True),
        Column("retrans", "RETRANS", lambda r: r[0].retransmits, lambda r: num(r[0].retransmits), numeric=True),
        Column("resets", "RESETS", lambda r: r[0].resets, lambda r: num(r[0].resets), numeric=True),
    )
    DEFAULT_SORT = 3

    def _sorted(self):
        col = self.cols[self.sort_index]
        if col.key in ("tx_rate", "rx_rate"):
            return sorted(self._rows, key=lambda r: (r[0].tx_bytes + r[0].rx_bytes, col.sort_key(r)),
                          reverse=self.sort_reverse)
        return super()._sorted()

    def row_key(self, r: tuple[TcpProcessTraffic, float]) -> str:
        return f"{r[0].pid}\0{r[0].comm}\0{r[0].cgroup}"

    def row_process(self, r):
        return (r[0].pid, r[0].comm) if r[0].pid else None


def _no_owner(d) -> str:
    if not d.protocol:
        return "host (no socket)"  # the host's rest: drops before any socket lookup
    return "? (no owner seen yet)" if d.laddr else "? (not a followed TCP socket)"


class DropTable(SortableTable):
    """(Drop, interval_s) rows: a socket's drops for one reason, or the
    host's for a reason no socket was named for (pid 0, no address)."""

    COLUMNS = (
        Column("pid", "PID", lambda r: r[0].pid, lambda r: num(r[0].pid, str(r[0].pid) if r[0].pid else "-"),
               numeric=True),
        Column("comm", "COMM", lambda r: r[0].comm, lambda r: safe(r[0].comm) if r[0].comm else Text(_no_owner(r[0]), style="dim")),
        Column("reason", "REASON", lambda r: r[0].reason, lambda r: safe(r[0].reason, style="yellow")),
        Column("protocol", "PROTO", lambda r: r[0].protocol, lambda r: safe(r[0].protocol)),
        Column("local", "LOCAL", lambda r: (r[0].laddr, r[0].lport),
               lambda r: safe(f"{r[0].laddr}:{r[0].lport}" if r[0].laddr else "")),
        Column("remote", "REMOTE", lambda r: (r[0].raddr, r[0].rport),
               lambda r: safe(f"{r[0].raddr}:{r[0].rport}" if r[0].raddr else "")),
        Column("count", "DROPS", lambda r: r[0].count, lambda r: num(r[0].count), numeric=True),
        Column("rate", "DROPS/S", lambda r: r[0].count,
               lambda r: num(0, f"{r[0].count / r[1]:,.1f}" if r[1] else "-"), numeric=True),
    )
    DEFAULT_SORT = 6

    def row_key(self, r) -> str:
        d = r[0]
        return f"{d.pid}\0{d.comm}\0{d.reason}\0{d.protocol}\0{d.laddr}:{d.lport}\0{d.raddr}:{d.rport}\0{d.cgroup}"

    def row_process(self, r):
        return (r[0].pid, r[0].comm) if r[0].pid else None


class NetworkView(View):
    """TCP connections with their traffic, the same summed per process, the
    closed ones, new TCP connections (the app's t key goes round these four),
    or UDP flows (u switches between TCP and UDP)."""

    TCP_MODES = ("traffic", "by_process", "closed", "new")
    MODE_PROBE_SETS = {"traffic": "tcp_traffic", "by_process": "tcp_traffic", "closed": "tcp_traffic", "new": "tcp",
                       "udp": "udp", "drops": "drops"}
    TITLES = {
        "traffic": "TCP connections: bytes, rates, retransmits, resets (sock:sock_send/recv_length, tcp:*)",
        "by_process": "TCP traffic per process (sock:sock_send/recv_length)",
        "closed": "closed TCP connections, newest first: lifetime and totals (tcplife)",
        "new": "new TCP connections (sock:inet_sock_set_state, accept in process context)",
        "udp": "UDP flows in the interval (cgroup_skb on the root cgroup, owners from sock:sock_recv_length)",
        "drops": "packets the kernel dropped, with its reason: per socket where it names one, else the host's "
                 "(skb:kfree_skb)",
    }
    MODE_NAMES = {"traffic": "connections", "by_process": "per process", "closed": "closed", "new": "new connections",
                  "udp": "UDP", "drops": "drops"}
    mode = "traffic"
    tcp_mode = "traffic"  # the TCP view u returns to
    TABLES = {"traffic": TcpTrafficTable, "by_process": TcpProcessTable, "closed": TcpClosedTable, "new": TcpTable,
              "udp": UdpTable, "drops": DropTable}

    @property
    def TITLE(self) -> str:  # noqa: N802 - the attribute every view has
        return self.TITLES[self.mode]

    MODE_TIMELINES = {"traffic": "tcp_bytes", "by_process": "tcp_bytes", "closed": "tcp_bytes", "new": "tcp_new",
                      "udp": "udp_bytes", "drops": "drops"}

    @property
    def probe_set(self) -> str:
        return self.MODE_PROBE_SETS[self.mode]

    @property
    def timeline_name(self) -> str | None:
        return self.MODE_TIMELINES[self.mode]

    BINDINGS = [
        Binding("t", "next_tcp_view", "TCP views", show=False,
                tooltip="TCP connections with their traffic → per process → closed (tcplife) → new connections"),
        Binding("u", "toggle_udp", "TCP/UDP", show=False, tooltip="switch between TCP and UDP flows"),
        Binding("d", "toggle_drops", "Drops", show=False,
                tooltip="packet drops with the kernel's reason (per connection where the socket is known), and back"),
    ]

    def has_timeline(self) -> bool:
        return True

    def body(self) -> ComposeResult:
        for mode, table_type in self.TABLES.items():
            table = table_type(id=f"{mode}-table")
            table.display = mode == self.mode
            yield table

    @property
    def table(self) -> SortableTable:
        return self.query_one(self.TABLES[self.mode])

    def next_tcp_mode(self) -> str:
        if self.mode in ("udp", "drops"):
            return self.tcp_mode
        return self.TCP_MODES[(self.TCP_MODES.index(self.mode) + 1) % len(self.TCP_MODES)]

    def set_mode(self, mode: str) -> None:
        self.mode = mode
        if mode not in ("udp", "drops"):
            self.tcp_mode = mode
        for m, table_type in self.TABLES.items():
            self.query_one(table_type).display = mode == m
        self.table.focus()
        self.redraw()

    def action_toggle_drops(self) -> None:
        self.set_mode(self.tcp_mode if self.mode == "drops" else "drops")

    def action_toggle_udp(self) -> None:
        self.set_mode(self.tcp_mode if self.mode == "udp" else "udp")

    def action_next_tcp_view(self) -> None:
        self.set_mode(self.next_tcp_mode())

    def _switch_hint(self) -> str:
        if self.mode == "udp":
            return f"u: TCP {self.MODE_NAMES[self.tcp_mode]} · d: drops"
        if self.mode == "drops":
            return f"d: TCP {self.MODE_NAMES[self.tcp_mode]}"
        return f"t: {self.MODE_NAMES[self.next_tcp_mode()]} · u: UDP · d: drops"

    def draw(self, view: ViewInput) -> None:
        {"traffic": self.draw_traffic, "by_process": self.draw_by_process, "closed": self.draw_closed,
         "new": self.draw_new, "udp": self.draw_udp, "drops": self.draw_drops}[self.mode](view)

    @staticmethod
    def kept(view: ViewInput, part: str, time_field: str) -> tuple:
        """A part's kept rows through the filter (and grouped with g), as at the moment shown."""
        rows = snapshots.rows_filtered(part, view.kept(part, time_field), view.flt, view.containers)
        return snapshots.rows_by_container(part, rows, view.containers) if view.grouped else rows

    def draw_closed(self, view: ViewInput) -> None:
        closed = self.kept(view, "tcp_closed", "closed")
        self.table.show(closed)
        shown = f" · shown {len(closed)}" if view.flt.active else ""
        self.set_summary(f"[Closed TCP connections: {len(view.snapshot.tcp_closed)} this interval, "
                         f"{count(view.history.totals_at(view.until)['tcp_closed'])} since start, the last "
                         f"{count(len(view.kept('tcp_closed', 'closed')))} kept{shown} · {self._switch_hint()}]")

    def draw_traffic(self, view: ViewInput) -> None:
        snap = view.snapshot
        sessions = snap.tcp_connections + snap.tcp_closed
        self.table.show([(s, snap.interval_s, snap.time) for s in sessions])
        tx = sum(s.tx_bytes for s in sessions)
        rx = sum(s.rx_bytes for s in sessions)
        unowned = f" · {count(snap.tcp_resets_unowned)} resets to closed ports" if snap.tcp_resets_unowned else ""
        self.set_summary(f"[TCP: {len(snap.tcp_connections)} open, {len(snap.tcp_closed)} closed in the interval · "
                         f"sent {byte_size(tx)}, received {byte_size(rx)} in {snap.interval_s:g} s{unowned} · "
                         f"{self._switch_hint()}]")

    def draw_by_process(self, view: ViewInput) -> None:
        snap = view.snapshot
        rows = tcp_traffic.by_process(snap.tcp_connections + snap.tcp_closed)
        self.table.show([(r, snap.interval_s) for r in rows])
        self.set_summary(f"[TCP traffic of {len(rows)} processes in {snap.interval_s:g} s, open connections and "
                         f"those closed in the interval · {self._switch_hint()}]")

    def draw_udp(self, view: ViewInput) -> None:
        flows = view.snapshot.udp
        self.table.show([(f, view.snapshot.interval_s) for f in flows])
        tx = sum(f.tx_datagrams for f in flows)
        rx = sum(f.rx_datagrams for f in flows)
        tx_b = sum(f.tx_bytes for f in flows)
        rx_b = sum(f.rx_bytes for f in flows)
        self.set_summary(f"[UDP: {len(flows)} flows · datagrams sent {count(tx)} ({byte_size(tx_b)}), received "
                         f"{count(rx)} ({byte_size(rx_b)}) in {view.snapshot.interval_s:g} s · {self._switch_hint()}]")

    def draw_drops(self, view: ViewInput) -> None:
        snap = view.snapshot
        # the host's rest (no socket named) only unfiltered: it belongs to no process
        rest = () if view.flt.active or view.grouped else unattributed(snap)
        self.table.show([(d, snap.interval_s) for d in (*snap.drops, *rest)])
        total = sum(t.count for t in snap.drop_reasons)
        owned = sum(d.count for d in snap.drops if d.pid)
        self.set_summary(f"[Drops: {count(total)} in {snap.interval_s:g} s, {count(owned)} on sockets of known "
                         f"processes · a drop before the socket lookup (netfilter, no socket) is the host's · "
                         f"{self._switch_hint()}]")

    def draw_new(self, view: ViewInput) -> None:
        recent = self.kept(view, "tcp", "time")
        self.table.show(recent)
        shown = f" · shown {len(recent)}" if view.flt.active else ""
        self.set_summary(f"[New connections: {len(view.snapshot.tcp)} this interval, "
                         f"{count(view.history.totals_at(view.until)['tcp'])} since start{shown} · {self._switch_hint()}]")
