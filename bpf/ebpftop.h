/* Shared definitions for every ebpftop probe set.
 *
 * Each probe set is one bpf/NAME.c beside its user side, ebpftop/sets/NAME.py.
 * The enabled sets' files are concatenated after this header into one BCC
 * module, so that there is one clang compile at start-up and one program per
 * kernel hook; the loader defines EBPFTOP_<SET> for each enabled set.
 *
 * Never read kernel structs here: the headers BCC compiles against may come
 * from another kernel version.  Data comes from tracepoint arguments (whose
 * layout BCC reads from tracefs at run time), helpers, and user memory.
 */
#ifndef EBPFTOP_H
#define EBPFTOP_H

#include <uapi/linux/ptrace.h>

/* Syscall entries are taken on raw_syscalls:sys_enter (sys_enter.c), one
 * program for every set: a classic syscalls:sys_enter_* program costs every
 * syscall on the machine about 26 ns more, whatever its number
 * (tests/bench/hot_path_parts.py), and about 100–110 ns on its own syscall.
 * EBPFTOP_RAW_SYSCALL_ARGS: the loader knows this architecture's syscall
 * numbers and where pt_regs keeps the arguments (ARG0_OFFSET, ARG1_OFFSET);
 * elsewhere the sets keep their classic syscalls:sys_enter_* programs.
 * read()'s and write()'s entries are stamped there too, NR_READ and NR_WRITE
 * being their numbers (-1 if unknown). */
#if (defined(EBPFTOP_SYSCALLS) || defined(EBPFTOP_RAW_SYSCALL_ARGS)) && defined(EBPFTOP_READ_LATENCY) && \
    NR_READ >= 0 && NR_WRITE >= 0
#define LATENCY_ENTRY_ON_RAW_SYS_ENTER
#endif

/* COMM_LEN, PATH_LEN and the other constants C and Python share come from
 * ebpftop/cdefs.py as -D flags; the loss counters' slots (LOST_<SET>,
 * LOST_SLOTS) and the map sizes from ebpftop/sets/__init__.py. */

/* Constants from the UAPI, spelled out: no kernel header is included. */
#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6
#define TCP_ESTABLISHED 1
#define TCP_SYN_SENT 2
#define TCP_SYN_RECV 3
#define TCP_CLOSE 7
#define SOCK_MSG_PEEK 2

/* sock:inet_sock_set_state of a TCP socket, as sock_hooks.c hands it to each
 * probe set that wants it (addresses: IPv4 in the first 4 bytes). */
struct tcp_state_change {
    u64 sk;
    int oldstate;
    int newstate;
    u16 family;
    u16 sport;
    u16 dport;
    u8 saddr[16];
    u8 daddr[16];
};

/* A keyed log2 histogram family: per (cgroup, comm, tgid, series) the count
 * of durations in each log2 slot and their exact sum (for means and
 * Prometheus' _sum).  A set declares its map with HIST_MAP and counts with
 * hist_key_of() + hist_count(); user space drains every such map the same
 * way (ebpftop/sets/base.py: Histograms, hist_parts).  (A helper that took
 * the map itself cannot be written: BCC refuses map calls inside macros.) */
struct hist_key {
    u64 cgroup;
    char comm[COMM_LEN];
    u32 tgid;
    u16 slot;   /* bpf_log2l(ns): slot k holds [2^(k-1), 2^k), slot 0 holds 0 */
    u16 series; /* which of the set's histograms (read() or write(), say) */
};

struct hist_value {
    u64 count;
    u64 sum_ns;
};

#define HIST_MAP(name, entries) BPF_HASH(name, struct hist_key, struct hist_value, entries)

/* The key of a duration of the current task: its tgid, cgroup and comm. */
static inline struct hist_key hist_key_of(u64 ns, u16 series)
{
    struct hist_key key = {};
    key.slot = bpf_log2l(ns);
    key.series = series;
    key.tgid = bpf_get_current_pid_tgid() >> 32;
    key.cgroup = bpf_get_current_cgroup_id();
    bpf_get_current_comm(key.comm, sizeof(key.comm));
    return key;
}

