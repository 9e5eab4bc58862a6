/* The sock:* tracepoints that several probe sets use.  One BCC module can
 * hold only one program per tracepoint, so each hook is one program here that
 * calls the handler of every enabled set (tcp.c, tcp_traffic.c, udp.c), the
 * way lifecycle.c does for the task hooks. */

#if defined(EBPFTOP_TCP) || defined(EBPFTOP_TCP_TRAFFIC)
TRACEPOINT_PROBE(sock, inet_sock_set_state)
{
    if (args->protocol != IPPROTO_TCP)
        return 0;
    struct tcp_state_change c = {};
    c.sk = (u64)args->skaddr;
    c.oldstate = args->oldstate;
    c.newstate = args->newstate;
    c.family = args->family;
    c.sport = args->sport;
    c.dport = args->dport;
    if (args->family == AF_INET) {
        __builtin_memcpy(c.saddr, args->saddr, 4);
        __builtin_memcpy(c.daddr, args->daddr, 4);
    } else {
        __builtin_memcpy(c.saddr, args->saddr_v6, 16);
        __builtin_memcpy(c.daddr, args->daddr_v6, 16);
    }
#ifdef EBPFTOP_TCP
    tcp_on_state(&c);
#endif
#ifdef EBPFTOP_TCP_TRAFFIC
    tcp_traffic_on_state(&c);
#endif
    return 0;
}
#endif

#if defined(EBPFTOP_HAVE_SOCK_RECV_LENGTH) && (defined(EBPFTOP_UDP) || defined(TCP_TRAFFIC_BYTES))
TRACEPOINT_PROBE(sock, sock_recv_length)
{
#ifdef EBPFTOP_UDP
    udp_on_recv((u64)args->sk, args->family, args->protocol, args->ret, args->flags);
#endif
#ifdef TCP_TRAFFIC_BYTES
    if (args->protocol == IPPROTO_TCP && args->ret > 0 && !(args->flags & SOCK_MSG_PEEK))
        tcp_traffic_count((u64)args->sk, args->ret, 0);
#endif
    return 0;
}
#endif

#ifdef TCP_TRAFFIC_BYTES
TRACEPOINT_PROBE(sock, sock_send_length)
{
    if (args->protocol == IPPROTO_TCP && args->ret > 0)
        tcp_traffic_count((u64)args->sk, args->ret, 1);
    return 0;
}
#endif
