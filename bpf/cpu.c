/* CPU and the scheduler: where each thread's time goes, exactly, from the
 * scheduler's own tracepoints: on CPU, waiting for a CPU (runnable),
 * blocked uninterruptibly (D: mostly disk I/O) and sleeping; its run-queue
 * waits as a log2 histogram; its voluntary and involuntary switches; and
 * each CPU's idle time.  (The CPU profile with stacks is profile.c.)
 *
 * Hooks: sched:sched_switch, sched:sched_wakeup, sched:sched_wakeup_new
 * (classic tracepoints: BCC reads their fields' layout from tracefs, so no
 * kernel struct is read; a raw sched_switch would give next's pid only
 * through task_struct), and lifecycle.c's thread events (handlers below).
 *
 * == One record per thread: a state machine, cumulative ==
 * cpu_threads[tid] holds the thread's state (CPU_ON, CPU_RUNNABLE,
 * CPU_BLOCKED, CPU_SLEEPING), since when it is in it, and the nanoseconds
 * it has spent in each state so far.  Every transition charges [since, now)
 * to the state being left, then starts the next one:
 *
 *   sched_switch, prev (switch-out)  ON -> RUNNABLE (preempted or yielded),
 *                                    BLOCKED (prev_state D) or SLEEPING
 *   sched_wakeup(_new) (the wakee)   BLOCKED/SLEEPING -> RUNNABLE
 *   sched_switch, next (switch-in)   RUNNABLE -> ON: that span is a run-queue
 *                                    wait, counted in the thread's histogram
 *
 * User space never deletes a record: it reads them all each poll and diffs
 * (carry.py).  A span still open at a poll (a thread running, or asleep,
 * since `since`) is credited there as (now - since) in `state`: the kernel
 * later charges exactly that span, with the same start and the same state,
 * so what was credited is subtracted back from the charge and nothing is
 * counted twice or lost (ebpftop/sets/cpu.py: carry; tests/unit/test_cpu.py, tests/kernel/test_cpu.py).
 * A record leaves the map only when its thread dies: the final switch-out
 * (prev_state X or Z) sends it to user space through the cpu_dead ring
 * buffer (read every half second: a server that starts a thread per
 * connection ends thousands in an interval, which filled a map of 4,096
 * dead records between two polls) and deletes it.
 *
 * == Who a wait belongs to ==
 * At a wakeup `current` is the waker (or whatever an interrupt hit), and at
 * a switch-in `current` is prev: the wakee's process (tgid) and cgroup are
 * in no tracepoint field.  The wait is therefore charged to the record
 * keyed by the tracepoint's own pid field (args->pid, args->next_pid: the
 * thread id, exact), and the record learns its tgid, comm and cgroup from
 * the helpers only at a switch-out, where the thread *is* current
 * (args->prev_pid == bpf_get_current_pid_tgid()'s tid: checked on Linux
 * 6.18 in 613,716 of 613,716 switches under load; tests/kernel/test_cpu.py
 * checks that the waits land on the right processes).
 * User space folds the per-thread histograms into per-process ones by that
 * tgid.  A thread's first slice after ebpftop starts is the only time its
 * process is not known yet; user space then looks the tid up in /proc.
 *
 * == Per CPU ==
 * cpu_percpu: the time of the CPU's last switch and who it switched in, and
 * the idle task's (pid 0, one per CPU, so never in cpu_threads) cumulative
 * time: busy % per CPU.  The last switch also dates the first slice of a
 * thread that was already running when the programs were attached, and
 * tells a switch that was never traced (see sched_switch below).
 *
 * == Cost ==
 * Per switch: one clock read, one per-CPU array lookup and two hash lookups
 * by tid (prev, next), no helper for comm or cgroup after a thread's first
 * switch-out.  Per wakeup: one clock read and one hash lookup.  The
 * histogram lives in the record (a per-process histogram hash would add
 * ~21 ns per switch).  The run time of each program, and what it adds to a
 * context switch beside BCC's runqlat and bpftrace's runqlat.bt:
 * `make bench` (tests/bench/sched_bench.py). */

