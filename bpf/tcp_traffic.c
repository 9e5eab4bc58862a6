/* TCP traffic: per connection, the bytes each way, retransmitted segments and
 * resets, from tracepoints only; a connection that closes is reported once
 * more, with its totals and lifetime (tcplife), then forgotten.
 *
 * Tracking starts at sock:inet_sock_set_state (sock_hooks.c calls
 * tcp_traffic_on_state): -> SYN_SENT runs in the connecting task, which is
 * the owner; SYN_RECV -> ESTABLISHED (an accepted connection) runs in
 * softirq, where the current task is whoever was interrupted, so the owner
 * is the first task that sends or reads on it.
 * Bytes: sock:sock_send_length and sock_recv_length (Linux >= 6.3): what
 * sendmsg()/recvmsg() (and write()/read() on a socket) returned, i.e. what
 * the application moved; a retransmission is not counted twice.
 * Close: -> TCP_CLOSE stamps closed_ns; user space reports the entry and
 * deletes it at its next poll.  The kernel does not delete it at once: an
 * abortive close (SO_LINGER 0) sends its reset after the state change, and
 * that reset belongs to this connection.
 * Not seen: connections established before ebpftop started (their addresses
 * are only in struct sock, which is not read here). */

#if defined(EBPFTOP_HAVE_SOCK_RECV_LENGTH) && defined(EBPFTOP_HAVE_SOCK_SEND_LENGTH)
#define TCP_TRAFFIC_BYTES
#endif

struct tcp_conn {
    u64 opened_ns;   /* -> SYN_SENT, or the accepted connection's ESTABLISHED */
    u64 closed_ns;   /* 0 while open */
    u64 tx_bytes;
    u64 rx_bytes;
    u64 cgroup;      /* the owner's; 0 until an owner is seen */
    u32 retransmits;
    u32 resets_sent;
    u32 resets_received;
    u32 pid;         /* 0 until an owner is seen */
    u16 family;
    u16 sport;       /* local */
    u16 dport;       /* remote */
    u8 direction;    /* DIRECTION_CONNECT or DIRECTION_ACCEPT */
    u8 state;
    char comm[COMM_LEN];
    u8 saddr[16];    /* local */
    u8 daddr[16];    /* remote */
};

BPF_HASH(tcp_conns, u64, struct tcp_conn, TCP_TRAFFIC_MAP_SIZE);

/* A closed connection whose socket's memory is taken by a new connection
 * before user space has read it: sent here instead of being overwritten. */
struct tcp_conn_evicted {
    u64 sk;
    struct tcp_conn conn;
};
BPF_RINGBUF_OUTPUT(tcp_evicted, TCP_EVICTED_RINGBUF_PAGES);
/* Resets sent with no socket: the kernel's answer to a segment for no
 * connection (a SYN to a closed port).  Slot 0. */
BPF_PERCPU_ARRAY(tcp_resets_unowned, u64, 1);

static inline void tcp_conn_addresses(struct tcp_conn *conn, struct tcp_state_change *c)
{
    conn->family = c->family;
    conn->sport = c->sport;
    conn->dport = c->dport;
    __builtin_memcpy(conn->saddr, c->saddr, 16);
    __builtin_memcpy(conn->daddr, c->daddr, 16);
}

/* A new connection at sk: an entry still there is a closed connection not
 * yet reported (or one whose close was missed): send it on, to be reported. */
static inline void tcp_conn_evict(u64 sk)
{
    struct tcp_conn *old = tcp_conns.lookup(&sk);
    if (!old)
        return;
    struct tcp_conn_evicted *e = tcp_evicted.ringbuf_reserve(sizeof(*e));
    if (!e) {
        count_lost(LOST_TCP_TRAFFIC);
        return;
    }
    e->sk = sk;
    __builtin_memcpy(&e->conn, old, sizeof(*old));
    if (!e->conn.closed_ns)
        e->conn.closed_ns = bpf_ktime_get_ns();
    tcp_evicted.ringbuf_submit(e, 0);
}

