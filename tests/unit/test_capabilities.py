"""The choice of mechanism per machine (ebpftop/capabilities.py), and the
declaration of the tracepoint fields the C reads, kept in step with bpf/*.c."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ebpftop import capabilities
from ebpftop.capabilities import UnsupportedError, detect, forced_fallbacks, format_fields, version_tuple
from ebpftop.sets import oom

BPF = Path(__file__).resolve().parents[2] / "bpf"

RENAME_WITH_PID = """name: task_rename
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:pid_t pid;\toffset:8;\tsize:4;\tsigned:1;
\tfield:char oldcomm[16];\toffset:12;\tsize:16;\tsigned:0;
\tfield:char newcomm[16];\toffset:28;\tsize:16;\tsigned:0;
"""
# Linux 6.14 to 6.19.10: e3f6a42272e0 removed pid
RENAME_WITHOUT_PID = RENAME_WITH_PID.replace("\tfield:pid_t pid;\toffset:8;\tsize:4;\tsigned:1;\n", "")


def formats(present: dict):
    return lambda name: present.get(name, "")


EVERYTHING = {
    "task/task_rename": RENAME_WITH_PID,
    "sock/sock_recv_length": "format:\n\tfield:void * sk;\n",
    "exceptions/page_fault_user": "format:\n\tfield:unsigned long address;\n",
    "sched/sched_process_exit": "format:\n\tfield:bool group_dead;\toffset:32;\n",
    "sock/sock_send_length": "format:\n\tfield:void * sk;\n",
    "tcp/tcp_retransmit_skb": "format:\n\tfield:const void * skaddr;\n",
    "tcp/tcp_send_reset": "format:\n\tfield:const void * skaddr;\n",
    "tcp/tcp_receive_reset": "format:\n\tfield:const void * skaddr;\n",
    "block/block_io_start": "format:\n\tfield:dev_t dev;\n\tfield:sector_t sector;\n\tfield:char rwbs[10];\n",
}


def test_format_fields_reads_names_arrays_and_pointers():
    assert format_fields(RENAME_WITH_PID) == {"common_type", "common_pid", "pid", "oldcomm", "newcomm"}
    assert format_fields("\tfield:const char * filename;\toffset:24;\n\tfield:__data_loc char[] name;\t") == \
        {"filename", "name"}


def test_version_tuple():
    assert version_tuple("5.15.0-91-generic") == (5, 15, 0)
    assert version_tuple("6.18.44-fc-v769") == (6, 18, 44)
    assert version_tuple("0.31.0") == (0, 31, 0)
    assert version_tuple("v0.18.0-1") == (0, 18, 0)
    assert version_tuple("") == ()


def test_a_current_machine_uses_every_preferred_mechanism():
    caps = detect(kernel_release="6.18.44", bcc_version="0.31.0", tracepoint_format=formats(EVERYTHING), have_btf=True)
    assert caps.fallbacks == {}
    assert set(caps.defines()) == {"-DEBPFTOP_TASK_STORAGE", "-DEBPFTOP_HAVE_SOCK_RECV_LENGTH",
                                   "-DEBPFTOP_PAGE_FAULT_TRACEPOINT", "-DEBPFTOP_TASK_RENAME_HAS_PID",
                                   "-DEBPFTOP_HAVE_GROUP_DEAD", "-DEBPFTOP_RAW_SYSCALL_ARGS"}
    assert caps.notes() == {}


@pytest.mark.parametrize("kernel, bcc, btf, expected", [
    ("5.15.0-91-generic", "0.18.0", True, False),  # Ubuntu 22.04, Debian 11: BCC too old
    ("5.10.0-28-amd64", "0.26.0", True, False),  # kernel too old for task storage in tracing
    ("6.8.0", "0.29.1", True, True),  # Ubuntu 24.04
    ("6.8.0", "0.29.1", False, False),  # no BTF: no task pointer for the helper
    ("5.13.0", "0.24.0", True, True),  # the floor
])
def test_task_storage_needs_bcc_0_24_linux_5_13_and_btf(kernel, bcc, btf, expected):
    caps = detect(kernel_release=kernel, bcc_version=bcc, tracepoint_format=formats(EVERYTHING), have_btf=btf)
    assert caps.task_storage is expected
    assert ("task_storage" in caps.fallbacks) is (not expected)


def test_missing_tracepoints_and_fields_choose_their_fallbacks():
    # arm64 with Linux 6.1 and 6.14's task_rename
    caps = detect(kernel_release="6.14.0", bcc_version="0.30.0", have_btf=True,
                  tracepoint_format=formats({"task/task_rename": RENAME_WITHOUT_PID}))
    assert not caps.sock_recv_length and not caps.page_fault_tracepoint and not caps.task_rename_pid
    assert not caps.group_dead
    assert set(caps.notes()) == {"udp", "page_faults", "tcp_traffic", "disk"}  # tcp_traffic: no bytes; disk: no queued time
    assert "-DEBPFTOP_TASK_RENAME_HAS_PID" not in caps.defines()


def test_forced_fallbacks_act_as_if_the_feature_were_missing():
    forced = forced_fallbacks("task_storage, page_fault_tracepoint")
    caps = detect(kernel_release="6.18.0", bcc_version="0.26.0", tracepoint_format=formats(EVERYTHING),
                  have_btf=True, forced=forced)
    assert set(caps.fallbacks) == {"task_storage", "page_fault_tracepoint"}
    assert caps.to_dict()["forced"] == ["page_fault_tracepoint", "task_storage"]
    assert forced_fallbacks("all") == frozenset(capabilities.FALLBACKS)
    assert forced_fallbacks("") == frozenset()
    with pytest.raises(UnsupportedError, match="unknown feature 'task_storag'"):
        forced_fallbacks("task_storag")


@pytest.mark.parametrize("kernel, bcc, message", [
    ("5.4.0-150-generic", "0.26.0", "Linux 5.4.0-150-generic is too old: ebpftop needs Linux >= 5.8"),
    ("6.1.0", "0.12.0", "BCC 0.12.0 is too old"),
])
def test_below_the_floor_is_one_clear_line(kernel, bcc, message):
    with pytest.raises(UnsupportedError, match=re.escape(message)):
        detect(kernel_release=kernel, bcc_version=bcc, tracepoint_format=formats(EVERYTHING), have_btf=True)


def _probe_bodies(text: str):
    """(group/event, body) of each TRACEPOINT_PROBE in a C file (bodies end at
    the next probe or at the end: a superset, which errs toward listing)."""
    starts = [(m.start(), f"{m.group(1)}/{m.group(2)}")
              for m in re.finditer(r"TRACEPOINT_PROBE\((\w+),\s*(\w+)\)", text)]
    for i, (pos, name) in enumerate(starts):
        end = starts[i + 1][0] if i + 1 < len(starts) else len(text)
        yield name, text[pos:end]


def test_every_tracepoint_field_the_c_reads_is_declared_or_has_a_fallback():
    """A field read as args->F in bpf/*.c is checked against the running
    kernel (each probe set's declared fields) or chosen by capabilities: none is used unchecked."""
    from ebpftop.sets import OPTIONAL_FIELDS, PROBE_SETS

    declared: dict[str, set] = {tp: set(names) for tp, names in OPTIONAL_FIELDS.items()}
    for probe_set in PROBE_SETS:
        for tp, names in probe_set.fields.items():
            declared.setdefault(tp, set()).update(names)
    # fields behind a capability define, or optional hooks read only when present
    by_capability = {
        "task/task_rename": {"pid"},  # EBPFTOP_TASK_RENAME_HAS_PID
        "sched/sched_process_exit": {"group_dead"},  # EBPFTOP_HAVE_GROUP_DEAD
        "sock/sock_recv_length": {"protocol", "family", "ret", "flags", "sk"},  # EBPFTOP_HAVE_SOCK_RECV_LENGTH
        # optional twins of declared hooks, enabled only when present (OPTIONAL_TRACEPOINTS)
        "syscalls/sys_enter_open": {"filename"}, "syscalls/sys_exit_open": {"ret"},
        "syscalls/sys_enter_openat2": {"filename"}, "syscalls/sys_exit_openat2": {"ret"},
        "syscalls/sys_enter_accept": {"upeer_sockaddr"}, "syscalls/sys_exit_accept": {"ret"},
        "syscalls/sys_enter_creat": {"pathname"}, "syscalls/sys_exit_creat": {"ret"},
        "block/block_io_start": {"dev", "sector", "rwbs"},  # else EBPFTOP_BLOCK_ON_ISSUE
    }
    # fields each read behind a -D its set defines from the format file (ProbeSet.kernel_constants)
    by_capability["oom/mark_victim"] = set(oom.FIELDS)  # OOM_HAVE_<FIELD>
    by_capability["skb/kfree_skb"] = {"reason", "rx_sk"}  # DROPS_HAVE_REASON, DROPS_HAVE_RX_SK
    undeclared = []
    for c_file in sorted(BPF.glob("*.c")):
        for tp, body in _probe_bodies(c_file.read_text()):
            for field in set(re.findall(r"args->(\w+)", body)):
                field = field.removeprefix("data_loc_")  # BCC's name for a __data_loc field
                if field not in declared.get(tp, set()) | by_capability.get(tp, set()):
                    undeclared.append(f"{c_file.name}: {tp} {field}")
    assert undeclared == []


def test_online_cpus_parses_ranges_and_lists():
    from ebpftop.sources.bpf_syscall import online_cpus

    assert online_cpus("0-3,6\n") == [0, 1, 2, 3, 6]
    assert online_cpus("0\n") == [0]


def test_tcp_traffic_says_which_figures_an_older_kernel_cannot_give():
    older = {k: v for k, v in EVERYTHING.items() if k not in ("sock/sock_send_length", "sock/sock_recv_length")}
    caps = detect(kernel_release="5.15.0", bcc_version="0.26.0", tracepoint_format=formats(older), have_btf=True)
    assert caps.notes()["tcp_traffic"] == "no bytes (sock:sock_send_length and sock_recv_length need Linux 6.3)"
    no_tcp = {k: v for k, v in EVERYTHING.items() if not k.startswith("tcp/")}
    caps = detect(kernel_release="6.18", bcc_version="0.31.0", tracepoint_format=formats(no_tcp), have_btf=True)
    assert caps.notes()["tcp_traffic"] == ("no retransmits (no tcp:tcp_retransmit_skb); "
                                           "no resets (no tcp:tcp_send_reset/tcp_receive_reset)")


def test_syscall_entries_fall_back_to_classic_tracepoints_where_the_architecture_is_unknown():
    from ebpftop import cdefs

    caps = capabilities.detect(kernel_release="6.8.0", bcc_version="0.29.1", tracepoint_format=lambda _n: "",
                               have_btf=True, machine_has_syscall_table=False)
    assert not caps.raw_syscall_args and "raw_syscall_args" in caps.fallbacks
    assert "-DEBPFTOP_RAW_SYSCALL_ARGS" not in caps.defines()
    assert cdefs.syscall_defines("ppc64le") == []
    x86 = cdefs.syscall_defines("x86_64")
    assert "-DSYSNR_OPENAT=257" in x86 and "-DARG1_OFFSET=104" in x86 and "-DSYSNR_OPEN=2" in x86
    assert "-DSYSNR_OPEN=-1" in cdefs.syscall_defines("aarch64")  # arm64 has openat only
