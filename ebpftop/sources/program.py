"""The BPF program text and its flags, and the choice of which probe sets to
load: everything about loading that needs no kernel and no ``bcc``, so it is
unit-tested without either.  sources/live.py does the loading."""

from __future__ import annotations

import ctypes
import os
import platform
import re
from pathlib import Path

from ebpftop import capabilities, cdefs, containers, sets
from ebpftop.sets.base import ProbeSet

TRACEFS_DIRS = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")


def bpf_dir() -> Path:
    """The eBPF C sources: packaged inside ebpftop/ when installed, or the
    repository's bpf/ when run from a checkout (EBPFTOP_BPF_DIR overrides)."""
    override = os.environ.get("EBPFTOP_BPF_DIR")
    if override:
        return Path(override)
    here = Path(__file__).resolve().parent.parent
    for candidate in (here / "bpf", here.parent / "bpf"):
        if (candidate / "ebpftop.h").is_file():
            return candidate
    raise FileNotFoundError("ebpftop's eBPF sources (bpf/*.c) are missing from this installation")


def tracefs_root() -> str | None:
    for d in TRACEFS_DIRS:
        if os.path.isdir(os.path.join(d, "events")):
            return d
    return None


def tracepoint_exists(root: str, name: str) -> bool:
    return os.path.isdir(os.path.join(root, "events", name))


