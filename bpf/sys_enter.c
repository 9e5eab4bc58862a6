/* raw_syscalls:sys_enter: one program for every set that acts on a
 * syscall's entry.  It counts the syscall (syscalls.c), stamps read() and
 * write() (read_latency.c), and hands the arguments of the syscalls the
 * other sets want to them: the path of an open (file_opens.c), the peer
 * address buffer of an accept (tcp.c), execve()'s argv and exit_group()'s
 * code (processes.c).
 *
 * Why one raw program rather than each set's classic syscalls:sys_enter_*
 * tracepoint: measured here (tests/bench/hot_path_parts.py), any classic
 * syscall-entry program makes every syscall on the machine about 26 ns
 * dearer, whatever its number, and its own syscall about 100–110 ns more; an
 * empty raw one costs about 21 ns per syscall in all.
 *
 * The raw tracepoint's arguments are the task's saved user registers and
 * the syscall's number; a syscall's arguments are read from those registers
 * at ARG0_OFFSET, ARG1_OFFSET (the loader's, per architecture: the
 * registers' layout is the architecture's ABI, not a kernel version's).  A
 * 32-bit task's syscalls have other numbers (x86_64's open is ia32's fork):
 * the sets act only on a native one (NATIVE_CHECK_*, ebpftop/cdefs.py),
 * as the classic syscall tracepoints see only those. */

#if defined(EBPFTOP_SYSCALLS) || (defined(EBPFTOP_RAW_SYSCALL_ARGS) && \
    (defined(EBPFTOP_READ_LATENCY) || defined(EBPFTOP_FILE_OPENS) || defined(EBPFTOP_TCP) || defined(EBPFTOP_PROCESSES)))

#ifdef EBPFTOP_RAW_SYSCALL_ARGS
static inline u64 syscall_arg(struct bpf_raw_tracepoint_args *ctx, u32 offset)
{
    u64 value = 0;
    bpf_probe_read_kernel(&value, sizeof(value), (void *)ctx->args[0] + offset);
    return value;
}

static inline int native_syscall(struct bpf_raw_tracepoint_args *ctx)
{
    return (syscall_arg(ctx, NATIVE_CHECK_OFFSET) & NATIVE_CHECK_MASK) == NATIVE_CHECK_VALUE;
}
#endif

RAW_TRACEPOINT_PROBE(sys_enter)
{
    u64 nr = ctx->args[1];
#ifdef EBPFTOP_SYSCALLS
    syscalls_enter(nr); /* and read()'s and write()'s stamps, with the counter's comm and cgroup */
#elif defined(LATENCY_ENTRY_ON_RAW_SYS_ENTER)
    if (nr == NR_READ)
        latency_enter(OP_READ);
    else if (nr == NR_WRITE)
        latency_enter(OP_WRITE);
#endif
#ifdef EBPFTOP_RAW_SYSCALL_ARGS
#ifdef EBPFTOP_FILE_OPENS
    if ((nr == SYSNR_OPENAT || nr == SYSNR_OPENAT2) && native_syscall(ctx)) {
        opens_enter((const char *)syscall_arg(ctx, ARG1_OFFSET));
        return 0;
    }
#if SYSNR_OPEN >= 0
    if (nr == SYSNR_OPEN && native_syscall(ctx)) {
        opens_enter((const char *)syscall_arg(ctx, ARG0_OFFSET));
        return 0;
    }
#endif
#if SYSNR_CREAT >= 0
    if (nr == SYSNR_CREAT && native_syscall(ctx)) {
        opens_enter((const char *)syscall_arg(ctx, ARG0_OFFSET));
        return 0;
    }
#endif
#endif
#ifdef EBPFTOP_TCP
#if SYSNR_ACCEPT >= 0
    if (nr == SYSNR_ACCEPT && native_syscall(ctx)) {
        accept_enter((void *)syscall_arg(ctx, ARG1_OFFSET));
        return 0;
    }
#endif
    if (nr == SYSNR_ACCEPT4 && native_syscall(ctx)) {
        accept_enter((void *)syscall_arg(ctx, ARG1_OFFSET));
        return 0;
    }
#endif
#ifdef EBPFTOP_PROCESSES
    if (nr == SYSNR_EXECVE && native_syscall(ctx)) {
        processes_execve_enter((const char *const *)syscall_arg(ctx, ARG1_OFFSET));
        return 0;
    }
    if (nr == SYSNR_EXIT_GROUP && native_syscall(ctx)) {
        processes_exit_group_enter((int)syscall_arg(ctx, ARG0_OFFSET));
        return 0;
    }
#endif
#endif
    return 0;
}
#endif
