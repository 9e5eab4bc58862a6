"""The CPU profile's user side (ebpftop/sets/profile.py), its folded output
(sources/folded.py) and the flame graph's layout (panes/flame.py), on
hand-built stacks and a fake kernel's maps."""

from __future__ import annotations

import ctypes
import json
import os
import struct

import pytest
from rich.cells import cell_len

from ebpftop import cli, filters
from ebpftop.panes import flame
from ebpftop.recording import Recorder, RecordingError
from ebpftop.sets import profile
from ebpftop.sets.base import PollContext
from ebpftop.sets.profile import (
    CUT,
    OTHER_PROCESSES,
    OTHER_STACKS,
    TOO_MANY,
    ProfileStack,
    bounded,
    folded_line,
    hot_functions,
    merged,
    stack_label,
)
from ebpftop.sources.folded import FoldedFile, FoldedSource, FoldedStacks
from tests.unit.snapshots import every_part_snapshot


def S(pid, comm, user, kernel=(), n=1, cgroup=0):  # noqa: N802 - short: a stack
    return ProfileStack(pid, comm, tuple(user), tuple(kernel), n, cgroup)


# -- what a stack the kernel did not give becomes -------------------------------

def test_a_stack_the_kernel_did_not_give_is_a_frame_that_says_why():
    assert stack_label(-14, kernel=True, kernel_thread=False) is None  # sampled in user mode: no kernel frames
    assert stack_label(-14, kernel=False, kernel_thread=True) is None  # a kernel thread has no user stack to miss
    assert stack_label(-14, kernel=False, kernel_thread=False) == "[user stack unavailable]"
    assert stack_label(-22, kernel=True, kernel_thread=False) == "[stack lost: error 22]"


# -- merging and bounding ----------------------------------------------------------

def test_stacks_of_the_same_frames_merge_and_the_busiest_come_first():
    rows = merged([S(1, "a", ["main", "f"], n=2), S(1, "a", ["main", "f"], n=3), S(1, "a", ["main", "g"], n=9),
                   S(2, "a", ["main", "f"], n=1)])
    assert [(r.pid, r.user_stack[-1], r.samples) for r in rows] == [(1, "g", 9), (1, "f", 5), (2, "f", 1)]


def test_the_rows_are_bounded_and_no_sample_is_dropped():
    rows = [S(1, "big", ["main", f"f{i}"], n=100 - i) for i in range(30)]
    rows += [S(pid, f"p{pid}", ["main"], n=1) for pid in range(100, 160)]
    out = bounded(rows, per_process=10, total=40)
    assert len(out) == 40
    assert sum(r.samples for r in out) == sum(r.samples for r in rows)
    big = [r for r in out if r.pid == 1]
    other = [r for r in big if r.user_stack == (OTHER_STACKS,)]
    assert len(big) == 11 and len(other) == 1  # its 10 busiest, then the rest in one row
    assert other[0].samples == sum(100 - i for i in range(10, 30))
    assert out[-1].comm == OTHER_PROCESSES and out[-1].pid == 0
    assert bounded(rows) == bounded(list(reversed(rows)))  # the same rows whatever order the map gave them in


def test_grouped_by_container_the_stacks_sum_over_processes():
    rows = [S(1, "a", ["main"], n=2, cgroup=5), S(2, "b", ["main"], n=3, cgroup=5), S(3, "c", ["main"], n=4, cgroup=6)]
    out = profile.grouped(rows, lambda r: {5: "web", 6: "db"}[r.cgroup])
    assert [(r.comm, r.pid, r.samples) for r in out] == [("web", 0, 5), ("db", 0, 4)]


# -- hot functions -------------------------------------------------------------------

def test_hot_functions_count_self_on_top_and_total_once_per_sample():
    rows = [S(1, "a", ["main", "outer", "inner"], n=8),
            S(1, "a", ["main", "outer"], ["entry_SYSCALL_64", "do_syscall_64"], n=2),
            S(2, "b", ["main", "rec", "rec", "rec"], n=5)]  # recursion: rec's total is 5, not 15
    hot = {(h.name, h.kernel): h for h in hot_functions(rows)}
    assert (hot["inner", False].self_samples, hot["inner", False].total_samples) == (8, 8)
    assert (hot["outer", False].self_samples, hot["outer", False].total_samples) == (0, 10)
    assert (hot["do_syscall_64", True].self_samples, hot["do_syscall_64", True].total_samples) == (2, 2)
    assert (hot["rec", False].self_samples, hot["rec", False].total_samples) == (5, 5)
    assert hot["main", False].total_samples == 15 and hot["main", False].top_comm == "a"
    assert hot_functions(rows)[0].name == "inner"  # the most self first