def read_text(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def format_text(tfs: str | None, tp: str) -> str:
    """A tracepoint's format file ('group/event'), or '' where there is none."""
    return read_text(os.path.join(tfs, "events", tp, "format")) if tfs else ""


def missing_field(tfs: str, tracepoints: dict) -> str | None:
    """The first 'group:event has no field F' among tracepoints' fields, or
    None.  An absent tracepoint is not checked here: required ones are
    checked by why_not_runnable, optional ones are enabled only if present."""
    for tp, fields in tracepoints.items():
        if not tracepoint_exists(tfs, tp):
            continue
        have = capabilities.format_fields(read_text(os.path.join(tfs, "events", tp, "format")))
        for f in fields:
            if f not in have:
                return f"the kernel's {tp.replace('/', ':')} has no field {f}"
    return None


def why_not_runnable(probe_set: ProbeSet, tfs: str | None, mounts: str) -> str | None:
    """Why this machine cannot run the probe set (a missing tracepoint or
    field, no cgroup v2), or None."""
    from ebpftop.sources import bpf_syscall

    missing = [tp for tp in probe_set.tracepoints if not (tfs and tracepoint_exists(tfs, tp))]
    if missing:
        return f"kernel lacks tracepoint {missing[0].replace('/', ':')}"
    if tfs:
        no_field = missing_field(tfs, probe_set.fields)
        if no_field:
            return no_field
    if probe_set.needs_cgroup2 and bpf_syscall.cgroup2_root(mounts) is None:
        return "needs the cgroup v2 hierarchy mounted (mount -t cgroup2 none /sys/fs/cgroup/unified)"
    if probe_set.kernel_constants is not None:
        try:
            probe_set.kernel_constants(lambda tp: format_text(tfs, tp))
        except ValueError as e:
            return str(e)
    return None


def source_text(names: tuple[str, ...], caps: capabilities.Capabilities, tfs: str | None, root: Path,
                map_sizes: dict | None = None, machine: str | None = None) -> tuple[str, list[str]]:
    """The one C module for these probe sets (ebpftop.h, their files in
    declaration order, then the shared hook files they need) and its flags."""
    machine = machine or platform.machine()
    cflags = sets.defines(names, map_sizes) + cdefs.defines() + caps.defines()
    cflags.append(f"-DNR_READ={cdefs.NR_READ.get(machine, -1)}")
    cflags.append(f"-DNR_WRITE={cdefs.NR_WRITE.get(machine, -1)}")
    syscall_flags = cdefs.syscall_defines(machine)
    if caps.raw_syscall_args and not syscall_flags:  # capabilities judged another machine's
        cflags.remove("-DEBPFTOP_RAW_SYSCALL_ARGS")
    cflags += syscall_flags
    for define, tps in sets.OPTIONAL_TRACEPOINTS.items():
        if tfs and all(tracepoint_exists(tfs, tp) for tp in tps) and not missing_field(
                tfs, {tp: sets.OPTIONAL_FIELDS.get(tp, ()) for tp in tps}):
            cflags.append(f"-D{define}")
    chosen = [p for p in sets.PROBE_SETS if p.name in names]
    for p in chosen:
        cflags += [f"-D{k}={v}" for k, v in p.constants.items()]
        if p.kernel_constants is not None:
            cflags += [f"-D{k}={v}" for k, v in p.kernel_constants(lambda tp: format_text(tfs, tp)).items()]
    parts = [(root / "ebpftop.h").read_text()]
    parts += [f'#line 1 "{p.c_file}"\n' + (root / p.c_file).read_text() + layout_checks(p.layouts) for p in chosen]
    shared = {f for p in chosen for f in sets.shared_files(p)} | set(sets.ALWAYS_SHARED_FILES)
    if not caps.task_storage:
        shared.add("lifecycle.c")  # it frees a thread's scratch when the thread exits
    parts += [f'#line 1 "{f}"\n' + (root / f).read_text() + layout_checks(SHARED_LAYOUTS.get(f, {}))
              for f in sets.SHARED_FILES if f in shared]
    return "\n".join(parts), cflags


# The structs of the shared files that Python decodes by hand.
SHARED_LAYOUTS = {"cgroups.c": {"cgroup_event": containers.CgroupEventStruct}}


def layout_checks(layouts: dict) -> str:
    """C that fails to compile unless each struct's size and every field's
    offset are those of the ctypes class that decodes it in Python: a struct
    changed on one side only is caught as ebpftop loads, not trusted."""
    lines = []
    for c_name, ctype in layouts.items():
        why = f"ebpftop/sets: {ctype.__name__} differs from struct {c_name}"
        lines.append(f'_Static_assert(sizeof(struct {c_name}) == {ctypes.sizeof(ctype)}, "{why} (size)");')
        for f, *_ in ctype._fields_:
            lines.append(f'_Static_assert(__builtin_offsetof(struct {c_name}, {f}) == {getattr(ctype, f).offset}, '
                         f'"{why} (field {f})");')
    return "\n" + "\n".join(lines) + "\n" if lines else ""


PROBE_MACRO = re.compile(r"\bRAW_TRACEPOINT_PROBE\((\w+)\)|\bTRACEPOINT_PROBE\((\w+),\s*(\w+)\)")


def program_name(hook: str) -> str:
    """BCC's name of the program on a tracepoint 'group/event' (raw_syscalls'
    are raw tracepoints, named by their event only)."""
    group, event = hook.split("/")
    if group == "raw_syscalls":
        return f"raw_tracepoint__{event}"
    return f"tracepoint__{group}__{event}"


def program_owners(names: tuple[str, ...], root: Path, caps: capabilities.Capabilities) -> dict[str, tuple[str, ...]]:
    """BPF program name -> the probe sets it serves: the programs in a set's
    own file, those it attaches itself (CgroupSkb, PerfEvent), and the shared
    hooks it declares.  (What a skipped run of a program costs is charged to
    these sets; --max-cpu detaches a program when all its sets are shed.)"""
    owners: dict[str, list[str]] = {}
    for p in sets.PROBE_SETS:
        if p.name not in names:
            continue
        progs = set(p.attached_programs(caps)) | {program_name(h) for h in p.shared_hooks}
        for raw, group, event in PROBE_MACRO.findall((root / p.c_file).read_text()):
            progs.add(f"raw_tracepoint__{raw}" if raw else f"tracepoint__{group}__{event}")
        for prog in progs:
            owners.setdefault(prog, []).append(p.name)
    return {prog: tuple(sets) for prog, sets in owners.items()}


def first_line(text) -> str:
    """The most useful line of a BCC/clang error: the first 'error:' line."""
    lines = [ln.strip() for ln in str(text).splitlines() if ln.strip()]
    for ln in lines:
        if "error:" in ln:
            return ln[:200]
    return (lines[0] if lines else "unknown error")[:200]


def load_with_fallback(names: tuple[str, ...], load):
    """Load every probe set in one module; if that fails, find which sets fail
    on their own and load the rest.  load(names) returns a loaded module (with
    close()) or raises.  Returns (module or None, names loaded, {name: why
    it is not running})."""
    failed: dict[str, str] = {}
    if not names:
        return None, (), failed
    try:
        return load(names), names, failed
    except Exception as combined:  # noqa: BLE001 - BCC raises plain Exception
        good = []
        for n in names:
            try:
                load((n,)).close()
                good.append(n)
            except Exception as e:  # noqa: BLE001
                failed[n] = f"failed to load: {first_line(e)}"
        if good and len(good) == len(names):
            # Each loads alone but not together: say so, run none.
            return None, (), {n: f"failed to load: {first_line(combined)}" for n in names}
        if not good:
            return None, (), failed
        try:
            return load(tuple(good)), tuple(good), failed
        except Exception as e:  # noqa: BLE001
            failed.update({n: f"failed to load: {first_line(e)}" for n in good})
            return None, (), failed
