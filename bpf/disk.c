/* Disk I/O per process and per device (biotop, biolatency, biosnoop), from
 * block tracepoints only: no kernel struct is read.
 *
 * The hooks, and the context each runs in (measured on Linux 6.18):
 *
 * block:block_io_start (Linux >= 6.5): the request is made from its first
 *   bio, in the task that submitted the bio: the process for O_DIRECT and
 *   reads, the writeback kworker (wb_workfn) for buffered writes, jbd2 for
 *   ext4's journal, a loop device's worker for the loop's backing-file I/O.
 *   That task is the one charged, as biotop does.  Its bytes are the first
 *   bio's only (bios merged later are not in them): bytes are taken at the
 *   completion.  Without it (EBPFTOP_BLOCK_ON_ISSUE: older kernels, or the
 *   fallback forced), the start is taken at block:block_rq_issue, charged to
 *   the task that issued the request (the submitter without an I/O
 *   scheduler, kblockd with one), and no queued time is known.
 * block:block_rq_issue: the request goes to the driver.  Queued time =
 *   start -> issue; time on the device = issue -> complete.
 * block:block_rq_complete: the driver completed nr_bytes, in an interrupt
 *   or softirq (ksoftirqd, swapper, whatever task ran): the current task
 *   means nothing there, the submitter was kept at the start.  Not
 *   block_io_done, whose bytes are already 0 when it fires (measured).
 * block:block_rq_merge: a queued request was merged into another and will
 *   never complete on its own: its entry goes, its bytes complete with the
 *   one that took it.
 *
 * Key: the request's address (struct request *), a raw tracepoint's first
 * argument, used as a number, never dereferenced.  Raw tracepoints, because
 * a classic tracepoint program is skipped when it fires inside another
 * tracing program on that CPU (the kernel's recursion guard): completions
 * come in interrupts, and under ebpftop's own syscall programs a classic
 * block_rq_complete missed 11-15% of completions; the raw one none (each
 * raw program's guard is its own).  The address is unique while the
 * request is in flight, which (dev, sector) is not (a front merge moves the
 * sector, flushes share sector 0).
 *
 * The request's dev, sector and rwbs are only in the classic tracepoint's
 * record (the raw one would have to read struct request): at the start a
 * classic and a raw program run, one after the other, from the same
 * tracepoint call with preemption off, each leaving its half in a per-CPU
 * slot for the other; whichever runs second joins them (the order depends
 * on which was attached first, and --max-cpu may detach and attach them
 * again).  A half left more than DISK_PAIR_WINDOW_NS ago belongs to no one
 * (its other half was skipped): it is dropped and counted
 * (DISK_STAT_UNPAIRED); its I/O is still counted for its process, on
 * device 0:0.
 *
 * Constants (-D, from ebpftop/sets/disk.py): DISK_OP_*, DISK_HIST_*,
 * DISK_STAT_*, DISK_MINORBITS (the kernel's dev_t split, from the
 * format file's print fmt), DISK_RQ_ARG (block_rq_issue's and
 * block_rq_merge's raw arguments were (q, rq) before Linux 5.11: 1 there,
 * else 0; not tried on such a kernel here), map sizes.
 *
 * A limit of the pairing: should the program that runs first be skipped
 * (only a classic program can be, and only when the start fires inside
 * another tracing program on that CPU, which submitting I/O from task
 * context does not), the second would take the previous request's half
 * while it is within the window; not detected. */

struct disk_req {
    u64 start_ns;
    u64 issue_ns; /* 0 until block_rq_issue */
    u64 work_fn;  /* a kworker's: the work function it was running */
    u64 cgroup;
    u64 sector;
    u32 tgid;
    u32 tid;
    u32 major;
    u32 minor;
    u32 op;       /* DISK_OP_* */
    u32 pad;
    char comm[COMM_LEN];
};

/* The half of a start that came first (see above). */
struct disk_start_half {
    u64 at;       /* when: 0 for none */
    u64 rq;       /* the raw half: the request */
    u64 sector;   /* the classic half: */
    u32 dev;
    u32 op;
    u32 raw;      /* 1: the raw half is here, 0: the classic one */
    u32 pad;
};

/* Per (process, device, op class) in the interval: drained at each poll. */
struct disk_proc_key {
    u64 cgroup;
    u64 work_fn; /* 0 but for kworkers: their rows are split by work function */
    u32 tgid;
    u32 major;
    u32 minor;
    u32 op;
    char comm[COMM_LEN];
};

