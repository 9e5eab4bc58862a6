/* Shared definitions for every ebpftop probe set.
 *
 * The probe sets (one .c per pane) are concatenated after this header into one
 * BCC module, so that there is one clang compile at start-up and one program
 * per kernel hook.  Each pane's code is guarded by EBPFTOP_<PANE>, defined by
 * the loader for the panes that are enabled.
 *
 * Never read kernel structs here: the headers BCC compiles against may come
 * from another kernel version.  Data comes from tracepoint arguments (whose
 * layout BCC reads from tracefs at run time), helpers, and user memory.
 */
#ifndef EBPFTOP_H
#define EBPFTOP_H

#include <uapi/linux/ptrace.h>

#define COMM_LEN 16

/* With the syscalls pane on, read()'s and write()'s entries are stamped by its
 * raw sys_enter program (NR_READ and NR_WRITE are their numbers on this
 * architecture, -1 if unknown). */
#if defined(EBPFTOP_SYSCALLS) && defined(EBPFTOP_READ_LATENCY) && NR_READ >= 0 && NR_WRITE >= 0
#define LATENCY_ENTRY_ON_RAW_SYS_ENTER

#endif
#define PATH_LEN 256 /* longer paths are cut here and flagged as truncated */

/* Indexes of the loss counters, one per pane (mirrored in ebpftop/sources/live.py). */
#define LOST_SYSCALLS 0
#define LOST_READ_LATENCY 1
#define LOST_FILE_OPENS 2
#define LOST_PAGE_FAULTS 3
#define LOST_TCP 4
#define LOST_ALERTS 5
#define LOST_PROCESSES 6
#define LOST_UDP 7
#define LOST_SLOTS 8

/* Events that could not be recorded (a map was full, the ring buffer overran). */
BPF_PERCPU_ARRAY(lost, u64, LOST_SLOTS);

static inline void count_lost_n(u32 pane, u64 events)
{
    u64 *n = lost.lookup(&pane);
    if (n)
        *n += events;
}

static inline void count_lost(u32 pane)
{
    count_lost_n(pane, 1);
}

/* A per-thread counter: the hot path looks a thread up by its tid (a small
 * integer key) and reads the comm only once, when the thread is first seen in
 * the interval.  When the comm changes (exec, prctl) or the thread exits, the
 * count is folded into a (comm, tgid)-keyed map, so every event is charged to
 * the name the thread had when it made it. */
struct thread_count {
    u64 count;
    u32 tgid;
    char comm[COMM_LEN];
};

struct comm_pid_key {
    char comm[COMM_LEN];
    u32 tgid;
};

/* Per-thread scratch space, for state carried from a syscall's entry to its
 * exit.  Where BCC and the kernel have it (EBPFTOP_TASK_STORAGE: BCC >= 0.24,
 * Linux >= 5.13), task-local storage: cheaper than a hash map, and freed with
 * the task.  Elsewhere a hash map keyed by thread id, whose entry
 * lifecycle.c deletes when the thread exits; a full map is counted as lost
 * for the pane that wanted the space. */
struct task_scratch {
    u64 latency_start_ns; /* entry of the read() or write() in progress */
    u32 latency_op;       /* which of the two */
    u32 pad;
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
