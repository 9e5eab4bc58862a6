/* The CPU profile: what code is on the CPU, sampled with its stacks.
 *
 * Hook: the perf software event cpu-clock on every online CPU, at
 * PROFILE_HZ samples a second per CPU (user space opens it: sets/profile.py,
 * --profile-hz).  A software event because hardware ones are often missing
 * (VMs, this one included); BCC's profile.py falls back to the same.
 *
 * Each sample goes to user space whole through a ring buffer: its process,
 * thread name, cgroup, and the addresses of its user and kernel stacks
 * (bpf_get_stack), only the frames there are.  User space counts identical
 * samples and names their addresses at each poll.  Not a stack map
 * (get_stackid), which keeps each distinct stack in a hash bucket: when two
 * stacks fall in the same bucket the second is lost (-EEXIST), and under a
 * compile that lost 567 of 2,971 samples' stacks (19%) with 4,096 buckets.
 * A ring buffer loses nothing unless it is full, and that is counted in
 * lost.profile.  At 49 Hz a sample is a few hundred bytes, 49 times a
 * second per CPU: user space reads the ring every half second.
 *
 * A stack bpf_get_stack cannot give is a negative length, kept and sent:
 *   -EFAULT  no such stack: a kernel thread has no user stack, a sample
 *            taken in user mode has no kernel frames (normal), or the user
 *            stack could not be walked
 * user space turns it into a frame that says so.  Samples of the idle task
 * (pid 0) are counted, not sent.
 *
 * Cost: two stack walks and the copy of their frames; `make bench` prints
 * the share of a CPU it takes. */

#include <uapi/linux/bpf_perf_event.h>

/* PROFILE_STACK_DEPTH and PROFILE_RING_PAGES come from ebpftop/sets/profile.py (-D). */

#define PROFILE_STACK_BYTES (PROFILE_STACK_DEPTH * sizeof(u64))
#define PROFILE_LENGTH_MASK 0x3ff
_Static_assert(PROFILE_STACK_BYTES <= PROFILE_LENGTH_MASK, "a stack's bytes must fit the length mask");

struct profile_sample {
    u64 cgroup;
    u32 tgid;
    s32 user_bytes;   /* bytes of user frames in ips[], or -errno */
    s32 kernel_bytes; /* bytes of kernel frames after them, or -errno */
    u32 pad;
    char comm[COMM_LEN];
    /* innermost first: the user frames, then the kernel's; room for two
     * lengths of PROFILE_LENGTH_MASK, so the masked lengths below fit */
    u64 ips[2 * (PROFILE_LENGTH_MASK + 1) / 8];
};

BPF_PERCPU_ARRAY(profile_scratch, struct profile_sample, 1); /* 2 KiB: more than a program's stack */
BPF_RINGBUF_OUTPUT(profile_events, PROFILE_RING_PAGES);
BPF_PERCPU_ARRAY(profile_idle, u64, 1);

int profile_sample(struct bpf_perf_event_data *ctx)
{
    u64 pid_tgid = bpf_get_current_pid_tgid();
    u32 zero = 0;
    if ((u32)pid_tgid == 0) {
        u64 *idle = profile_idle.lookup(&zero);
        if (idle)
            *idle += 1;
        return 0;
    }
    struct profile_sample *s = profile_scratch.lookup(&zero);
    if (!s)
        return 0;
    s->cgroup = bpf_get_current_cgroup_id();
    s->tgid = pid_tgid >> 32;
    bpf_get_current_comm(s->comm, sizeof(s->comm));
    long user = bpf_get_stack(ctx, s->ips, PROFILE_STACK_BYTES, BPF_F_USER_STACK);
    s->user_bytes = user;
    /* the lengths are at most PROFILE_STACK_BYTES; the masks change nothing
     * but let the verifier see it (a compare alone was compiled away) */
    u64 at = (user > 0 ? user : 0) & PROFILE_LENGTH_MASK;
    long kernel = bpf_get_stack(ctx, (u8 *)s->ips + at, PROFILE_STACK_BYTES, 0);
    s->kernel_bytes = kernel;
    u64 more = (kernel > 0 ? kernel : 0) & PROFILE_LENGTH_MASK;
    /* only the frames there are: a few hundred bytes, not the 2 KiB of ips[] */
    if (profile_events.ringbuf_output(s, offsetof(struct profile_sample, ips) + at + more, 0) != 0)
        count_lost(LOST_PROFILE);
    return 0;
}