struct disk_proc_counts {
    u64 ops;
    u64 bytes;
    u64 latency_ns; /* sum, start -> complete */
    u64 errors;
};

/* Per device and op class: three log2 histograms of ns (total, queued, on
 * the device) in one flat value, so a completion costs one lookup. */
struct disk_hist_key {
    u32 major;
    u32 minor;
    u32 op;
    u32 pad;
};

struct disk_hist {
    u64 slots[3 * DISK_HIST_SLOTS];
    u64 sum_ns[3];
};

/* biosnoop: each I/O at or over the threshold. */
struct disk_slow_event {
    u64 ts_ns;      /* completion */
    u64 latency_ns;
    u64 queued_ns;  /* start -> issue; 0 if no issue was seen */
    u64 sector;
    u64 cgroup;
    u64 work_fn;
    u32 tgid;
    u32 tid;
    u32 major;
    u32 minor;
    u32 bytes;
    u32 op;
    s32 error;      /* blk_status_t: 0 ok, else BLK_STS_* */
    u32 pad;
    char comm[COMM_LEN];
};

BPF_HASH(disk_reqs, u64, struct disk_req, DISK_INFLIGHT_MAP_SIZE);
BPF_PERCPU_ARRAY(disk_half, struct disk_start_half, 1);
/* per-CPU values: a completion adds without atomic instructions; user
 * space sums the CPUs' copies (BPF_TABLE: BCC 0.18 has no BPF_PERCPU_HASH) */
BPF_TABLE("percpu_hash", struct disk_proc_key, struct disk_proc_counts, disk_procs, DISK_PROC_MAP_SIZE);
BPF_TABLE("percpu_hash", struct disk_hist_key, struct disk_hist, disk_hists, DISK_HIST_MAP_SIZE);
BPF_ARRAY(disk_hist_zero, struct disk_hist, 1); /* to make entries from: too big for the stack */
BPF_RINGBUF_OUTPUT(disk_slow, DISK_SLOW_RING_PAGES);
/* slot 0: the slow-I/O threshold in ns, set by user space (a key changes
 * it without a recompile) */
BPF_ARRAY(disk_slow_threshold, u64, 1);
BPF_PERCPU_ARRAY(disk_stats, u64, DISK_STAT_SLOTS);

static inline void disk_stat(u32 slot)
{
    u64 *n = disk_stats.lookup(&slot);
    if (n)
        *n += 1;
}

/* A kworker's comm says nothing of what it does: an unbound pool's workers
 * run the writeback (wb_workfn), a loop device's backing I/O, ext4's
 * conversions... one after the other, and /proc's "kworker/u8:3-loop0"
 * names only the last workqueue.  The work function, from
 * workqueue:workqueue_execute_start (classic: the raw one's only argument is
 * the work item, whose function is in struct work_struct), tells them
 * apart; user space names it.  Keyed by thread id; the next item's start
 * overwrites it; the LRU forgets dead workers; only a "kworker/" comm is
 * looked up, so a reused tid is never mistaken. */
BPF_TABLE("lru_hash", u32, u64, disk_kworker_fn, 1024);

TRACEPOINT_PROBE(workqueue, workqueue_execute_start)
{
    u32 tid = (u32)bpf_get_current_pid_tgid();
    u64 fn = (u64)args->function;
    /* a worker mostly runs the same function again: an LRU update (~300 ns
     * here) only when it changed */
    u64 *cur = disk_kworker_fn.lookup(&tid);
    if (cur) {
        if (*cur != fn)
            *cur = fn;
    } else {
        disk_kworker_fn.update(&tid, &fn);
    }
    return 0;
}

static inline u64 disk_work_fn(const char *comm, u32 tid)
{
    if (comm[0] != 'k' || comm[1] != 'w' || comm[2] != 'o' || comm[3] != 'r' || comm[4] != 'k' ||
        comm[5] != 'e' || comm[6] != 'r' || comm[7] != '/')
        return 0;
    u64 *fn = disk_kworker_fn.lookup(&tid);
    return fn ? *fn : 0;
}

