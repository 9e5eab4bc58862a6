/* New cgroups on the cgroup v2 hierarchy (the one bpf_get_current_cgroup_id()
 * reads): their id and path, streamed to user space as they are made.
 *
 * Why: rows carry only a cgroup id, which user space turns into a path by
 * finding the directory whose inode number it is.  A container that runs and
 * exits within one interval has its directory removed before the poll; its
 * path, learnt here when the runtime made it, still names it.  Cgroups made
 * before ebpftop started are found by walking the cgroup v2 mount instead.
 * A full ring buffer loses only that head start (the walk still finds the
 * cgroups that are alive at the poll). */

struct cgroup_event {
    u64 id;
    char path[PATH_LEN];
};

BPF_RINGBUF_OUTPUT(cgroup_events, 16); /* 64 KiB: about 240 new cgroups between two reads */

#ifdef EBPFTOP_HAVE_CGROUP_MKDIR
TRACEPOINT_PROBE(cgroup, cgroup_mkdir)
{
    if (args->root != 0)
        return 0; /* a cgroup v1 hierarchy (hybrid systems): not the one rows carry */
    struct cgroup_event *e = cgroup_events.ringbuf_reserve(sizeof(struct cgroup_event));
    if (!e)
        return 0;
    e->id = args->id;
    bpf_probe_read_kernel_str(e->path, sizeof(e->path), (const char *)args + (args->data_loc_path & 0xFFFF));
    cgroup_events.ringbuf_submit(e, 0);
    return 0;
}
#endif
