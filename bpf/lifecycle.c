/* Hooks on a task's life that several probe sets share, one program each:
 *
 * - a new process (task:task_newtask without CLONE_THREAD): its parent is
 *   recorded (alerts and exec rows name it) and the processes set gets a fork;
 * - a thread's comm changes (exec, prctl(PR_SET_NAME), /proc/PID/comm), it
 *   moves to another cgroup, or it exits: ON_THREAD_CHANGED(tid) calls the
 *   handler of every enabled set that declares one (ProbeSet.handlers:
 *   syscalls and page faults fold their per-thread counters under the name
 *   and cgroup it had until now), and after an exec by a thread that is not
 *   its process's leader, which takes the leader's id, ON_THREAD_EXEC(old,
 *   new) (the loader defines both, only when some set handles them), and
 *   in the exiting thread itself ON_THREAD_EXIT(tid) (the OOM set's victims);
 * - exec and exit rows for the processes set. */

#define CLONE_THREAD_FLAG 0x00010000

static inline void fold_thread(u32 tid)
{
#ifdef ON_THREAD_CHANGED
    ON_THREAD_CHANGED(tid);
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

/* Without task-local storage the per-thread scratch lives in hash maps: a
 * thread's entries go when it exits (or, after exec by a non-leader thread,
 * when it takes the leader's id). */
static inline void scratch_drop(u32 tid)
{
#ifndef EBPFTOP_TASK_STORAGE
    task_scratch.delete(&tid);
#ifdef EBPFTOP_PROCESSES
    exec_scratch.delete(&tid);
#endif
#endif
}

#if defined(EBPFTOP_HAVE_TASK_RENAME) && defined(ON_THREAD_CHANGED)
TRACEPOINT_PROBE(task, task_rename)
{
#ifdef EBPFTOP_TASK_RENAME_HAS_PID
    fold_thread(args->pid);
#else
    /* Linux 6.14 to 6.19.10 dropped the field: the renamed task is then taken
     * to be the current one (true but for writes to another's /proc/PID/comm) */
    fold_thread((u32)bpf_get_current_pid_tgid());
#endif
    return 0;
}
#endif

#if defined(EBPFTOP_HAVE_CGROUP_ATTACH) && defined(ON_THREAD_CHANGED)
/* A thread moved to another cgroup (a container runtime putting its first
 * process in the container's cgroup, systemd starting a unit): what it did
 * until now stays with the cgroup it did it in.  Runs in the mover, so the
 * thread is named by args->pid. */
TRACEPOINT_PROBE(cgroup, cgroup_attach_task)
{
    if (args->dst_root == 0) /* the cgroup v2 hierarchy */
        fold_thread(args->pid);
    return 0;
}
#endif

#ifdef EBPFTOP_HAVE_EXEC
TRACEPOINT_PROBE(sched, sched_process_exec)
{
    /* old_pid differs from pid when a non-leader thread execs */
    fold_thread(args->old_pid);
    if (args->old_pid != args->pid) {
        scratch_drop(args->old_pid);
#ifdef ON_THREAD_EXEC
        ON_THREAD_EXEC(args->old_pid, args->pid);
#endif
    }
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
#ifdef ON_THREAD_EXIT
    ON_THREAD_EXIT((u32)pid_tgid);
#endif
#ifdef EBPFTOP_PROCESSES
#ifdef EBPFTOP_HAVE_GROUP_DEAD
    processes_exit(args->group_dead);
#else
    /* older kernels have no group_dead: take the leader's exit as the process's */
    processes_exit((u32)pid_tgid == (u32)(pid_tgid >> 32));
#endif
#endif
    scratch_drop((u32)pid_tgid); /* after processes_exit, which reads the exit code */
    return 0;
}
#endif