# -- folded output ----------------------------------------------------------------------

def test_a_folded_line_is_what_flamegraph_pl_reads():
    assert folded_line("web srv", ("main", "a;b"), ("do_syscall_64",), 7) == "web_srv;main;a_b;do_syscall_64_[k] 7"
    line = folded_line("x\nevil 9", ("f\tg",), (), 1)
    assert "\n" not in line and line.count(" ") == 1 and line.endswith(" 1")


def test_folded_stacks_sum_over_intervals_and_stay_bounded():
    f = FoldedStacks(max_stacks=2)
    f.add([S(1, "a", ["main", "f"], n=2), S(2, "a", ["main", "f"], n=3)])  # two pids, one line
    f.add([S(1, "a", ["main", "g"], n=1), S(1, "a", ["main", "h"], n=4)])  # beyond 2 lines: [other stacks]
    lines = f.text().splitlines()
    assert lines == ["a;main;f 5", "a;[other_stacks] 4", "a;main;g 1"]
    for line in lines:  # every line parses: frames, then a count
        stack, n = line.rsplit(" ", 1)
        assert int(n) > 0 and all(stack.split(";"))


class _Polled:
    kind = "replay"
    label = "test"
    interval_s = 5.0
    probe_stats = "off"

    def __init__(self, snaps):
        self.snaps = list(snaps)

    def poll(self):
        return self.snaps.pop(0) if self.snaps else None

    def close(self):
        pass


def test_folded_output_follows_the_filter_and_is_rewritten_whole(tmp_path):
    path = tmp_path / "cpu.folded"
    snap = every_part_snapshot()
    src = FoldedSource(_Polled([snap, snap]), FoldedFile(str(path)), filters.Filter(comm="postgres"))
    assert path.read_text() == ""  # made at once: a FILE that cannot be written is refused before the start
    src.poll()
    first = path.read_text()
    assert first and all(line.startswith("postgres;") for line in first.splitlines())
    src.poll()
    assert sum(int(x.rsplit(" ", 1)[1]) for x in path.read_text().splitlines()) == 2 * sum(
        int(x.rsplit(" ", 1)[1]) for x in first.splitlines())
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert [p.name for p in tmp_path.iterdir()] == ["cpu.folded"]  # no temporary file left
    src.close()


def test_folded_output_is_never_written_through_a_link(tmp_path):
    target = tmp_path / "theirs"
    target.write_text("keep")
    (tmp_path / "cpu.folded").symlink_to(target)
    with pytest.raises(RecordingError, match="symbolic link"):
        FoldedFile(str(tmp_path / "cpu.folded"))
    assert target.read_text() == "keep"


def test_folded_output_that_cannot_be_written_is_said_once_and_monitoring_goes_on(tmp_path):
    d = tmp_path / "d"
    d.mkdir(mode=0o700)
    path = d / "cpu.folded"
    snap = every_part_snapshot()
    src = FoldedSource(_Polled([snap, snap, snap]), FoldedFile(str(path)), filters.Filter())
    path.unlink()
    path.mkdir()  # FILE's place taken by a directory
    first, second = src.poll(), src.poll()
    assert any("cannot write" in n for n in first.notices) and not any("cannot write" in n for n in second.notices)
    path.rmdir()
    third = src.poll()
    assert any("again" in n for n in third.notices) and path.read_text()
    src.close()


def test_the_folded_flag_writes_a_replays_profile(tmp_path, capsys):
    rec = tmp_path / "rec.jsonl"
    r = Recorder(rec)
    r.write(every_part_snapshot())
    r.close()
    out = tmp_path / "out.folded"
    assert cli.main(["--replay", str(rec), "--json", "--folded", str(out), "--pid", "4242"]) == 0
    assert out.read_text() == "curl;_start;main;[unknown_in_libcurl.so.4] 9\n"
    line = json.loads(capsys.readouterr().out)
    assert [r["pid"] for r in line["profile_stacks"]] == [4242]


