/* Hooks on a task's life that several panes share, one program each:
 *
 * - a new process (task:task_newtask without CLONE_THREAD): its parent is
 *   recorded (alerts and exec rows name it) and the processes pane gets a fork;
 * - a thread's comm changes (exec, prctl(PR_SET_NAME), /proc/PID/comm) or it
 *   exits: its per-thread counters (syscalls, page faults) are folded under
 *   the name it had until now;
 * - exec and exit rows for the processes pane. */

#define CLONE_THREAD_FLAG 0x00010000

static inline void fold_thread(u32 tid)
{
#ifdef EBPFTOP_SYSCALLS
    syscalls_fold(tid);
#endif
#ifdef EBPFTOP_PAGE_FAULTS
    page_faults_fold(tid);
#endif
}

#if defined(EBPFTOP_FILE_OPENS) || defined(EBPFTOP_PROCESSES)
TRACEPOINT_PROBE(task, task_newtask)
{
    if (args->clone_flags & CLONE_THREAD_FLAG)
        return 0; /* a thread, not a process */
    u32 child = args->pid;
    u32 parent = bpf_get_current_pid_tgid() >> 32; /* the forking task's process */
    parent_of.update(&child, &parent);
#ifdef EBPFTOP_PROCESSES
    processes_fork(child, parent);
#endif
    return 0;
}
#endif

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
#ifdef EBPFTOP_PROCESSES
    processes_exec(args->pid, (const char *)args + (args->data_loc_filename & 0xFFFF));
#endif
    return 0;
}
#endif

#ifdef EBPFTOP_HAVE_EXIT
TRACEPOINT_PROBE(sched, sched_process_exit)
{
    u64 pid_tgid = bpf_get_current_pid_tgid();
    fold_thread((u32)pid_tgid);
#ifdef EBPFTOP_PROCESSES
#ifdef EBPFTOP_HAVE_GROUP_DEAD
    processes_exit(args->group_dead);
#else
    /* older kernels have no group_dead: take the leader's exit as the process's */
    processes_exit((u32)pid_tgid == (u32)(pid_tgid >> 32));
#endif
#endif
    return 0;
}
#endif
