/* Page faults: user-mode page faults per thread, from exceptions:page_fault_user
 * (x86 only), or elsewhere from the perf software event page-faults with
 * exclude_kernel set (user space attaches it on every CPU).  Both fire in
 * the faulting task, so pid and comm are its own, and both count a fault
 * taken in user mode, whatever its outcome. */

BPF_HASH(fault_counts, u32, struct thread_count, PAGE_FAULTS_MAP_SIZE);
BPF_HASH(fault_folded, struct comm_pid_key, u64, PAGE_FAULTS_MAP_SIZE);

static inline void page_fault_count(void)
{
    u64 pid_tgid = bpf_get_current_pid_tgid();
    u32 tid = (u32)pid_tgid;
    struct thread_count *c = fault_counts.lookup(&tid);
    if (c) {
        c->count++;
        return;
    }
    struct thread_count init = {.count = 1, .tgid = pid_tgid >> 32};
    init.cgroup = bpf_get_current_cgroup_id();
    bpf_get_current_comm(init.comm, sizeof(init.comm));
    if (fault_counts.insert(&tid, &init) != 0)
        count_lost(LOST_PAGE_FAULTS);
}

#ifdef EBPFTOP_PAGE_FAULT_TRACEPOINT
TRACEPOINT_PROBE(exceptions, page_fault_user)
{
    page_fault_count();
    return 0;
}
#else
#include <uapi/linux/bpf_perf_event.h>

int page_fault_event(struct bpf_perf_event_data *ctx)
{
    page_fault_count();
    return 0;
}
#endif

static inline void page_faults_fold(u32 tid)
{
    struct thread_count *c = fault_counts.lookup(&tid);
    if (!c)
        return;
    struct comm_pid_key key = {};
    key.cgroup = c->cgroup;
    key.tgid = c->tgid;
    __builtin_memcpy(key.comm, c->comm, COMM_LEN);
    u64 count = c->count;
    fault_counts.delete(&tid);
    u64 zero = 0;
    u64 *folded = fault_folded.lookup_or_try_init(&key, &zero);
    if (folded)
        __sync_fetch_and_add(folded, count);
    else
        count_lost_n(LOST_PAGE_FAULTS, count);
}