/* CPU_ON..CPU_SLEEPING, CPU_HIST_SLOTS, CPU_STAT_* and the map sizes come
 * from ebpftop/sets/cpu.py (-D), and so do the prev_state masks below.
 *
 * prev_state as sched_switch reports it (__trace_sched_switch_state): the
 * preempted in the kernel get TASK_REPORT_MAX (0x100 on this kernel), a
 * runnable task that called schedule() itself 0 (sched_yield, and most
 * involuntary switches here: preemption on return to user goes through
 * schedule(); 274,835 against 90 with 0x100), any other one bit of TASK_REPORT
 * (0x1 S, 0x2 D, 0x4 T, 0x8 t, 0x10 X, 0x20 Z, 0x40 P, 0x80 I).  The loader
 * takes the masks from the format file's print fmt:
 *   PREV_STATE_SLEEP_MASK  bits meaning "left the run queue" (0xff)
 *   PREV_STATE_BLOCKED     TASK_UNINTERRUPTIBLE (0x2)
 *   PREV_STATE_DEAD        EXIT_DEAD | EXIT_ZOMBIE (0x30): its last switch */

struct cpu_thread {
    u64 ns[4];        /* cumulative ns per state, charged at each transition */
    u64 since;        /* when the current state began (bpf_ktime_get_ns) */
    u64 birth;        /* when this record was made: a reused tid is another thread */
    u64 cgroup;       /* cgroup v2 id, at the last switch-out that refreshed it */
    u32 state;        /* CPU_ON, CPU_RUNNABLE, CPU_BLOCKED or CPU_SLEEPING */
    u32 tgid;         /* 0 until the thread has been current (switched out) once */
    u32 voluntary;    /* switched out having left the run queue (S, D, ...) */
    u32 involuntary;  /* switched out while runnable (preempted, or yielded) */
    u32 refresh;      /* its comm or cgroup changed: re-read at its next switch-out */
    u32 first_tid;    /* the tid it was made under: (first_tid, birth) names the
                       * record for user space, even after an exec moved it */
    u64 estimated_ns; /* of ns[CPU_ON], what was charged by estimate: slices after
                       * a switch-in no program saw (see sched_switch) */
    char comm[COMM_LEN];
    u32 hist[CPU_HIST_SLOTS]; /* run-queue waits: slot k holds [2^(k-1), 2^k) ns */
};

struct cpu_dead_event {
    u32 tid;
    u32 pad;
    struct cpu_thread thread;
};

struct cpu_percpu_state {
    u64 last_switch;  /* this CPU's last sched_switch */
    u64 idle_ns;      /* cumulative time the idle task ran here */
    u64 untraced_ns;  /* cumulative time after a switch that was never traced */
    u32 cur;          /* next_pid of that switch: who runs here now */
    u32 idle;         /* 1 while the idle task runs */
};

/* preallocated: without, each new thread's insert took about 4 us */
BPF_HASH(cpu_threads, u32, struct cpu_thread, CPU_THREADS_MAP_SIZE);
BPF_RINGBUF_OUTPUT(cpu_dead, CPU_DEAD_RING_PAGES);
BPF_ARRAY(cpu_zero, struct cpu_thread, 1); /* an all-zero record to insert from (not on the stack) */
BPF_PERCPU_ARRAY(cpu_percpu, struct cpu_percpu_state, 1);
BPF_PERCPU_ARRAY(cpu_stats, u64, CPU_STAT_SLOTS);


static inline void cpu_stat(u32 slot)
{
    u64 *n = cpu_stats.lookup(&slot);
    if (n)
        *n += 1;
}

/* A record that could not be made.  The map full (-E2BIG) is a loss.
 * -EBUSY is the hash map's own recursion guard: its bucket locks are per
 * CPU, 8 slots of them, and an insert from an interrupt (a wakeup) on a
 * CPU where a bucket of the same slot is held (user space's batch read at
 * a poll, a task-context update) is refused; the thread's record is then
 * made at its next event, as for a thread running since before ebpftop
 * started: counted apart (CPU_STAT_BUSY), not as a loss. */
static inline void cpu_not_made(int err)
{
    if (err == -16) /* EBUSY */
        cpu_stat(CPU_STAT_BUSY);
    else
        count_lost(LOST_CPU);
}

/* A new record in `state` since `since`, or NULL (map full: counted). */
static inline struct cpu_thread *cpu_thread_new(u32 tid, u32 state, u64 since, u64 now)
{
    u32 zero = 0;
    struct cpu_thread *z = cpu_zero.lookup(&zero);
    if (!z)
        return 0;
    int err = cpu_threads.insert(&tid, z);
    if (err != 0) {
        /* another CPU made it at the same moment (a new thread's wakeup
         * and its first switch-in race): that one is the record */
        struct cpu_thread *made = cpu_threads.lookup(&tid);
        if (!made)
            cpu_not_made(err);
        return made;
    }
    struct cpu_thread *r = cpu_threads.lookup(&tid);
    if (r) {
        r->birth = now;
        r->first_tid = tid;
        r->since = since;
        r->state = state;
    }
    return r;
}

