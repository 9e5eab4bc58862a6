"""How each loaded program is attached, and detached and attached again
(--max-cpu sheds load by program): one strategy per kind of hook.

Programs written as TRACEPOINT_PROBE / RAW_TRACEPOINT_PROBE are attached by
BCC as they load; the others are declared by their probe set (sets/base.py:
CgroupSkb, PerfEvent) and attached here.  No ``bcc`` import: everything goes
through the Kernel (sources/kernel.py) and bpf(2) (sources/bpf_syscall.py).
"""

from __future__ import annotations

import glob
import os
from collections.abc import Mapping

from ebpftop.sets.base import CgroupSkb, PerfEvent
from ebpftop.sources import bpf_syscall, program


class Attachment:
    """Where one or more programs are attached (those linked together go
    together), and the way to take them off and put them back."""

    programs: tuple[str, ...] = ()

    def hook_name(self, prog: str) -> str:
        return prog

    @property
    def attached(self) -> bool:
        raise NotImplementedError

    def attach(self) -> None:
        """OSError or another Exception with the reason when it cannot."""
        raise NotImplementedError

    def detach(self) -> None:
        raise NotImplementedError


class Tracepoint(Attachment):
    def __init__(self, kernel, prog: str):
        self.kernel, self.programs = kernel, (prog,)
        group, _, event = prog[len("tracepoint__"):].partition("__")
        self.tracepoint = f"{group}:{event}"

    def hook_name(self, prog: str) -> str:
        return self.tracepoint

    @property
    def attached(self) -> bool:
        return self.tracepoint in self.kernel.attached_tracepoints()

    def attach(self) -> None:
        self.kernel.set_tracepoint(self.tracepoint, self.programs[0], True)

    def detach(self) -> None:
        self.kernel.set_tracepoint(self.tracepoint, self.programs[0], False)


class RawTracepoint(Attachment):
    def __init__(self, kernel, prog: str):
        self.kernel, self.programs = kernel, (prog,)
        self.event = prog[len("raw_tracepoint__"):]

    def hook_name(self, prog: str) -> str:
        # a raw tracepoint is named by its event alone: its group from tracefs
        root = program.tracefs_root()
        groups = [os.path.basename(os.path.dirname(d)) for d in glob.glob(f"{root}/events/*/{self.event}")] if root else []
        return f"{groups[0] if len(groups) == 1 else '?'}:{self.event} (raw)"

    @property
    def attached(self) -> bool:
        return self.event in self.kernel.attached_raw_tracepoints()

    def attach(self) -> None:
        self.kernel.set_raw_tracepoint(self.event, self.programs[0], True)

    def detach(self) -> None:
        self.kernel.set_raw_tracepoint(self.event, self.programs[0], False)


class CgroupSkbLinks(Attachment):
    """cgroup_skb programs linked to the root of the cgroup v2 hierarchy
    (every process on the machine is under it), through BPF links: closing
    the link fds detaches them."""

    def __init__(self, kernel, declared: CgroupSkb):
        self.kernel, self.declared = kernel, declared
        self.programs = declared.names(kernel.caps)
        self.links: list[int] = []

    def hook_name(self, prog: str) -> str:
        direction = dict(self.declared.programs)[prog]
        return f"cgroup_skb/{direction} (every packet)"

    @property
    def attached(self) -> bool:
        return bool(self.links)

    def attach(self) -> None:
        if self.links:
            return
        root = bpf_syscall.cgroup2_root(program.read_text("/proc/self/mounts"))
        try:
            cgroup_fd = os.open(root or "/nonexistent", os.O_RDONLY | os.O_DIRECTORY)
        except OSError as e:
            raise OSError(e.errno, f"cannot open the cgroup v2 root {root}: {e.strerror}") from None
        try:
            for prog, direction in self.declared.programs:
                kind = {"egress": bpf_syscall.BPF_CGROUP_INET_EGRESS, "ingress": bpf_syscall.BPF_CGROUP_INET_INGRESS}
                fd = self.kernel.load_func(prog, "cgroup_skb")
                self.links.append(bpf_syscall.cgroup_link(fd, cgroup_fd, kind[direction]))
        except Exception as e:  # noqa: BLE001 - BCC raises plain Exception
            self.detach()
            raise RuntimeError(f"cannot attach to the cgroup v2 root {root}: {error_text(e)}") from None
        finally:
            os.close(cgroup_fd)

    def detach(self) -> None:
        for fd in self.links:
            os.close(fd)
        self.links = []


class PerfEvents(Attachment):
    """A program on a perf event of every online CPU."""

    def __init__(self, kernel, declared: PerfEvent, frequency: int):
        self.kernel, self.declared, self.frequency = kernel, declared, frequency
        self.programs = (declared.program,)
        self.fds: list[int] = []

    def hook_name(self, prog: str) -> str:
        return self.declared.hook_name

    @property
    def attached(self) -> bool:
        return bool(self.fds)

    def attach(self) -> None:
        if self.fds:
            return
        d = self.declared
        try:
            fd = self.kernel.load_func(d.program, "perf_event")
            self.fds = bpf_syscall.perf_event_with_program(fd, d.event_type, d.config, period=d.period,
                                                           frequency=self.frequency, user_only=d.user_only)
        except Exception as e:  # noqa: BLE001 - BCC raises plain Exception
            raise RuntimeError(f"cannot open the perf event of {d.hook_name}: {error_text(e)}") from None

    def detach(self) -> None:
        for fd in self.fds:
            os.close(fd)
        self.fds = []


def error_text(e: Exception) -> str:
    return e.strerror if isinstance(e, OSError) and e.strerror else program.first_line(str(e))


def declared(kernel, probe_set, options: Mapping) -> list[Attachment]:
    """The attachments a probe set declares, on this machine (options: the
    collectors', which may set a perf event's frequency)."""
    out: list[Attachment] = []
    for a in probe_set.attach:
        if not a.names(kernel.caps):
            continue
        if isinstance(a, CgroupSkb):
            out.append(CgroupSkbLinks(kernel, a))
        else:
            out.append(PerfEvents(kernel, a, options.get(a.frequency_option) or a.frequency))
    return out


def attached_by_bcc(kernel) -> list[Attachment]:
    """The programs BCC attached as they loaded."""
    out: list[Attachment] = []
    for prog in kernel.program_fds():
        if prog.startswith("tracepoint__"):
            out.append(Tracepoint(kernel, prog))
        elif prog.startswith("raw_tracepoint__"):
            out.append(RawTracepoint(kernel, prog))
    return out
