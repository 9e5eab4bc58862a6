/* OOM kills: each victim of the OOM killer, as an event through a ring
 * buffer (a row per kill is the point; a full ring is counted).
 *
 * oom:mark_victim fires when the killer has chosen its victim and is about
 * to send it SIGKILL, in the context of the task whose allocation failed:
 * often the victim, but not always (another process of the same cgroup, a
 * kernel thread): the current task is recorded as the trigger, never as the
 * victim.  Its fields grew: Linux 4.x-6.7 give only pid; 6.8 added comm and
 * the memory figures (KiB), uid, oom_score_adj.  The loader passes
 * -DOOM_HAVE_<FIELD> for those this kernel's format file has
 * (ebpftop/sets/oom.py).
 *
 * The victim's name and cgroup (its container) come in a second event, from
 * the victim's own exit (lifecycle.c's sched_process_exit calls
 * oom_on_exit through ON_THREAD_EXIT): there the helpers give them, on
 * every kernel.  mark_victim leaves the victim's pid in oom_pending; its
 * exit sends OOM_EXIT and deletes it.  User space joins the two by pid.
 * Reading /proc/PID when the mark arrives is too late: the victim was gone
 * in every run here. */

struct oom_event {
    u64 ts_ns;
    u64 cgroup;       /* OOM_EXIT: the victim's; OOM_MARK: the trigger's */
    u64 total_vm;     /* KiB; 0 where the kernel does not give it */
    u64 anon_rss;
    u64 file_rss;
    u64 shmem_rss;
    u64 pgtables;
    u32 kind;         /* OOM_MARK or OOM_EXIT */
    u32 pid;          /* the victim (a thread id: its leader's in practice) */
    u32 tgid;         /* OOM_EXIT: the victim's process */
    u32 uid;
    s32 oom_score_adj;
    u32 trigger_pid;  /* OOM_MARK: the process whose allocation failed */
    char comm[COMM_LEN];         /* the victim's (OOM_MARK: only with OOM_HAVE_COMM) */
    char trigger_comm[COMM_LEN];
};

BPF_RINGBUF_OUTPUT(oom_events, OOM_RING_PAGES);
BPF_HASH(oom_pending, u32, u64, OOM_PENDING_MAP_SIZE); /* victim tid -> when it was marked */

TRACEPOINT_PROBE(oom, mark_victim)
{
    u32 pid = args->pid;
    u64 now = bpf_ktime_get_ns();
    if (oom_pending.update(&pid, &now) != 0)
        count_lost(LOST_OOM);
    struct oom_event *e = oom_events.ringbuf_reserve(sizeof(*e));
    if (!e) {
        count_lost(LOST_OOM);
        return 0;
    }
    __builtin_memset(e, 0, sizeof(*e));
    e->ts_ns = now;
    e->kind = OOM_MARK;
    e->pid = pid;
    e->cgroup = bpf_get_current_cgroup_id();
    e->trigger_pid = bpf_get_current_pid_tgid() >> 32;
    bpf_get_current_comm(e->trigger_comm, sizeof(e->trigger_comm));
#ifdef OOM_HAVE_COMM
    bpf_probe_read_kernel_str(e->comm, sizeof(e->comm), (const char *)args + (args->data_loc_comm & 0xFFFF));
#endif
#ifdef OOM_HAVE_TOTAL_VM
    e->total_vm = args->total_vm;
#endif
#ifdef OOM_HAVE_ANON_RSS
    e->anon_rss = args->anon_rss;
#endif
#ifdef OOM_HAVE_FILE_RSS
    e->file_rss = args->file_rss;
#endif
#ifdef OOM_HAVE_SHMEM_RSS
    e->shmem_rss = args->shmem_rss;
#endif
#ifdef OOM_HAVE_PGTABLES
    e->pgtables = args->pgtables;
#endif
#ifdef OOM_HAVE_UID
    e->uid = args->uid;
#endif
#ifdef OOM_HAVE_OOM_SCORE_ADJ
    e->oom_score_adj = args->oom_score_adj;
#endif
    oom_events.ringbuf_submit(e, 0);
    return 0;
}

/* ON_THREAD_EXIT's handler, in the exiting thread: one hash lookup per
 * thread exit, the map empty but for victims on their way out. */
static inline void oom_on_exit(u32 tid)
{
    u64 *marked = oom_pending.lookup(&tid);
    if (!marked)
        return;
    oom_pending.delete(&tid);
    struct oom_event *e = oom_events.ringbuf_reserve(sizeof(*e));
    if (!e) {
        count_lost(LOST_OOM);
        return;
    }
    __builtin_memset(e, 0, sizeof(*e));
    e->ts_ns = bpf_ktime_get_ns();
    e->kind = OOM_EXIT;
    e->pid = tid;
    e->tgid = bpf_get_current_pid_tgid() >> 32;
    e->cgroup = bpf_get_current_cgroup_id();
    e->uid = (u32)bpf_get_current_uid_gid();
    bpf_get_current_comm(e->comm, sizeof(e->comm));
    oom_events.ringbuf_submit(e, 0);
}