/* rwbs (blk_fill_rwbs): an optional 'F' (REQ_PREFLUSH), then the op: 'W',
 * 'R', 'D' (discard), 'F' (flush), 'N' (anything else), then flags.  A lone
 * "F" is a flush.  Two letters passed, not a pointer: the verifier takes a
 * tracepoint's context read at constant offsets only. */
static inline u32 disk_op(char c, char d)
{
    if (c == 'F' && (d == 'W' || d == 'R' || d == 'D' || d == 'N' || d == 'F'))
        c = d;
    switch (c) {
    case 'R':
        return DISK_OP_READ;
    case 'W':
        return DISK_OP_WRITE;
    case 'D':
        return DISK_OP_DISCARD;
    case 'F':
        return DISK_OP_FLUSH;
    default:
        return DISK_OP_OTHER;
    }
}

static inline u32 disk_slot(u64 ns)
{
    u32 slot = bpf_log2l(ns);
    return slot < DISK_HIST_SLOTS ? slot : DISK_HIST_SLOTS - 1;
}

static inline void disk_set_dev(struct disk_req *req, u32 dev, u64 sector, u32 op)
{
    req->major = dev >> DISK_MINORBITS;
    req->minor = dev & ((1U << DISK_MINORBITS) - 1);
    req->sector = sector;
    req->op = op;
}

/* The classic half of a start: dev, sector, op. */
static inline void disk_start_classic(u32 dev, u64 sector, u32 op)
{
    u32 zero = 0;
    struct disk_start_half *h = disk_half.lookup(&zero);
    if (!h)
        return;
    u64 now = bpf_ktime_get_ns();
    if (h->at && h->raw && now - h->at < DISK_PAIR_WINDOW_NS) {
        u64 rq = h->rq;
        struct disk_req *req = disk_reqs.lookup(&rq);
        if (req)
            disk_set_dev(req, dev, sector, op);
        h->at = 0;
        return;
    }
    if (h->at)
        disk_stat(DISK_STAT_UNPAIRED);
    h->at = now;
    h->raw = 0;
    h->dev = dev;
    h->sector = sector;
    h->op = op;
}

/* The raw half of a start: the request, and the task to charge. */
static inline void disk_start_raw(u64 rq)
{
    struct disk_req req = {};
    u64 now = bpf_ktime_get_ns();
    req.start_ns = now;
    req.op = DISK_OP_OTHER;
    u64 id = bpf_get_current_pid_tgid();
    req.tgid = id >> 32;
    req.tid = (u32)id;
    req.cgroup = bpf_get_current_cgroup_id();
    bpf_get_current_comm(req.comm, sizeof(req.comm));
    req.work_fn = disk_work_fn(req.comm, req.tid);
    u32 zero = 0;
    struct disk_start_half *h = disk_half.lookup(&zero);
    if (h) {
        if (h->at && !h->raw && now - h->at < DISK_PAIR_WINDOW_NS) {
            disk_set_dev(&req, h->dev, h->sector, h->op);
            h->at = 0;
        } else {
            if (h->at)
                disk_stat(DISK_STAT_UNPAIRED);
            h->at = now;
            h->raw = 1;
            h->rq = rq;
        }
    }
    /* an entry already there: a request whose completion was not seen, its
     * memory now reused */
    int err = disk_reqs.insert(&rq, &req);
    if (err == -17) { /* EEXIST */
        disk_stat(DISK_STAT_OVERWRITTEN);
        err = disk_reqs.update(&rq, &req);
    }
    if (err)
        count_lost(LOST_DISK); /* full */
}

#ifdef EBPFTOP_BLOCK_ON_ISSUE
TRACEPOINT_PROBE(block, block_rq_issue)
{
    disk_start_classic(args->dev, args->sector, disk_op(args->rwbs[0], args->rwbs[1]));
    return 0;
}

RAW_TRACEPOINT_PROBE(block_rq_issue)
{
    disk_start_raw(ctx->args[DISK_RQ_ARG]);
    return 0;
}
#else
TRACEPOINT_PROBE(block, block_io_start)
{
    disk_start_classic(args->dev, args->sector, disk_op(args->rwbs[0], args->rwbs[1]));
    return 0;
}

RAW_TRACEPOINT_PROBE(block_io_start)
{
    disk_start_raw(ctx->args[0]);
    return 0;
}

