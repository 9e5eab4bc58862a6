/* UDP flows: datagrams and payload bytes per (process, local addr:port,
 * remote addr:port), sent and received, IPv4 and IPv6, summed in the kernel
 * and drained at each poll.
 *
 * Why not tracepoints alone: sock:sock_send_length/sock_recv_length give the
 * socket and the length but no address, and no tracepoint gives the local
 * port of an auto-bound socket; reading the addresses out of struct sock
 * would need kernel headers of the running version (forbidden here).  So the
 * addresses come from the packets themselves: two cgroup_skb programs, on the
 * root of the cgroup v2 hierarchy, read the IP and UDP headers of every
 * datagram through the stable __sk_buff interface.
 *
 * Who: a UDP send runs its egress hook in the sending task (udp_sendmsg ->
 *   ip_finish_output, synchronously), so the sender is the current task.
 *   A datagram arrives in softirq, often in the SENDER's context on loopback:
 *   there the current task says nothing.  Received datagrams are keyed by the
 *   receiving socket's cookie instead, and the socket's owner is recorded in
 *   process context by sock:sock_recv_length, when a task reads from it.
 *   User space joins the two.
 *
 * SAFETY: these programs only observe.  A cgroup_skb program that returns 0
 * drops the packet, so every path below returns PASS. */

#define PASS 1
#define UDP_AF_INET 2
#define UDP_AF_INET6 10
#define UDP_IPPROTO_UDP 17
#define UDP_ETH_P_IP 0x0800
#define UDP_ETH_P_IPV6 0x86DD
/* DIR_SENT and DIR_RECEIVED: ebpftop/cdefs.py */

struct udp_flow_key {
    u64 cookie;   /* received: the receiving socket; sent: 0 */
    u64 cgroup;   /* sent: the sender's; received: 0 (see udp_owner) */
    u32 tgid;     /* sent: the sender; received: 0 (see udp_owner) */
    u16 lport;
    u16 rport;
    u8 family;    /* UDP_AF_INET or UDP_AF_INET6 */
    u8 dir;
    u8 pad[6];
    u8 laddr[16];
    u8 raddr[16];
    char comm[COMM_LEN];
};

struct udp_flow_value {
    u64 datagrams;
    u64 bytes; /* UDP payload, without IP and UDP headers */
};

struct udp_owner {
    u64 cgroup;
    u32 tgid;
    char comm[COMM_LEN];
};

BPF_HASH(udp_flows, struct udp_flow_key, struct udp_flow_value, UDP_MAP_SIZE);
/* socket cookie -> the task that last read from it */
BPF_TABLE("lru_hash", u64, struct udp_owner, udp_owner, UDP_MAP_SIZE);
/* socket address -> its cookie (sock_recv_length knows only the address;
 * the cookie tells a socket from a later one at the same address) */
BPF_TABLE("lru_hash", u64, u64, udp_sk_cookie, UDP_MAP_SIZE);

struct udp_headers {
    u8 family;
    u16 sport, dport;
    u8 saddr[16], daddr[16];
    u64 payload;
    u64 datagrams;
};

/* Copies the first n bytes of the packet (data starts at the IP header in a
 * cgroup_skb program): straight from the linear data when it holds them --
 * always, for the headers of a UDP datagram sent or delivered here -- else
 * through the helper. */
#define UDP_LOAD(skb, buf, n)                                                   \
    ({                                                                          \
        void *data_ = (void *)(long)(skb)->data;                                \
        void *end_ = (void *)(long)(skb)->data_end;                             \
        int err_ = 0;                                                           \
        if (data_ + (n) <= end_)                                                \
            __builtin_memcpy(buf, data_, n);                                    \
        else                                                                    \
            err_ = bpf_skb_load_bytes(skb, 0, buf, n);                          \
        err_;                                                                   \
    })

/* The IP and UDP headers of the packet.  Returns 0 for a UDP datagram, -1
 * otherwise (TCP and the rest cost one copy and a compare). */