static inline void hist_count(struct hist_value *v, u64 ns)
{
    __sync_fetch_and_add(&v->count, 1);
    __sync_fetch_and_add(&v->sum_ns, ns);
}

/* A duration that stands for `weight` calls (1 timed in `weight`). */
static inline void hist_count_weighted(struct hist_value *v, u64 ns, u32 weight)
{
    __sync_fetch_and_add(&v->count, weight);
    __sync_fetch_and_add(&v->sum_ns, ns * weight);
}

/* Events that could not be recorded (a map was full, the ring buffer overran). */
BPF_PERCPU_ARRAY(lost, u64, LOST_SLOTS);

static inline void count_lost_n(u32 slot, u64 events)
{
    u64 *n = lost.lookup(&slot);
    if (n)
        *n += events;
}

static inline void count_lost(u32 slot)
{
    count_lost_n(slot, 1);
}

/* A per-thread counter: the hot path looks a thread up by its tid (a small
 * integer key) and reads the comm and the cgroup only once, when the thread is
 * first seen in the interval.  When the comm changes (exec, prctl), the
 * thread moves to another cgroup (a container's runtime puts it there) or it
 * exits, the count is folded into a (cgroup, comm, tgid)-keyed map, so every
 * event is charged to the name and the container the thread had when it made
 * it. */
struct thread_count {
    u64 count;
    u64 cgroup; /* cgroup v2 id (the inode number of its directory) */
    u32 tgid;
    char comm[COMM_LEN];
};

struct comm_pid_key {
    u64 cgroup;
    char comm[COMM_LEN];
    u32 tgid;
    u32 pad; /* zero: a key's every byte is hashed */
};

/* Per-thread scratch space, for state carried from a syscall's entry to its
 * exit.  Where BCC and the kernel have it (EBPFTOP_TASK_STORAGE: BCC >= 0.24,
 * Linux >= 5.13), task-local storage: cheaper than a hash map, and freed with
 * the task.  Elsewhere a hash map keyed by thread id, whose entry
 * lifecycle.c deletes when the thread exits; a full map is counted as lost
 * for the set that wanted the space. */
struct task_scratch {
    u64 latency_start_ns; /* entry of the read() or write() in progress */
    u32 latency_op;       /* which of the two */
    u32 latency_who_known; /* the next two are set (the raw sys_enter had them at hand) */
    u64 latency_cgroup;    /* the caller's cgroup and comm at the entry */
    char latency_comm[COMM_LEN];
    u32 latency_weight;    /* how many calls the timed one stands for (--max-cpu's sampling) */
    u32 latency_pad;
    u64 open_filename;  /* user pointer to the path being opened */
    u64 accept_sockaddr; /* user pointer to accept()'s peer address buffer */
};

#ifdef EBPFTOP_TASK_STORAGE
BPF_TASK_STORAGE(task_scratch, struct task_scratch);

static inline struct task_scratch *scratch_get(int create, u32 lost_slot)
{
    struct task_scratch *s = task_scratch.task_storage_get(bpf_get_current_task_btf(), 0,
                                                           create ? BPF_LOCAL_STORAGE_GET_F_CREATE : 0);
    if (!s && create)
        count_lost(lost_slot);
    return s;
}
#else
BPF_HASH(task_scratch, u32, struct task_scratch, PER_THREAD_MAP_SIZE);

static inline struct task_scratch *scratch_get(int create, u32 lost_slot)
{
    u32 tid = (u32)bpf_get_current_pid_tgid();
    struct task_scratch *s = task_scratch.lookup(&tid);
    if (s || !create)
        return s;
    struct task_scratch zero = {};
    s = task_scratch.lookup_or_try_init(&tid, &zero);
    if (!s)
        count_lost(lost_slot);
    return s;
}
#endif

#if defined(EBPFTOP_FILE_OPENS) || defined(EBPFTOP_PROCESSES)
/* Each process's parent, recorded when it forks (lifecycle.c): alerts and
 * exec rows name the parent even when the process is gone by the time user
 * space reads them. */
BPF_TABLE("lru_hash", u32, u32, parent_of, 65536);
#endif

#endif