RAW_TRACEPOINT_PROBE(block_rq_issue)
{
    u64 rq = ctx->args[DISK_RQ_ARG];
    struct disk_req *req = disk_reqs.lookup(&rq);
    if (req)
        req->issue_ns = bpf_ktime_get_ns(); /* a requeued request: its last issue */
    return 0;
}
#endif

RAW_TRACEPOINT_PROBE(block_rq_merge)
{
    u64 rq = ctx->args[DISK_RQ_ARG]; /* the request merged away */
    disk_reqs.delete(&rq);
    return 0;
}

static inline void disk_hist_add(struct disk_hist_key *k, u64 total, u64 queued, u64 device, int split)
{
    struct disk_hist *h = disk_hists.lookup(k);
    if (!h) {
        u32 zero = 0;
        struct disk_hist *z = disk_hist_zero.lookup(&zero);
        if (!z)
            return;
        h = disk_hists.lookup_or_try_init(k, z);
        if (!h) {
            count_lost(LOST_DISK);
            return;
        }
    }
    h->slots[DISK_HIST_TOTAL * DISK_HIST_SLOTS + disk_slot(total)] += 1;
    h->sum_ns[DISK_HIST_TOTAL] += total;
    if (split) {
        h->slots[DISK_HIST_QUEUED * DISK_HIST_SLOTS + disk_slot(queued)] += 1;
        h->slots[DISK_HIST_DEVICE * DISK_HIST_SLOTS + disk_slot(device)] += 1;
        h->sum_ns[DISK_HIST_QUEUED] += queued;
        h->sum_ns[DISK_HIST_DEVICE] += device;
    }
}

/* (struct request *rq, blk_status_t error, unsigned int nr_bytes): a
 * partial completion counts as an operation of its own, and the request's
 * last part finds no entry (DISK_STAT_UNMATCHED, like the flush machinery's
 * own requests, which have no start). */
RAW_TRACEPOINT_PROBE(block_rq_complete)
{
    u64 now = bpf_ktime_get_ns();
    u64 rq = ctx->args[0];
    s32 error = (u8)ctx->args[1];
    u32 bytes = (u32)ctx->args[2];
    struct disk_req *req = disk_reqs.lookup(&rq);
    if (!req) {
        disk_stat(DISK_STAT_UNMATCHED);
        return 0;
    }
    struct disk_proc_key pk = {};
    pk.major = req->major;
    pk.minor = req->minor;
    pk.op = req->op;
    pk.tgid = req->tgid;
    pk.cgroup = req->cgroup;
    pk.work_fn = req->work_fn;
    __builtin_memcpy(pk.comm, req->comm, COMM_LEN);
    u64 latency = now - req->start_ns;
    u64 queued = 0, device = 0;
    int issued = req->issue_ns != 0;
    if (issued) {
        queued = req->issue_ns - req->start_ns;
        device = now - req->issue_ns;
    }
    u64 sector = req->sector;
    u32 tid = req->tid;
    disk_reqs.delete(&rq);

    struct disk_proc_counts init = {};
    struct disk_proc_counts *c = disk_procs.lookup_or_try_init(&pk, &init);
    if (c) {
        c->ops += 1;
        c->bytes += bytes;
        c->latency_ns += latency;
        if (error)
            c->errors += 1;
    } else {
        count_lost(LOST_DISK);
    }
    struct disk_hist_key hk = {.major = pk.major, .minor = pk.minor, .op = pk.op};
    disk_hist_add(&hk, latency, queued, device, issued);

    u32 zero = 0;
    u64 *threshold = disk_slow_threshold.lookup(&zero);
    if (!threshold || latency < *threshold)
        return 0;
    struct disk_slow_event *e = disk_slow.ringbuf_reserve(sizeof(*e));
    if (!e) {
        count_lost(LOST_DISK_SLOW);
        return 0;
    }
    e->ts_ns = now;
    e->latency_ns = latency;
    e->queued_ns = queued;
    e->sector = sector;
    e->cgroup = pk.cgroup;
    e->work_fn = pk.work_fn;
    e->tgid = pk.tgid;
    e->tid = tid;
    e->major = pk.major;
    e->minor = pk.minor;
    e->bytes = bytes;
    e->op = pk.op;
    e->error = error;
    e->pad = 0;
    __builtin_memcpy(e->comm, pk.comm, COMM_LEN);
    disk_slow.ringbuf_submit(e, 0);
    return 0;
}