static inline void tcp_traffic_on_state(struct tcp_state_change *c)
{
    u64 sk = c->sk;
    if (c->newstate == TCP_SYN_SENT) {
        tcp_conn_evict(sk);
        struct tcp_conn conn = {};
        conn.opened_ns = bpf_ktime_get_ns();
        conn.pid = bpf_get_current_pid_tgid() >> 32;
        conn.cgroup = bpf_get_current_cgroup_id();
        bpf_get_current_comm(conn.comm, sizeof(conn.comm));
        conn.direction = DIRECTION_CONNECT;
        conn.state = TCP_SYN_SENT;
        tcp_conn_addresses(&conn, c); /* the local port is not chosen yet: again at ESTABLISHED */
        if (tcp_conns.update(&sk, &conn) != 0)
            count_lost(LOST_TCP_TRAFFIC);
        return;
    }
    if (c->oldstate == TCP_SYN_RECV && c->newstate == TCP_ESTABLISHED) {
        /* a new accepted connection, at an address an earlier one may have left */
        tcp_conn_evict(sk);
        struct tcp_conn fresh = {};
        fresh.opened_ns = bpf_ktime_get_ns();
        fresh.direction = DIRECTION_ACCEPT;
        fresh.state = TCP_ESTABLISHED;
        tcp_conn_addresses(&fresh, c);
        if (tcp_conns.update(&sk, &fresh) != 0)
            count_lost(LOST_TCP_TRAFFIC);
        return;
    }
    struct tcp_conn *conn = tcp_conns.lookup(&sk);
    if (!conn)
        return; /* established before we attached */
    if (conn->closed_ns)
        return; /* a new socket in a closed one's memory, before its own entry is made: an accepted
                 * child is cloned from its listener, LISTEN -> SYN_RECV, before SYN_RECV ->
                 * ESTABLISHED; it must not rewrite the closed one's last state */
    conn->state = c->newstate;
    if (c->newstate == TCP_ESTABLISHED)
        tcp_conn_addresses(conn, c);
    else if (c->newstate == TCP_CLOSE && !conn->closed_ns)
        conn->closed_ns = bpf_ktime_get_ns();
}

#ifdef TCP_TRAFFIC_BYTES
/* Called by sock_hooks.c in the task that sent or read. */
static inline void tcp_traffic_count(u64 sk, int bytes, int sent)
{
    struct tcp_conn *conn = tcp_conns.lookup(&sk);
    if (!conn)
        return;
    if (sent)
        __sync_fetch_and_add(&conn->tx_bytes, bytes);
    else
        __sync_fetch_and_add(&conn->rx_bytes, bytes);
    if (!conn->pid) { /* an accepted connection's first use names its owner */
        conn->pid = bpf_get_current_pid_tgid() >> 32;
        conn->cgroup = bpf_get_current_cgroup_id();
        bpf_get_current_comm(conn->comm, sizeof(conn->comm));
    }
}
#endif

/* Retransmits and resets run in softirq, often on a CPU where one of
 * ebpftop's syscall programs was interrupted: a classic tracepoint program is
 * then skipped (the kernel's recursion guard, bpf_prog_active, is shared by
 * every tracepoint and kprobe program); a raw tracepoint's guard is its own.
 * Their first argument has been the socket since they exist (4.15, 4.16). */
#ifdef EBPFTOP_HAVE_TCP_RETRANSMIT
RAW_TRACEPOINT_PROBE(tcp_retransmit_skb)
{
    u64 sk = ctx->args[0];
    struct tcp_conn *conn = tcp_conns.lookup(&sk);
    if (conn)
        __sync_fetch_and_add(&conn->retransmits, 1);
    return 0;
}
#endif

#ifdef EBPFTOP_HAVE_TCP_RESETS
/* (Also: the classic tracepoint's format names enum sk_rst_reason, Linux >=
 * 6.10, a type BCC's headers do not have.)  The socket, or NULL. */
RAW_TRACEPOINT_PROBE(tcp_send_reset)
{
    u64 sk = ctx->args[0];
    if (!sk) {
        u32 zero = 0;
        u64 *n = tcp_resets_unowned.lookup(&zero);
        if (n)
            *n += 1;
        return 0;
    }
    struct tcp_conn *conn = tcp_conns.lookup(&sk);
    if (conn)
        __sync_fetch_and_add(&conn->resets_sent, 1);
    return 0;
}

RAW_TRACEPOINT_PROBE(tcp_receive_reset)
{
    u64 sk = ctx->args[0];
    struct tcp_conn *conn = tcp_conns.lookup(&sk);
    if (conn)
        __sync_fetch_and_add(&conn->resets_received, 1);
    return 0;
}
#endif