/* Charge the span since r->since to the state it is in, and start `state`.
 * A reader copying the record during these three stores may see a mix of
 * old and new fields (a span missed or credited twice in that one poll):
 * carry.py keeps each total monotonic, and the next poll reads it whole. */
static inline void cpu_transition(struct cpu_thread *r, u32 state, u64 now)
{
    if (now > r->since) {
        u64 span = now - r->since;
        /* constant indices: with r->ns[r->state & 3], clang drops the mask
         * where it knows the state, and the verifier rejects the access */
        switch (r->state) {
        case CPU_ON: r->ns[CPU_ON] += span; break;
        case CPU_RUNNABLE: r->ns[CPU_RUNNABLE] += span; break;
        case CPU_BLOCKED: r->ns[CPU_BLOCKED] += span; break;
        default: r->ns[CPU_SLEEPING] += span; break;
        }
    }
    r->since = now;
    r->state = state;
}

/* RUNNABLE (or, with its wakeup unseen, asleep) -> ON at `now`: the span on
 * the run queue is a wait, counted in the thread's histogram (unless `now`
 * is an estimate). */
static inline void cpu_enter_on(struct cpu_thread *r, u64 now, int estimated)
{
    if (r->state == CPU_RUNNABLE && !estimated) {
        u64 wait = now > r->since ? now - r->since : 0;
        u32 slot = bpf_log2l(wait);
        if (slot >= CPU_HIST_SLOTS)
            slot = CPU_HIST_SLOTS - 1;
        r->hist[slot]++;
    } else if (r->state != CPU_ON && r->state != CPU_RUNNABLE) {
        /* asleep, then running, with no wakeup seen in between: the
         * off-CPU span stays with the state it had, no wait is counted */
        cpu_stat(CPU_STAT_NO_WAKEUP);
    }
    cpu_transition(r, CPU_ON, now);
}

/* prev's switch-out.  slice_start: this CPU's previous traced switch (0
 * before the first one), which switched prev in, or, when a switch in
 * between was not traced, the earliest prev can have been switched in. */
static inline void cpu_switch_out(u32 tid, long prev_state, u64 slice_start, u64 now)
{
    struct cpu_thread *r = cpu_threads.lookup(&tid);
    if (!r) {
        /* Running since before ebpftop started (or its switch-in found the
         * map full): its slice began at this CPU's previous switch. */
        r = cpu_thread_new(tid, CPU_ON, slice_start ? slice_start : now, now);
        if (!r)
            return;
    } else if (r->state != CPU_ON) {
        /* its switch-in was not traced: it is taken to have run since the
         * CPU's previous traced switch (or, not knowing it, not at all);
         * no wait is counted for that estimated switch-in */
        cpu_stat(CPU_STAT_NO_SWITCH_IN);
        if (slice_start >= r->since) {
            cpu_enter_on(r, slice_start, 1);
            r->estimated_ns += now - slice_start; /* the slice, run partly by whoever was hidden */
        } else {
            cpu_enter_on(r, now, 1);
        }
    }
    u32 next_state;
    if ((prev_state & PREV_STATE_SLEEP_MASK) == 0) {
        next_state = CPU_RUNNABLE; /* still on the run queue: its wait starts now */
        r->involuntary++;
    } else {
        next_state = (prev_state & PREV_STATE_BLOCKED) ? CPU_BLOCKED : CPU_SLEEPING;
        r->voluntary++; /* as the kernel's nvcsw, the last switch (X, Z) included */
    }
    /* The thread is current here: who it is, once (and after exec/rename/
     * a cgroup move, which set refresh). */
    if (r->tgid == 0 || r->refresh) {
        r->tgid = bpf_get_current_pid_tgid() >> 32;
        r->cgroup = bpf_get_current_cgroup_id();
        bpf_get_current_comm(r->comm, sizeof(r->comm));
        r->refresh = 0;
    }
    cpu_transition(r, next_state, now);
    if (prev_state & PREV_STATE_DEAD) {
        /* its last switch: the record goes to user space, whole */
        struct cpu_dead_event *e = cpu_dead.ringbuf_reserve(sizeof(*e));
        if (e) {
            e->tid = tid;
            e->pad = 0;
            __builtin_memcpy(&e->thread, r, sizeof(e->thread));
            cpu_dead.ringbuf_submit(e, 0);
        } else {
            count_lost(LOST_CPU);
        }
        cpu_threads.delete(&tid);
    }
}

