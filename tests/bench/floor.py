"""The floor: empty BPF programs on exactly the hooks ebpftop attaches on this
machine, so the bench can tell what merely having those hooks costs from
what ebpftop's programs add (make bench's "floor" monitor).

    sudo .venv/bin/python -m tests.bench.floor     # runs until SIGINT or SIGTERM

The hooks are taken from a real ebpftop start (LiveSource.attached_hooks),
which is then closed; each program returns at once (a cgroup_skb one passes
the packet)."""

from __future__ import annotations

import os
import signal
import sys

from ebpftop.sources import bpf_syscall, program
from ebpftop.sources.live import LiveSource


def ebpftop_hooks() -> dict:
    source = LiveSource(interval_s=5.0)
    try:
        source.start()
        return source.attached_hooks()
    finally:
        source.close()


def empty_program_text(hooks: dict) -> str:
    parts = []
    for tp in hooks["tracepoints"]:
        group, event = tp.split(":")
        parts.append(f"TRACEPOINT_PROBE({group}, {event}) {{ return 0; }}")
    for raw in hooks["raw_tracepoints"]:
        parts.append(f"RAW_TRACEPOINT_PROBE({raw}) {{ return 0; }}")
    for direction in hooks["cgroup_skb"]:
        parts.append(f"int floor_{direction}(struct __sk_buff *skb) {{ return 1; }}")
    if hooks["perf_events"]:
        parts.append("int floor_perf_event(struct bpf_perf_event_data *ctx) { return 0; }")
    return "#include <uapi/linux/bpf.h>\n#include <uapi/linux/bpf_perf_event.h>\n" + "\n".join(parts) + "\n"


def main() -> int:
    from bcc import BPF

    hooks = ebpftop_hooks()
    bpf = BPF(text=empty_program_text(hooks).encode())
    held = []
    if hooks["cgroup_skb"]:
        root = bpf_syscall.cgroup2_root(program.read_text("/proc/self/mounts"))
        cgroup_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
        for direction, attach_type in (("egress", bpf_syscall.BPF_CGROUP_INET_EGRESS),
                                       ("ingress", bpf_syscall.BPF_CGROUP_INET_INGRESS)):
            fn = bpf.load_func(f"floor_{direction}".encode(), BPF.CGROUP_SKB)
            held.append(bpf_syscall.cgroup_link(fn.fd, cgroup_fd, attach_type))
        os.close(cgroup_fd)
    if hooks["perf_events"]:
        fn = bpf.load_func(b"floor_perf_event", BPF.PERF_EVENT)
        for e in hooks["perf_events"]:  # the same events, at the same period or rate, as ebpftop's
            held += bpf_syscall.perf_event_with_program(fn.fd, e["type"], e["config"], period=e["period"],
                                                        frequency=e["frequency"], user_only=e["user_only"])
    print(f"floor: {len(hooks['tracepoints'])} tracepoints, {len(hooks['raw_tracepoints'])} raw, "
          f"{len(hooks['cgroup_skb'])} cgroup_skb, {len(hooks['perf_events'])} perf events", file=sys.stderr, flush=True)
    print("ready", flush=True)  # the bench waits for this line: ebpftop's own start came and went before it
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        for fd in held:
            os.close(fd)
        bpf.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
