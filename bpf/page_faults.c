/* Page faults: user-mode page faults per thread, from exceptions:page_fault_user
 * (the tracepoint fires in the faulting task, so pid and comm are its own). */

BPF_HASH(fault_counts, u32, struct thread_count, PAGE_FAULTS_MAP_SIZE);
BPF_HASH(fault_folded, struct comm_pid_key, u64, PAGE_FAULTS_MAP_SIZE);

TRACEPOINT_PROBE(exceptions, page_fault_user)
{
    u64 pid_tgid = bpf_get_current_pid_tgid();
    u32 tid = (u32)pid_tgid;
    struct thread_count *c = fault_counts.lookup(&tid);
    if (c) {
        c->count++;
        return 0;
    }
    struct thread_count init = {.count = 1, .tgid = pid_tgid >> 32};
    bpf_get_current_comm(init.comm, sizeof(init.comm));
    if (fault_counts.insert(&tid, &init) != 0)
        count_lost(LOST_PAGE_FAULTS);
    return 0;
}

static inline void page_faults_fold(u32 tid)
{
    struct thread_count *c = fault_counts.lookup(&tid);
    if (!c)
        return;
    struct comm_pid_key key = {.tgid = c->tgid};
    __builtin_memcpy(key.comm, c->comm, COMM_LEN);
    u64 count = c->count;
    fault_counts.delete(&tid);
    u64 zero = 0;
    u64 *folded = fault_folded.lookup_or_try_init(&key, &zero);
    if (folded)
        __sync_fetch_and_add(folded, count);
    else
        count_lost(LOST_PAGE_FAULTS);
}
