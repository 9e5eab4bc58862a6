/* File opens: per (tgid, comm, path) the number of opens and of failed opens,
 * from open/openat/openat2/creat.  The path pointer is stashed at entry and the
 * string read at exit, when the kernel has just read it (so its page is
 * resident) and the result is known. */

/* Counts are keyed by a 64-bit FNV-1a hash of the path, not the path: a
 * 32-byte key instead of a 280-byte one that would have to be zeroed and
 * hashed on every open.  Each path is stored once, in an LRU map that user
 * space reads when it meets a hash it has not seen. */
struct open_key {
    u64 path_hash;
    u64 cgroup;
    u32 tgid;
    u32 flags; /* PATH_CUT: longer than PATH_LEN - 1; PATH_UNREADABLE */
    char comm[COMM_LEN];
};

struct open_counts {
    u64 count;
    u64 errors;
};

struct open_path {
    char path[PATH_LEN];
};

BPF_HASH(file_opens, struct open_key, struct open_counts, FILE_OPENS_MAP_SIZE);

/* Sensitive-file alerts: FNV-1a hashes of watched paths, and of watched
 * directories with their trailing '/' (which match every file directly in
 * them).  User space fills it.  Each open that matches, successful or not,
 * becomes an event; a full ring buffer is counted, never silent. */
BPF_HASH(watched_paths, u64, u8, 4096);

struct alert_event {
    u64 ts_ns;
    u32 pid;
    u32 ppid; /* 0: forked before ebpftop started (user space reads /proc then) */
    u32 uid;
    u32 pad;
    u64 cgroup;
    s64 ret; /* the fd, or -errno */
    char comm[COMM_LEN];
    char path[PATH_LEN];
};

BPF_RINGBUF_OUTPUT(alert_events, 16); /* 64 KiB: about 220 alerts between two reads */

/* Twice the rows: the kernel's LRU evicts in batches, before it is full, so
 * an LRU only as large as the rows could drop the path of a counted row. */
BPF_TABLE("lru_hash", u64, struct open_path, open_paths, 2 * FILE_OPENS_MAP_SIZE);
/* The path is too big for the 512-byte BPF stack: read it into a per-CPU slot. */
BPF_PERCPU_ARRAY(open_path_scratch, struct open_path, 1);

static inline void opens_enter(const char *filename)
{
    struct task_scratch *s = scratch_get(1, LOST_FILE_OPENS);
    if (s)
        s->open_filename = (u64)filename;
}

static inline void opens_exit(long ret)
{
    struct task_scratch *s = scratch_get(0, LOST_FILE_OPENS);
    if (!s || !s->open_filename)
        return;
    const char *filename = (const char *)s->open_filename;
    s->open_filename = 0;

    u32 zero = 0;
    struct open_path *buf = open_path_scratch.lookup(&zero);
    if (!buf)
        return;
    struct open_key key = {};
    key.tgid = bpf_get_current_pid_tgid() >> 32;
    key.cgroup = bpf_get_current_cgroup_id();
    bpf_get_current_comm(key.comm, sizeof(key.comm));
    int n = bpf_probe_read_user_str(buf->path, sizeof(buf->path), filename);
    if (n < 0) {
        key.flags = PATH_UNREADABLE;
        buf->path[0] = 0;
    } else {
        if (n == sizeof(buf->path)) {
            /* The buffer is full: the path was cut unless it ends exactly here. */
            char last = 0;
            bpf_probe_read_user(&last, 1, filename + PATH_LEN - 1);
            if (last)
                key.flags = PATH_CUT;
        }
        u64 h = 14695981039346656037ULL;
        u64 dir_h = 0; /* the hash of the path up to and including its last '/' */
#pragma clang loop unroll(disable)
        for (int i = 0; i < PATH_LEN - 1; i++) {
            if (i >= n - 1)
                break;
            /* the mask (PATH_LEN is a power of two) lets the verifier see
             * the index in bounds whatever clang does to the loop */
            u8 c = buf->path[i & (PATH_LEN - 1)];
            h ^= c;
            h *= 1099511628211ULL;
            if (c == '/')
                dir_h = h;
        }
        key.path_hash = h;
        if (key.flags == 0 && (watched_paths.lookup(&h) || (dir_h && watched_paths.lookup(&dir_h)))) {
            struct alert_event *a = alert_events.ringbuf_reserve(sizeof(struct alert_event));
            if (a) {
                a->ts_ns = bpf_ktime_get_ns();
                a->pid = key.tgid;
                u32 *parent = parent_of.lookup(&key.tgid);
                a->ppid = parent ? *parent : 0;
                a->uid = (u32)bpf_get_current_uid_gid();
                a->cgroup = key.cgroup;
                a->ret = ret;
                __builtin_memcpy(a->comm, key.comm, COMM_LEN);
                bpf_probe_read_kernel_str(a->path, sizeof(a->path), buf->path);
                alert_events.ringbuf_submit(a, 0);
            } else {
                count_lost(LOST_ALERTS);
            }
        }
    }
    struct open_counts *counts = file_opens.lookup(&key);
    if (!counts) {
        /* First open of this (process, path) in the interval.  The path is
         * stored only once the row exists: a dropped open must not evict
         * the paths of counted rows from the LRU. */
        struct open_counts init = {};
        counts = file_opens.lookup_or_try_init(&key, &init);
        if (!counts) {
            count_lost(LOST_FILE_OPENS);
            return;
        }
        open_paths.update(&key.path_hash, buf);
    }
    __sync_fetch_and_add(&counts->count, 1);
    if (ret < 0)
        __sync_fetch_and_add(&counts->errors, 1);
}

/* The entries' classic tracepoints, where sys_enter.c cannot read the
 * arguments itself (it calls opens_enter() then). */
#ifndef EBPFTOP_RAW_SYSCALL_ARGS
#ifdef EBPFTOP_HAVE_OPEN
TRACEPOINT_PROBE(syscalls, sys_enter_open)
{
    opens_enter(args->filename);
    return 0;
}
#endif

TRACEPOINT_PROBE(syscalls, sys_enter_openat)
{
    opens_enter(args->filename);
    return 0;
}

#ifdef EBPFTOP_HAVE_OPENAT2
TRACEPOINT_PROBE(syscalls, sys_enter_openat2)
{
    opens_enter(args->filename);
    return 0;
}
#endif
#endif

#ifdef EBPFTOP_HAVE_OPEN
TRACEPOINT_PROBE(syscalls, sys_exit_open)
{
    opens_exit(args->ret);
    return 0;
}
#endif

TRACEPOINT_PROBE(syscalls, sys_exit_openat)
{
    opens_exit(args->ret);
    return 0;
}

#ifdef EBPFTOP_HAVE_CREAT
/* creat(path, mode) is open(path, O_CREAT|O_WRONLY|O_TRUNC, mode) */
#ifndef EBPFTOP_RAW_SYSCALL_ARGS
TRACEPOINT_PROBE(syscalls, sys_enter_creat)
{
    opens_enter(args->pathname);
    return 0;
}
#endif

TRACEPOINT_PROBE(syscalls, sys_exit_creat)
{
    opens_exit(args->ret);
    return 0;
}
#endif

#ifdef EBPFTOP_HAVE_OPENAT2
TRACEPOINT_PROBE(syscalls, sys_exit_openat2)
{
    opens_exit(args->ret);
    return 0;
}
#endif