@pytest.mark.parametrize("argv, message", [
    (["--profile-hz", "-1"], "must be from 0 (no profile) to 1000"),
    (["--profile-hz", "1001"], "must be from 0 (no profile) to 1000"),
    (["--profile-hz", "fast"], "not a whole number"),
    (["--profile-hz", "0", "--probe-sets", "profile"], "--profile-hz 0 leaves no probe set to load"),
    (["--profile-hz", "0", "--folded", "x"], "--folded needs the profile"),
    (["--probe-sets", "cpu", "--folded", "x"], "--folded needs the profile"),
])
def test_bad_profile_arguments_are_one_argparse_error(argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_the_profile_rate_reaches_the_perf_event():
    from ebpftop.sources import attach

    class K:
        caps = None

    assert [a.frequency for a in attach.declared(K(), profile.SET, {})] == [profile.DEFAULT_HZ]
    assert [a.frequency for a in attach.declared(K(), profile.SET, {"profile_hz": 997})] == [997]
    assert cli.build_parser().parse_args(["--profile-hz", "0"]).profile_hz == 0


# -- the collector, on samples as the ring buffer gives them -----------------------

class _Index(dict):
    """A table indexed by ctypes values, as BCC's."""

    def __getitem__(self, key):
        return super().__getitem__(getattr(key, "value", key))


class FakeSymbols:
    kernel_symbols = True

    def user(self, tgid, addr):
        return f"u{addr}"

    def kernel(self, addr):
        return f"k{addr}"


class FakeKernel:
    def __init__(self):
        self.idle = _Index({0: [0, 0]})

    def table(self, name):
        assert name == "profile_idle"
        return self.idle

    def symbolizer(self):
        return FakeSymbols()


def sample(tgid, comm, user, kernel=(), cgroup=7, user_bytes=None, kernel_bytes=None) -> bytes:
    """struct profile_sample as bpf/profile.c sends it: the header, then the
    frames there are (innermost first), user then kernel."""
    ub = 8 * len(user) if user_bytes is None else user_bytes
    kb = 8 * len(kernel) if kernel_bytes is None else kernel_bytes
    head = profile.SAMPLE_HEADER.pack(cgroup, tgid, ub, kb, comm.encode().ljust(16, b"\0"))
    return head + struct.pack(f"={len(user) + len(kernel)}Q", *user, *kernel)


def feed(collector, *raws):
    for raw in raws:
        buf = ctypes.create_string_buffer(raw, len(raw))
        collector.on_sample(buf, len(raw))


def test_the_collector_counts_samples_and_names_their_frames_root_first(monkeypatch):
    monkeypatch.setattr(profile, "is_kernel_thread", lambda tgid: tgid == 2)
    k = FakeKernel()
    c = profile.ProfileCollector(k, {})
    c.start()
    assert c.rings == {"profile_events": "on_sample"}
    spin = sample(10, "spin", [30, 20, 10])  # innermost first: 30 called by 20, by 10
    feed(c, spin, spin, spin)
    feed(c, sample(10, "spin", [30, 20, 10], [300, 200]))  # in the kernel: 300 called by 200
    feed(c, sample(10, "spin", [31, 20, 10], kernel_bytes=-14))  # in user mode: no kernel frames, nothing said
    feed(c, sample(2, "kthreadd", [], [300, 200], user_bytes=-14))  # a kernel thread: no user stack to miss
    feed(c, sample(11, "lost", [], [], user_bytes=-14, kernel_bytes=-22))
    deep = list(range(1, profile.STACK_DEPTH + 1))
    feed(c, sample(12, "deep", deep))  # as deep as the kernel walks: cut
    k.idle[0] = [5, 6]
    out = c.collect(PollContext(0))
    rows = {(r.pid, r.comm, r.user_stack, r.kernel_stack): r.samples for r in out["profile_stacks"]}
    assert rows[(10, "spin", ("u10", "u20", "u30"), ())] == 3
    assert rows[(10, "spin", ("u10", "u20", "u30"), ("k200", "k300"))] == 1
    assert rows[(10, "spin", ("u10", "u20", "u31"), ())] == 1
    assert rows[(2, "kthreadd", (), ("k200", "k300"))] == 1
    assert rows[(11, "lost", ("[user stack unavailable]",), ("[stack lost: error 22]",))] == 1
    deep_row = next(r for r in out["profile_stacks"] if r.comm == "deep")
    assert deep_row.user_stack[0] == CUT and deep_row.user_stack[1] == f"u{profile.STACK_DEPTH}"
    assert len(deep_row.user_stack) == profile.STACK_DEPTH + 1
    assert all(r.cgroup == 7 for r in out["profile_stacks"])
    assert sum(r.samples for r in out["profile_stacks"]) == 8  # every sample, none dropped
    assert out["profile_idle"] == 11
    # the next poll: only what came since
    feed(c, sample(10, "spin", [30, 20, 10]))
    k.idle[0] = [7, 6]
    out = c.collect(PollContext(0))
    assert [(r.user_stack, r.samples) for r in out["profile_stacks"]] == [(("u10", "u20", "u30"), 1)]
    assert out["profile_idle"] == 2


def test_beyond_so_many_distinct_samples_a_sample_is_counted_without_its_stack(monkeypatch):
    monkeypatch.setattr(profile, "MAX_DISTINCT", 3)
    c = profile.ProfileCollector(FakeKernel(), {})
    c.start()
    feed(c, *(sample(10, "jit", [100 + i]) for i in range(5)), sample(10, "jit", [100]))
    out = c.collect(PollContext(0))
    assert sum(r.samples for r in out["profile_stacks"]) == 6
    assert {r.user_stack: r.samples for r in out["profile_stacks"]}[(TOO_MANY,)] == 2


def test_the_ring_is_sized_for_the_rate_on_every_cpu(monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert profile.ring_pages({}) == {"PROFILE_RING_PAGES": 64}  # 49 Hz: 256 KiB
    assert profile.ring_pages({"profile_hz": 1000}) == {"PROFILE_RING_PAGES": 1024}
    monkeypatch.setattr(os, "cpu_count", lambda: 512)
    assert profile.ring_pages({"profile_hz": 1000}) == {"PROFILE_RING_PAGES": 4096}  # at most 16 MiB


def test_a_kernel_thread_is_told_by_its_flags(tmp_path, monkeypatch):
    assert profile.is_kernel_thread(2) is True  # kthreadd
    assert profile.is_kernel_thread(os.getpid()) is False
    assert profile.is_kernel_thread(1 << 30) is False  # gone: not known to be one


# -- the flame graph's layout ------------------------------------------------------------------

def _plain(line) -> str:
    return line.plain


def test_the_icicle_gives_each_frame_its_share_of_the_width():
    rows = [S(1, "spin", ["main", "outer", "inner"], n=75), S(1, "spin", ["main", "outer"], ["do_syscall_64"], n=25)]
    lines = flame.icicle(flame.tree(rows), 40)
    assert len(lines) == 5  # all, spin, main, outer, inner|do_syscall_64
    assert all(cell_len(_plain(line)) == 40 for line in lines)
    assert _plain(lines[0]).startswith("all (100 samples)")
    last = _plain(lines[4])
    assert last.startswith("inner") and last.index("do_sys") == 30  # 75% of 40 cells, then the kernel frame
    styles = {span.style.bgcolor.name for span in lines[4].spans}
    assert len(styles) == 2  # user and kernel frames in different colours


def test_a_frame_narrower_than_a_cell_is_not_drawn_and_names_are_shown_safely():
    rows = [S(1, "big", ["main"], n=999), S(2, "tiny\x1b[31m", ["x"], n=1)]
    lines = flame.icicle(flame.tree(rows), 20)
    assert "tiny" not in "".join(_plain(x) for x in lines)
    lines = flame.icicle(flame.tree([S(2, "evil\x1b[2J", ["x"], n=1)]), 30)
    assert "\x1b" not in "".join(_plain(x) for x in lines) and "evil" in _plain(lines[1])
    assert flame.icicle(flame.tree([]), 30) == []


def test_hidden_kernel_addresses_are_one_kernel_frame(monkeypatch):
    """Without CAP_SYSLOG (kernel.kptr_restrict) every kernel address reads
    0 in /proc/kallsyms: a sample's kernel part is one frame, '[kernel]'."""
    k = FakeKernel()
    c = profile.ProfileCollector(k, {})
    c.start()
    c.symbols.kernel_symbols = False
    feed(c, sample(10, "spin", [30, 20], [300, 200, 100]), sample(10, "spin", [30, 20]))
    rows = sorted((r.user_stack, r.kernel_stack, r.samples) for r in c.collect(PollContext(0))["profile_stacks"])
    assert rows == [(("u20", "u30"), (), 1), (("u20", "u30"), ("[kernel]",), 1)]


def test_kernel_symbols_are_readable_unless_every_address_is_zero(tmp_path):
    from ebpftop.sources.kernel import kernel_symbols_readable

    hidden = tmp_path / "hidden"
    hidden.write_text("0000000000000000 A fixed_percpu_data\n0000000000000000 T _stext\n")
    shown = tmp_path / "shown"
    shown.write_text("0000000000000000 A fixed_percpu_data\nffffffff81000000 T _stext\n")
    assert not kernel_symbols_readable(str(hidden))
    assert kernel_symbols_readable(str(shown))
    assert not kernel_symbols_readable(str(tmp_path / "absent"))
