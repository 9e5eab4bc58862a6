/* Processes: fork, exec and exit events, newest first in their tab, streamed
 * through a ring buffer (a row per event is the point); what does not fit is
 * counted.
 *
 * fork: task:task_newtask, in the parent, whose clone flags tell a new
 *   process from a new thread (sched_process_fork cannot).
 * The hooks shared with other probe sets (task_newtask, sched_process_exec and
 * sched_process_exit) live in lifecycle.c, one program each; this file has
 * what they call.
 * exec: the first arguments are read from user memory at sys_enter_execve
 *   (afterwards that memory is gone) into task storage, and sent with
 *   sched:sched_process_exec, which has the resolved filename.
 * exit: sched:sched_process_exit when the whole thread group is dead; the
 *   exit code is the one passed to exit_group() (the tracepoint has none);
 *   a process killed by a signal has no code. */

/* PROC_FORK/EXEC/EXIT, EXEC_ARGS, ARG_LEN and FILENAME_LEN: ebpftop/cdefs.py */

struct proc_event {
    u64 ts_ns;
    u64 lifetime_ns; /* exit: since the fork; 0 if it forked before ebpftop started */
    u64 cgroup;      /* the task's (fork: the parent's, which the child starts in) */
    u32 kind;
    u32 pid;
    u32 ppid;
    s32 exit_code;   /* exit: the code given to exit_group() */
    u32 has_code;    /* exit: 0 when killed by a signal (no exit_group()) */
    u32 argc;        /* exec: how many of args[] are filled */
    char comm[COMM_LEN];
    char filename[FILENAME_LEN];
    char args[EXEC_ARGS][ARG_LEN];
};

struct exec_scratch {
    u32 argc;
    u32 has_code;
    s32 exit_code;
    u32 pad;
    char args[EXEC_ARGS][ARG_LEN];
};

BPF_RINGBUF_OUTPUT(proc_events, 64); /* 256 KiB: about 700 events between two reads */
#ifdef EBPFTOP_TASK_STORAGE
BPF_TASK_STORAGE(exec_scratch, struct exec_scratch);

static inline struct exec_scratch *exec_scratch_get(int create)
{
    return exec_scratch.task_storage_get(bpf_get_current_task_btf(), 0,
                                         create ? BPF_LOCAL_STORAGE_GET_F_CREATE : 0);
}
#else
/* without task storage: keyed by thread id, deleted at exit (lifecycle.c) */
BPF_HASH(exec_scratch, u32, struct exec_scratch, PER_THREAD_MAP_SIZE);

static inline struct exec_scratch *exec_scratch_get(int create)
{
    u32 tid = (u32)bpf_get_current_pid_tgid();
    struct exec_scratch *s = exec_scratch.lookup(&tid);
    if (s || !create)
        return s;
    struct exec_scratch zero = {};
    return exec_scratch.lookup_or_try_init(&tid, &zero);
}
#endif
BPF_TABLE("lru_hash", u32, u64, proc_started, 65536); /* pid -> fork time */

/* A zeroed event of this kind, or NULL (counted as lost) if the ring is full. */
static inline struct proc_event *proc_event_new(u32 kind, u32 pid, u64 now)
{
    struct proc_event *e = proc_events.ringbuf_reserve(sizeof(struct proc_event));
    if (!e) {
        count_lost(LOST_PROCESSES);
        return 0;
    }
    __builtin_memset(e, 0, sizeof(*e));
    e->ts_ns = now;
    e->kind = kind;
    e->pid = pid;
    e->cgroup = bpf_get_current_cgroup_id();
    bpf_get_current_comm(e->comm, sizeof(e->comm));
    return e;
}

/* Called from lifecycle.c's task:task_newtask for a new process. */
static inline void processes_fork(u32 child, u32 parent)
{
    u64 now = bpf_ktime_get_ns();
    proc_started.update(&child, &now);
    struct proc_event *e = proc_event_new(PROC_FORK, child, now);
    if (!e)
        return;
    e->ppid = parent; /* comm: the parent's, which the child shares until it execs */
    proc_events.ringbuf_submit(e, 0);
}

/* execve()'s and exit_group()'s entries: from sys_enter.c, or from their
 * classic tracepoints where it cannot read the arguments itself. */
static inline void processes_execve_enter(const char *const *argv)
{
    struct exec_scratch *s = exec_scratch_get(1);
    if (!s)
        return;
    s->argc = 0;
#pragma unroll
    for (int i = 0; i < EXEC_ARGS; i++) {
        const char *arg = 0;
        if (bpf_probe_read_user(&arg, sizeof(arg), &argv[i]) != 0 || !arg)
            break;
        if (bpf_probe_read_user_str(s->args[i], ARG_LEN, arg) < 0)
            break;
        s->argc = i + 1;
    }
}

static inline void processes_exit_group_enter(int error_code)
{
    struct exec_scratch *s = exec_scratch_get(1);
    if (s) {
        s->exit_code = error_code;
        s->has_code = 1;
    }
}

#ifndef EBPFTOP_RAW_SYSCALL_ARGS
TRACEPOINT_PROBE(syscalls, sys_enter_execve)
{
    processes_execve_enter(args->argv);
    return 0;
}

TRACEPOINT_PROBE(syscalls, sys_enter_exit_group)
{
    processes_exit_group_enter(args->error_code);
    return 0;
}
#endif

/* Called from lifecycle.c's sched:sched_process_exec; filename points into
 * the tracepoint's record. */
static inline void processes_exec(u32 pid, const char *filename)
{
    struct proc_event *e = proc_event_new(PROC_EXEC, pid, bpf_ktime_get_ns());
    if (!e)
        return;
    bpf_probe_read_kernel_str(e->filename, sizeof(e->filename), filename);
    struct exec_scratch *s = exec_scratch_get(0);
    if (s) {
        e->argc = s->argc;
        __builtin_memcpy(e->args, s->args, sizeof(e->args));
        s->argc = 0;
    }
    u32 *parent = parent_of.lookup(&pid);
    e->ppid = parent ? *parent : 0;
    proc_events.ringbuf_submit(e, 0);
}

/* Called from lifecycle.c's sched:sched_process_exit for each thread. */
static inline void processes_exit(int group_dead)
{
    u64 pid_tgid = bpf_get_current_pid_tgid();
    u32 tgid = pid_tgid >> 32;
    if (!group_dead)
        return; /* other threads live on */
    struct proc_event *e = proc_event_new(PROC_EXIT, tgid, bpf_ktime_get_ns());
    if (!e)
        return;
    u32 *parent = parent_of.lookup(&tgid);
    e->ppid = parent ? *parent : 0;
    parent_of.delete(&tgid);
    u64 *started = proc_started.lookup(&tgid);
    if (started) {
        e->lifetime_ns = e->ts_ns - *started;
        proc_started.delete(&tgid);
    }
    struct exec_scratch *s = exec_scratch_get(0);
    if (s && s->has_code) {
        e->exit_code = s->exit_code;
        e->has_code = 1;
    }
    proc_events.ringbuf_submit(e, 0);
}
