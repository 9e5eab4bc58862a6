/* read() latency: a log2 histogram of read() durations in ns, per (comm, tgid).
 *
 * Entry: when the syscalls pane is on, its raw sys_enter program stamps the
 * start time (one program on that hook instead of two); otherwise
 * syscalls:sys_enter_read does.  Exit: syscalls:sys_exit_read.
 * The start time lives in task-local storage, updated in place. */

struct latency_key {
    char comm[COMM_LEN];
    u32 tgid;
    u32 slot; /* bpf_log2l(ns): slot k holds [2^(k-1), 2^k), slot 0 holds 0 */
};

/* count, and the exact sum of the durations (for means and Prometheus' _sum) */
struct latency_value {
    u64 count;
    u64 sum_ns;
};

BPF_HASH(read_latency_hist, struct latency_key, struct latency_value, READ_LATENCY_MAP_SIZE);

static inline void read_latency_enter(void)
{
    struct task_scratch *s = scratch_get(1);
    if (s)
        s->read_start_ns = bpf_ktime_get_ns();
}

#ifndef READ_ENTRY_ON_RAW_SYS_ENTER
TRACEPOINT_PROBE(syscalls, sys_enter_read)
{
    read_latency_enter();
    return 0;
}
#endif

TRACEPOINT_PROBE(syscalls, sys_exit_read)
{
    struct task_scratch *s = scratch_get(0);
    if (!s || !s->read_start_ns)
        return 0; /* the read began before we attached */
    u64 delta = bpf_ktime_get_ns() - s->read_start_ns;
    s->read_start_ns = 0;

    struct latency_key key = {};
    key.slot = bpf_log2l(delta);
    key.tgid = bpf_get_current_pid_tgid() >> 32;
    bpf_get_current_comm(key.comm, sizeof(key.comm));
    struct latency_value zero = {};
    struct latency_value *v = read_latency_hist.lookup_or_try_init(&key, &zero);
    if (v) {
        __sync_fetch_and_add(&v->count, 1);
        __sync_fetch_and_add(&v->sum_ns, delta);
    } else {
        count_lost(LOST_READ_LATENCY);
    }
    return 0;
}
