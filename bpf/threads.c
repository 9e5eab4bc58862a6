/* A thread's comm changes (exec, prctl(PR_SET_NAME), /proc/PID/comm) or it
 * exits: fold its per-thread counters under the name it had until now.
 * Only compiled when a pane with per-thread counters is on. */

static inline void fold_thread(u32 tid)
{
#ifdef EBPFTOP_SYSCALLS
    syscalls_fold(tid);
#endif
#ifdef EBPFTOP_PAGE_FAULTS
    page_faults_fold(tid);
#endif
}

#ifdef EBPFTOP_HAVE_TASK_RENAME
TRACEPOINT_PROBE(task, task_rename)
{
    fold_thread(args->pid);
    return 0;
}
#endif

#ifdef EBPFTOP_HAVE_EXEC
TRACEPOINT_PROBE(sched, sched_process_exec)
{
    /* old_pid differs from pid when a non-leader thread execs */
    fold_thread(args->old_pid);
    return 0;
}
#endif

#ifdef EBPFTOP_HAVE_EXIT
TRACEPOINT_PROBE(sched, sched_process_exit)
{
    fold_thread((u32)bpf_get_current_pid_tgid());
    return 0;
}
#endif
