/* TCP connections: one event per new connection, outgoing and incoming, IPv4
 * and IPv6, streamed through a ring buffer (a row per connection is the point
 * of this probe set); what does not fit is counted.
 *
 * connect: sock:inet_sock_set_state to SYN_SENT runs in the connecting task,
 *   so the owner is taken there, keyed by the socket; the event is sent on
 *   SYN_SENT -> ESTABLISHED (often in softirq), when the ports are known.
 * accept: SYN_RECV -> ESTABLISHED runs in softirq, where pid and comm belong to
 *   whatever was interrupted (bcc#2304).  So it only records the 4-tuple, keyed
 *   by the peer's address and port; sys_exit_accept/accept4, in the accepting
 *   task, reads the peer address the kernel just wrote to the caller's buffer
 *   and claims the record.  Records nobody claims (accept() without an
 *   address buffer) are reported by user space with the owner unknown. */

/* DIRECTION_CONNECT and DIRECTION_ACCEPT: ebpftop/cdefs.py.  The state
 * changes come from sock_hooks.c, which owns sock:inet_sock_set_state. */

struct tcp_event {
    u64 ts_ns;
    u64 cgroup;
    u32 pid;
    u16 family;
    u16 sport;
    u16 dport;
    u8 direction;
    u8 owner_known;
    char comm[COMM_LEN];
    u8 saddr[16];
    u8 daddr[16];
};

struct tcp_owner {
    u64 cgroup;
    u32 pid;
    char comm[COMM_LEN];
};

struct peer_key {
    u16 family;
    u16 port;
    u8 addr[16];
};

struct pending_accept {
    u64 ts_ns;
    u16 family;
    u16 sport;
    u16 dport;
    u8 saddr[16];
    u8 daddr[16];
};

BPF_RINGBUF_OUTPUT(tcp_events, TCP_RINGBUF_PAGES);
BPF_HASH(tcp_connecting, u64, struct tcp_owner, TCP_MAP_SIZE);
BPF_HASH(tcp_pending_accept, struct peer_key, struct pending_accept, TCP_MAP_SIZE);

static inline void tcp_emit(struct tcp_event *e)
{
    if (tcp_events.ringbuf_output(e, sizeof(*e), 0) != 0)
        count_lost(LOST_TCP);
}

static inline void tcp_on_state(struct tcp_state_change *c)
{
    u64 sk = c->sk;
    int oldstate = c->oldstate, newstate = c->newstate;

    if (newstate == TCP_SYN_SENT) {
        struct tcp_owner owner = {.pid = bpf_get_current_pid_tgid() >> 32};
        owner.cgroup = bpf_get_current_cgroup_id();
        bpf_get_current_comm(owner.comm, sizeof(owner.comm));
        if (tcp_connecting.update(&sk, &owner) != 0)
            count_lost(LOST_TCP);
        return;
    }
    if (oldstate == TCP_SYN_SENT) {
        struct tcp_owner *owner = tcp_connecting.lookup(&sk);
        if (newstate == TCP_ESTABLISHED) {
            struct tcp_event e = {};
            e.ts_ns = bpf_ktime_get_ns();
            e.family = c->family;
            e.sport = c->sport;
            e.dport = c->dport;
            e.direction = DIRECTION_CONNECT;
            if (owner) {
                e.pid = owner->pid;
                e.cgroup = owner->cgroup;
                e.owner_known = 1;
                __builtin_memcpy(e.comm, owner->comm, COMM_LEN);
            }
            __builtin_memcpy(e.saddr, c->saddr, 16);
            __builtin_memcpy(e.daddr, c->daddr, 16);
            tcp_emit(&e);
        }
        if (owner)
            tcp_connecting.delete(&sk);
        return;
    }
    if (oldstate == TCP_SYN_RECV && newstate == TCP_ESTABLISHED) {
        struct peer_key key = {.family = c->family, .port = c->dport};
        struct pending_accept p = {};
        p.ts_ns = bpf_ktime_get_ns();
        p.family = c->family;
        p.sport = c->sport;
        p.dport = c->dport;
        __builtin_memcpy(key.addr, c->daddr, 16);
        __builtin_memcpy(p.saddr, c->saddr, 16);
        __builtin_memcpy(p.daddr, c->daddr, 16);
        if (tcp_pending_accept.update(&key, &p) != 0)
            count_lost(LOST_TCP);
    }
}

static inline void accept_enter(void *upeer_sockaddr)
{
    struct task_scratch *s = scratch_get(1, LOST_TCP);
    if (s)
        s->accept_sockaddr = (u64)upeer_sockaddr;
}

static inline void accept_exit(long ret)
{
    struct task_scratch *s = scratch_get(0, LOST_TCP);
    if (!s)
        return;
    void *uaddr = (void *)s->accept_sockaddr;
    s->accept_sockaddr = 0;
    if (ret < 0 || !uaddr)
        return; /* failed, or no address buffer: user space reports it unclaimed */

    /* sockaddr_in: family, port, 4-byte addr; sockaddr_in6: family, port,
     * flowinfo, 16-byte addr.  Read the short form first: the buffer may be
     * only that long. */
    struct {
        u16 family;
        u16 port_be;
        u32 addr4_or_flowinfo;
    } head = {};
    if (bpf_probe_read_user(&head, sizeof(head), uaddr) != 0)
        return;
    struct peer_key key = {.family = head.family, .port = bpf_ntohs(head.port_be)};
    if (head.family == AF_INET) {
        __builtin_memcpy(key.addr, &head.addr4_or_flowinfo, 4);
    } else if (head.family == AF_INET6) {
        if (bpf_probe_read_user(key.addr, 16, uaddr + 8) != 0)
            return;
    } else {
        return; /* not an inet socket (AF_UNIX, ...) */
    }
    struct pending_accept *p = tcp_pending_accept.lookup(&key);
    if (!p)
        return; /* established before we attached, or not TCP */

    struct tcp_event e = {};
    e.ts_ns = p->ts_ns;
    e.pid = bpf_get_current_pid_tgid() >> 32;
    e.cgroup = bpf_get_current_cgroup_id();
    e.owner_known = 1;
    bpf_get_current_comm(e.comm, sizeof(e.comm));
    e.family = p->family;
    e.sport = p->sport;
    e.dport = p->dport;
    e.direction = DIRECTION_ACCEPT;
    __builtin_memcpy(e.saddr, p->saddr, 16);
    __builtin_memcpy(e.daddr, p->daddr, 16);
    tcp_pending_accept.delete(&key);
    tcp_emit(&e);
}

/* Where sys_enter.c cannot read the arguments itself (it calls
 * accept_enter() then). */
#ifndef EBPFTOP_RAW_SYSCALL_ARGS
#ifdef EBPFTOP_HAVE_ACCEPT
TRACEPOINT_PROBE(syscalls, sys_enter_accept)
{
    accept_enter(args->upeer_sockaddr);
    return 0;
}
#endif

TRACEPOINT_PROBE(syscalls, sys_enter_accept4)
{
    accept_enter(args->upeer_sockaddr);
    return 0;
}
#endif

#ifdef EBPFTOP_HAVE_ACCEPT
TRACEPOINT_PROBE(syscalls, sys_exit_accept)
{
    accept_exit(args->ret);
    return 0;
}
#endif

TRACEPOINT_PROBE(syscalls, sys_exit_accept4)
{
    accept_exit(args->ret);
    return 0;
}