static inline void cpu_switch_in(u32 tid, u64 now)
{
    struct cpu_thread *r = cpu_threads.lookup(&tid);
    if (!r) {
        /* first seen: on a run queue since before ebpftop started; its
         * process is learnt at its switch-out */
        cpu_thread_new(tid, CPU_ON, now, now);
        return;
    }
    cpu_enter_on(r, now, 0);
}

/* `tid` was switched in at `at` and its switch-out was never traced: it
 * is taken to have left the CPU at once, asleep since `at`. */
static inline void cpu_lost_track(u32 tid, u64 at)
{
    struct cpu_thread *r = cpu_threads.lookup(&tid);
    if (r && r->state == CPU_ON && r->since == at)
        r->state = CPU_SLEEPING;
}

TRACEPOINT_PROBE(sched, sched_switch)
{
    u64 now = bpf_ktime_get_ns();
    u32 prev = args->prev_pid;
    u32 next = args->next_pid;
    u32 zero = 0;
    struct cpu_percpu_state *c = cpu_percpu.lookup(&zero);
    if (!c)
        return 0;
    u64 slice_start = c->last_switch;
    u32 cur = c->cur;
    c->last_switch = now;
    c->cur = next;
    c->idle = next == 0;
    if (slice_start && prev != cur) {
        /* On one CPU each switch's prev is the previous switch's next,
         * unless a switch in between was not traced: a program's run was
         * skipped, or, on this VM, the threads of PID 1 (the VM's agent)
         * ran, during which no BPF program runs at all (explore/who_runs.py:
         * no syscall, no sample, no switch-out of theirs is ever seen).
         * Those runs are short; the span since the previous switch is given
         * to prev (or to idle), as an estimate, and counted apart; the
         * thread switched in then is taken to have left at once. */
        c->untraced_ns += now - slice_start;
        cpu_stat(CPU_STAT_UNTRACED);
        if (cur != 0)
            cpu_lost_track(cur, slice_start);
    }
    if (prev == 0) {
        if (slice_start)
            c->idle_ns += now - slice_start; /* pid 0: this CPU's idle task */
    } else {
        cpu_switch_out(prev, args->prev_state, slice_start, now);
    }
    if (next != 0)
        cpu_switch_in(next, now);
    return 0;
}

/* The wakee is the tracepoint's pid (a thread id); `current` is the waker. */
static inline void cpu_wakeup(u32 tid)
{
    if (tid == 0)
        return;
    u64 now = bpf_ktime_get_ns();
    struct cpu_thread *r = cpu_threads.lookup(&tid);
    if (!r) {
        /* asleep since before ebpftop started (or new): runnable from now */
        cpu_thread_new(tid, CPU_RUNNABLE, now, now);
        return;
    }
    /* A wakeup of a thread that is running or already runnable (woken
     * before it got to schedule(), ttwu_runnable) changes nothing. */
    if (r->state == CPU_BLOCKED || r->state == CPU_SLEEPING)
        cpu_transition(r, CPU_RUNNABLE, now);
}

TRACEPOINT_PROBE(sched, sched_wakeup)
{
    cpu_wakeup(args->pid);
    return 0;
}

TRACEPOINT_PROBE(sched, sched_wakeup_new)
{
    cpu_wakeup(args->pid);
    return 0;
}

/* lifecycle.c's ON_THREAD_CHANGED (ProbeSet.handlers: exec, task_rename,
 * cgroup_attach_task, exit: the comm or the cgroup of `tid` changed):
 * re-read them at its next switch-out.  Its cumulative times stay in the record; user space
 * charges each interval's delta to the name the thread has at its end. */
static inline void cpu_thread_changed(u32 tid)
{
    struct cpu_thread *r = cpu_threads.lookup(&tid);
    if (r)
        r->refresh = 1;
}

/* lifecycle.c's ON_THREAD_EXEC: a thread other than the leader execs: it
 * takes the leader's id (pid) and leaves its own (old_pid).  Its record
 * moves with it (over whatever the old
 * leader left there); without this, the record under old_pid would stay
 * "on CPU" for ever. */
static inline void cpu_thread_exec(u32 old_pid, u32 pid)
{
    struct cpu_thread *r = cpu_threads.lookup(&old_pid);
    if (!r)
        return;
    r->refresh = 1;
    int err = cpu_threads.update(&pid, r);
    if (err != 0)
        cpu_not_made(err);
    cpu_threads.delete(&old_pid);
}