static inline int udp_parse(struct __sk_buff *skb, struct udp_headers *h)
{
    u32 l4;
    u8 *udp;
    u8 ext_udp[8];
    if (skb->protocol == bpf_htons(UDP_ETH_P_IP)) {
        u8 ip[28]; /* a 20-byte IP header and the UDP header after it */
        if (UDP_LOAD(skb, ip, 28) != 0 || ip[9] != UDP_IPPROTO_UDP)
            return -1;
        if ((ip[6] & 0x1f) != 0 || ip[7] != 0)
            return -1; /* a later fragment, without a UDP header (hooks see whole datagrams anyway) */
        l4 = (ip[0] & 0x0f) * 4;
        h->family = UDP_AF_INET;
        __builtin_memcpy(h->saddr, ip + 12, 4);
        __builtin_memcpy(h->daddr, ip + 16, 4);
        if (l4 == 20) {
            __builtin_memcpy(ext_udp, ip + 20, 8);
        } else if (bpf_skb_load_bytes(skb, l4 & 0x3f, ext_udp, 8) != 0) {
            return -1; /* IP options: the UDP header is further on */
        }
    } else if (skb->protocol == bpf_htons(UDP_ETH_P_IPV6)) {
        u8 ip6[48]; /* the 40-byte IPv6 header and the UDP header after it */
        if (UDP_LOAD(skb, ip6, 48) != 0)
            return -1;
        u8 proto = ip6[6];
        l4 = 40;
        h->family = UDP_AF_INET6;
        __builtin_memcpy(h->saddr, ip6 + 8, 16);
        __builtin_memcpy(h->daddr, ip6 + 24, 16);
        if (proto == UDP_IPPROTO_UDP) {
            __builtin_memcpy(ext_udp, ip6 + 40, 8);
        } else {
            /* Hop-by-hop (0), routing (43) and destination-options (60)
             * headers: skip up to three; each is (length + 1) * 8 bytes. */
#pragma unroll
            for (int i = 0; i < 3; i++) {
                if (proto != 0 && proto != 43 && proto != 60)
                    break;
                u8 ext[2];
                if (bpf_skb_load_bytes(skb, l4, ext, sizeof(ext)) != 0)
                    return -1;
                proto = ext[0];
                l4 += (ext[1] + 1) * 8;
            }
            if (proto != UDP_IPPROTO_UDP || bpf_skb_load_bytes(skb, l4 & 0xfff, ext_udp, 8) != 0)
                return -1;
        }
    } else {
        return -1;
    }
    udp = ext_udp;
    h->sport = (udp[0] << 8) | udp[1];
    h->dport = (udp[2] << 8) | udp[3];
    u32 segs = skb->gso_segs;
    if (segs > 1) {
        /* UDP GSO/GRO: one buffer carries several datagrams, one header */
        h->datagrams = segs;
        h->payload = skb->len > l4 + 8 ? skb->len - l4 - 8 : 0;
    } else {
        u32 ulen = (udp[4] << 8) | udp[5];
        h->datagrams = 1;
        h->payload = ulen >= 8 ? ulen - 8 : 0;
    }
    return 0;
}

/* Counts a datagram under key, whose owner fields the caller has set; local
 * is the source of a sent datagram, the destination of a received one. */
static inline void udp_count(struct udp_flow_key *key, struct udp_headers *h, u8 dir)
{
    key->family = h->family;
    key->dir = dir;
    if (dir == DIR_SENT) {
        key->lport = h->sport;
        key->rport = h->dport;
        __builtin_memcpy(key->laddr, h->saddr, 16);
        __builtin_memcpy(key->raddr, h->daddr, 16);
    } else {
        key->lport = h->dport;
        key->rport = h->sport;
        __builtin_memcpy(key->laddr, h->daddr, 16);
        __builtin_memcpy(key->raddr, h->saddr, 16);
    }
    /* Insert-if-absent, then add: two CPUs meeting a new flow at once both
     * count (an update with the first datagram's values would let one
     * overwrite the other). */
    struct udp_flow_value zero = {};
    struct udp_flow_value *v = udp_flows.lookup_or_try_init(key, &zero);
    if (!v) {
        count_lost(LOST_UDP);
        return;
    }
    __sync_fetch_and_add(&v->datagrams, h->datagrams);
    __sync_fetch_and_add(&v->bytes, h->payload);
}

int udp_egress(struct __sk_buff *skb)
{
    struct udp_headers h = {};
    if (udp_parse(skb, &h) != 0)
        return PASS;
    struct udp_flow_key key = {};
    key.tgid = bpf_get_current_pid_tgid() >> 32;
    key.cgroup = bpf_get_current_cgroup_id();
    bpf_get_current_comm(key.comm, sizeof(key.comm));
    udp_count(&key, &h, DIR_SENT);
    return PASS;
}

int udp_ingress(struct __sk_buff *skb)
{
    struct udp_headers h = {};
    if (udp_parse(skb, &h) != 0)
        return PASS;
    struct bpf_sock *sk = skb->sk; /* the receiving socket */
    if (!sk)
        return PASS;
    struct udp_flow_key key = {};
    key.cookie = bpf_get_socket_cookie(skb);
    udp_count(&key, &h, DIR_RECEIVED);

    u64 addr = (u64)sk;
    u64 *known = udp_sk_cookie.lookup(&addr);
    if (!known || *known != key.cookie)
        udp_sk_cookie.update(&addr, &key.cookie);
    return PASS;
}

/* A task reads from a UDP socket: it owns what that socket receives.  Called
 * from sock:sock_recv_length (sock_hooks.c; Linux >= 6.3; before, received
 * datagrams go out with the owner unknown). */
static inline void udp_on_recv(u64 addr, u16 family, u16 protocol, int ret, int flags)
{
    if (protocol != UDP_IPPROTO_UDP || (family != UDP_AF_INET && family != UDP_AF_INET6))
        return;
    if (ret < 0 || (flags & SOCK_MSG_PEEK))
        return;
    u64 *cookie = udp_sk_cookie.lookup(&addr);
    if (!cookie)
        return; /* nothing has arrived on it since we attached */
    u32 tgid = bpf_get_current_pid_tgid() >> 32;
    struct udp_owner *o = udp_owner.lookup(cookie);
    if (o && o->tgid == tgid)
        return; /* the common case: two lookups, no write */
    struct udp_owner owner = {.tgid = tgid};
    owner.cgroup = bpf_get_current_cgroup_id();
    bpf_get_current_comm(owner.comm, sizeof(owner.comm));
    udp_owner.update(cookie, &owner);
}
