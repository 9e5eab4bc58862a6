/* File opens: per (tgid, comm, path) the number of opens and of failed opens,
 * from open/openat/openat2.  The path pointer is stashed at entry and the
 * string read at exit, when the kernel has just read it (so its page is
 * resident) and the result is known. */

struct open_key {
    u32 tgid;
    u32 truncated; /* 1: the path was longer than PATH_LEN - 1; 2: unreadable */
    char comm[COMM_LEN];
    char path[PATH_LEN];
};

struct open_counts {
    u64 count;
    u64 errors;
};

BPF_HASH(file_opens, struct open_key, struct open_counts, FILE_OPENS_MAP_SIZE);
/* The key is too big for the 512-byte BPF stack: build it in a per-CPU slot. */
BPF_PERCPU_ARRAY(open_key_scratch, struct open_key, 1);

static inline void opens_enter(const char *filename)
{
    struct task_scratch *s = scratch_get(1);
    if (s)
        s->open_filename = (u64)filename;
}

static inline void opens_exit(long ret)
{
    struct task_scratch *s = scratch_get(0);
    if (!s || !s->open_filename)
        return;
    const char *filename = (const char *)s->open_filename;
    s->open_filename = 0;

    u32 zero = 0;
    struct open_key *key = open_key_scratch.lookup(&zero);
    if (!key)
        return;
    /* Hash keys compare every byte: clear what the last path left behind. */
    __builtin_memset(key, 0, sizeof(*key));
    key->tgid = bpf_get_current_pid_tgid() >> 32;
    bpf_get_current_comm(key->comm, sizeof(key->comm));
    int n = bpf_probe_read_user_str(key->path, sizeof(key->path), filename);
    if (n < 0) {
        key->truncated = 2;
    } else if (n == sizeof(key->path)) {
        /* The buffer is full: the path was cut unless it ends exactly here. */
        char last = 0;
        bpf_probe_read_user(&last, 1, filename + PATH_LEN - 1);
        if (last)
            key->truncated = 1;
    }
    struct open_counts init = {};
    struct open_counts *counts = file_opens.lookup_or_try_init(key, &init);
    if (!counts) {
        count_lost(LOST_FILE_OPENS);
        return;
    }
    __sync_fetch_and_add(&counts->count, 1);
    if (ret < 0)
        __sync_fetch_and_add(&counts->errors, 1);
}

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

#ifdef EBPFTOP_HAVE_OPENAT2
TRACEPOINT_PROBE(syscalls, sys_exit_openat2)
{
    opens_exit(args->ret);
    return 0;
}
#endif
