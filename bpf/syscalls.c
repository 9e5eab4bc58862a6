/* Syscalls: every syscall counted per thread on raw_syscalls:sys_enter (a raw
 * tracepoint: cheaper than the classic one, and it fires once per syscall);
 * the program is sys_enter.c's, which every set acting on an entry shares. */

BPF_HASH(syscall_counts, u32, struct thread_count, SYSCALLS_MAP_SIZE);
BPF_HASH(syscall_folded, struct comm_pid_key, u64, SYSCALLS_MAP_SIZE);

/* Called by sys_enter.c's raw sys_enter program for every syscall: one
 * counter per thread.  read() and write() entries are stamped there for
 * read_latency.c, with the thread's cgroup and comm from its counter. */
static inline void syscalls_enter(u64 nr)
{
    u64 pid_tgid = bpf_get_current_pid_tgid();
    u32 tid = (u32)pid_tgid;
    struct thread_count *c = syscall_counts.lookup(&tid);
    if (c) {
        /* Only this thread updates its own entry: no atomic needed. */
        c->count++;
    } else {
        struct thread_count init = {.count = 1, .tgid = pid_tgid >> 32};
        init.cgroup = bpf_get_current_cgroup_id();
        bpf_get_current_comm(init.comm, sizeof(init.comm));
        if (syscall_counts.insert(&tid, &init) != 0)
            count_lost(LOST_SYSCALLS);
        c = &init;
    }
#ifdef LATENCY_ENTRY_ON_RAW_SYS_ENTER
    if (nr == NR_READ)
        latency_enter_as(OP_READ, c);
    else if (nr == NR_WRITE)
        latency_enter_as(OP_WRITE, c);
#endif
}

static inline void syscalls_fold(u32 tid)
{
    struct thread_count *c = syscall_counts.lookup(&tid);
    if (!c)
        return;
    struct comm_pid_key key = {};
    key.cgroup = c->cgroup;
    key.tgid = c->tgid;
    __builtin_memcpy(key.comm, c->comm, COMM_LEN);
    u64 count = c->count;
    syscall_counts.delete(&tid);
    u64 zero = 0;
    u64 *folded = syscall_folded.lookup_or_try_init(&key, &zero);
    if (folded)
        __sync_fetch_and_add(folded, count);
    else
        count_lost_n(LOST_SYSCALLS, count);
}
