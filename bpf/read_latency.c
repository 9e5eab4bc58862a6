/* read() and write() latency: log2 histograms of their durations in ns, per
 * (cgroup, comm, tgid), one series each (OP_READ, OP_WRITE: ebpftop/cdefs.py),
 * in a HIST_MAP (ebpftop.h).
 *
 * Entry: sys_enter.c's raw sys_enter program stamps the start (with the
 * syscalls set's counter at hand when that set is on); where it cannot
 * (the syscall numbers unknown), syscalls:sys_enter_read/write do.  Exit: syscalls:sys_exit_read/write.
 * The start time lives in task-local storage, updated in place: a thread is
 * in one syscall at a time. */

HIST_MAP(latency_hist, READ_LATENCY_MAP_SIZE);

#ifdef EBPFTOP_SAMPLING
/* --max-cpu: over its budget, ebpftop times 1 call in (mask + 1), chosen at
 * random (a per-thread count would always pick the same syscall of a loop
 * that alternates read() and write()).  A timed call is counted as the
 * (mask + 1) calls it stands for, with the mask of its entry: user space
 * only marks the counts as estimates (ebpftop/budget.py).  Scaling them up
 * at the poll instead inflated the interval in which the mask changed: the
 * calls timed one in one between the drain and the new mask were counted N
 * times (28% too many in one CI run, where collecting the other sets took
 * long). */
BPF_ARRAY(latency_sample_mask, u32, 1);

/* How many calls this one stands for, or 0: not timed, and the exit must
 * then find no start stamp (clearing it costs a lookup, but not the clock
 * read, nor the histogram's update at the exit). */
static inline u32 latency_weight(void)
{
    int zero = 0;
    u32 *mask = latency_sample_mask.lookup(&zero);
    if (!mask || !*mask)
        return 1;
    if (!(bpf_get_prandom_u32() & *mask))
        return *mask + 1;
    struct task_scratch *s = scratch_get(0, LOST_READ_LATENCY);
    if (s)
        s->latency_start_ns = 0;
    return 0;
}
#else
static inline u32 latency_weight(void)
{
    return 1;
}
#endif

static inline void latency_enter(u32 op)
{
    u32 weight = latency_weight();
    if (!weight)
        return;
    struct task_scratch *s = scratch_get(1, LOST_READ_LATENCY);
    if (s) {
        s->latency_weight = weight;
        s->latency_who_known = 0;
        s->latency_start_ns = bpf_ktime_get_ns();
        s->latency_op = op;
    }
}

#if defined(LATENCY_ENTRY_ON_RAW_SYS_ENTER) && defined(EBPFTOP_SYSCALLS)
/* From syscalls.c's count at the raw sys_enter, which has just looked the thread's
 * counter up: its cgroup and comm are copied along, so the exit needs no
 * helper call for them (they are the thread's current ones: the counter is
 * folded away whenever either changes). */
static inline void latency_enter_as(u32 op, const struct thread_count *who)
{
    u32 weight = latency_weight();
    if (!weight)
        return;
    struct task_scratch *s = scratch_get(1, LOST_READ_LATENCY);
    if (s) {
        s->latency_weight = weight;
        s->latency_cgroup = who->cgroup;
        __builtin_memcpy(s->latency_comm, who->comm, COMM_LEN);
        s->latency_who_known = 1;
        s->latency_op = op;
        s->latency_start_ns = bpf_ktime_get_ns();
    }
}
#endif

#ifndef LATENCY_ENTRY_ON_RAW_SYS_ENTER
TRACEPOINT_PROBE(syscalls, sys_enter_read)
{
    latency_enter(OP_READ);
    return 0;
}

TRACEPOINT_PROBE(syscalls, sys_enter_write)
{
    latency_enter(OP_WRITE);
    return 0;
}
#endif

static inline void latency_exit(u32 op)
{
    struct task_scratch *s = scratch_get(0, LOST_READ_LATENCY);
    if (!s || !s->latency_start_ns || s->latency_op != op)
        return; /* the syscall began before we attached */
    u64 delta = bpf_ktime_get_ns() - s->latency_start_ns;
    s->latency_start_ns = 0;

    struct hist_key key = {};
    if (s->latency_who_known) {
        /* the raw sys_enter had them at hand: no helper calls for them here */
        key.slot = bpf_log2l(delta);
        key.series = op;
        key.tgid = bpf_get_current_pid_tgid() >> 32;
        key.cgroup = s->latency_cgroup;
        __builtin_memcpy(key.comm, s->latency_comm, COMM_LEN);
    } else {
        key = hist_key_of(delta, op);
    }
    struct hist_value zero = {};
    struct hist_value *v = latency_hist.lookup_or_try_init(&key, &zero);
    if (v)
        hist_count_weighted(v, delta, s->latency_weight);
    else
        count_lost(LOST_READ_LATENCY);
}

TRACEPOINT_PROBE(syscalls, sys_exit_read)
{
    latency_exit(OP_READ);
    return 0;
}

TRACEPOINT_PROBE(syscalls, sys_exit_write)
{
    latency_exit(OP_WRITE);
    return 0;
}
