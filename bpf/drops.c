/* Packet drops with the kernel's reason (tcpdrop, dropwatch), from
 * skb:kfree_skb.
 *
 * skb:kfree_skb fires for every sk_buff freed as a drop (a packet freed
 * normally fires skb:consume_skb, not attached).  Its fields: skbaddr,
 * location, protocol (the ethertype, host order), reason (Linux 5.17;
 * renumbered between versions: user space names them from the format
 * file's print fmt) and rx_sk (6.11).  SKB_CONSUMED, where a kernel's table
 * lists it, is not a drop (-DDROPS_NOT_A_DROP=its value).
 *
 * Whom to charge: the current task is wherever the packet died (the
 * sender for a drop on its own transmit path, a timer's softirq for a
 * retransmission, the interrupted task on receive), not its owner: 3 of 23
 * netfilter drops of one connection ran in other tasks here, 2 in another
 * session's process.  So drops are counted per reason for the host, and
 * per socket where the kernel names it: rx_sk, the socket the packet was
 * delivered to, set when the drop comes after the socket lookup
 * (SOCKET_FILTER, SOCKET_RCVBUFF, TCP_* checks...).  User space joins it
 * to its connection and process through tcp_traffic.c's tcp_conns, keyed by
 * the same socket address.  Netfilter passes no socket: NETFILTER_DROP is
 * a host total.
 *
 * Cost: it runs on every dropped packet (a flood can be a million a
 * second): the host totals are a per-CPU array slot (no hash, no atomic),
 * the hash is touched only when the socket is known.  Its own program, so
 * --max-cpu can detach it alone. */

/* BCC declares the tracepoint's args from its format file, whose reason is
 * an "enum skb_drop_reason", a type no header included here defines: a
 * stand-in of the same size (an enum is an int) completes it. */
enum skb_drop_reason { EBPFTOP_SKB_DROP_REASON_ANY };

struct drop_key {
    u64 sk;       /* rx_sk */
    u32 reason;
    u16 protocol; /* ethertype, host order (0x0800 IPv4) */
    u16 pad;
};

/* Per reason, for the host, cumulative; the last slot takes reasons past
 * the table (a subsystem's: mac80211, openvswitch, reason >> 16). */
BPF_PERCPU_ARRAY(drop_reasons_total, u64, DROP_REASON_SLOTS);
BPF_HASH(drop_counts, struct drop_key, u64, DROPS_MAP_SIZE);

TRACEPOINT_PROBE(skb, kfree_skb)
{
    u32 reason = 0;
#ifdef DROPS_HAVE_REASON
    reason = args->reason;
#endif
#ifdef DROPS_NOT_A_DROP
    if (reason == DROPS_NOT_A_DROP)
        return 0;
#endif
    u32 slot = reason < DROP_REASON_SLOTS ? reason : DROP_REASON_SLOTS - 1;
    u64 *total = drop_reasons_total.lookup(&slot);
    if (total)
        *total += 1;
#ifdef DROPS_HAVE_RX_SK
    u64 sk = (u64)args->rx_sk;
    if (!sk)
        return 0;
    struct drop_key key = {};
    key.sk = sk;
    key.reason = reason;
    key.protocol = args->protocol;
    u64 zero = 0;
    u64 *n = drop_counts.lookup_or_try_init(&key, &zero);
    if (n)
        __sync_fetch_and_add(n, 1);
    else
        count_lost(LOST_DROPS);
#endif
    return 0;
}
