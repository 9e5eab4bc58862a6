from __future__ import annotations

import json
import sys

import pytest

from ebpftop import cli, preflight, snapshots
from ebpftop.recording import Recorder
from tests.unit.snapshots import sample_snapshot


def test_the_probe_sets_option_and_its_older_name():
    assert cli.build_parser().parse_args(["--probe-sets", "udp,tcp"]).probe_sets == ("tcp", "udp")
    assert cli.build_parser().parse_args(["--panes", "udp"]).probe_sets == ("udp",)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--interval", "-1"], "must be a positive number"),
        (["--interval", "0"], "must be a positive number"),
        (["--interval", "nan"], "must be a positive number"),
        (["--port", "70000"], "must be 1-65535"),
        (["--port", "http"], "not a port number"),
        (["--comm", ""], "must not be empty"),
        (["--comm", "a-name-too-long-for-comm"], "longer than a process name"),
        (["--pid", "0"], "must be from 1 to 4,194,304"),
        (["--count", "2"], "--count needs --json"),
        (["--probe-sets", "tcp,gpu"], "unknown probe set 'gpu'"),
        (["--panes", "tcp,gpu"], "unknown probe set 'gpu'"),
        (["--replay", "x", "--record", "y"], "cannot be combined"),
        (["--replay", "x", "--max-cpu", "5"], "--max-cpu budgets live tracing, not a replay"),
        (["--max-cpu", "0"], "must be a share of one CPU in percent"),
        (["--slow-io", "-1"], "must be from 0 (every I/O) to 3600000 ms"),
        (["--slow-io", "nan"], "must be from 0 (every I/O) to 3600000 ms"),
        (["--slow-io", "10ms"], "not a number of milliseconds"),
    ],
)
def test_bad_arguments_are_one_argparse_error(argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def _record(path, snaps):
    r = Recorder(path)
    for s in snaps:
        r.write(s)
    r.close()


def test_headless_replay_prints_filtered_json(tmp_path, capsys):
    rec = tmp_path / "rec.jsonl"
    _record(rec, [sample_snapshot(), sample_snapshot(t=1_764_000_005.0)])
    assert cli.main(["--replay", str(rec), "--json", "--comm", "nginx"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert len(lines) == 2
    assert {r["comm"] for r in lines[0]["syscalls"]} == {"nginx"}


@pytest.mark.parametrize(
    "content, message",
    [
        ("", "holds no snapshot"),
        ('{"time": "2026-01-01T00:00:00+00:00", "interval_s": 5', "line 1: truncated"),
        ("not json\n", "line 1: not valid JSON"),
        ('{"a": 1}\n', "line 1: not an ebpftop snapshot"),
    ],
)
def test_bad_recording_is_one_line_naming_the_line(tmp_path, capsys, content, message):
    rec = tmp_path / "bad.jsonl"
    rec.write_text(content)
    assert cli.main(["--replay", str(rec), "--json"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err


def test_a_recording_cut_mid_line_replays_its_whole_intervals(tmp_path, capsys):
    """A full disk or a kill mid-write leaves a cut last line: it once made
    the replay reject every interval before it."""
    rec = tmp_path / "cut.jsonl"
    _record(rec, [sample_snapshot(), sample_snapshot()])
    data = rec.read_text()
    rec.write_text(data[: len(data) - 40])
    assert cli.main(["--replay", str(rec), "--json"]) == 0
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 1
    assert err.count("\n") == 1 and "line 2 is cut short; replaying the 1 whole intervals" in err


def _crafted(**changes) -> str:
    d = json.loads(json.dumps(snapshots.to_dict(sample_snapshot())))
    for path, value in changes.items():
        target = d
        keys = path.split("__")
        for k in keys[:-1]:
            target = target[int(k)] if isinstance(target, list) else target[k]
        last = keys[-1]
        if isinstance(target, list):
            target[int(last)] = value
        else:
            target[last] = value
    return json.dumps(d)


BUCKET = "read_latency__by_process__0__buckets__0"


@pytest.mark.parametrize("line", [
    _crafted(**{f"{BUCKET}__low_ns": -5}),  # looped the latency view forever, to 2.2 GB
    _crafted(interval_s=-1),  # spun a timer at 100% CPU, deaf to q and signals
    _crafted(interval_s=0),
    _crafted(**{f"{BUCKET}__high_ns": 2 ** 4000}),
    _crafted(**{f"{BUCKET}__count": 0}),
    _crafted(**{"syscalls__0__count": 10 ** 400}),
    _crafted(time="10000-01-01T00:00:00+00:00"),
    _crafted(status=[1]),
    _crafted(lost={"syscalls": -3}),
    _crafted(skipped={"cpu": -1}),
    _crafted(skipped=[1]),
    _crafted(capabilities={"notes": {"udp": 5}}),
    _crafted().replace('"interval_s":', '"interval_s": NaN, "x":', 1),
    _crafted().replace('"interval_s":', '"interval_s": 1e999, "x":', 1),
    _crafted().replace('"interval_s":', '"deep": ' + "[" * 5000 + "]" * 5000 + ', "interval_s":', 1),
], ids=["negative-bucket", "negative-interval", "zero-interval", "huge-bound", "empty-bucket", "huge-count",
        "year-10000", "status-list", "negative-lost", "negative-skipped", "skipped-list",
        "note-number", "nan", "1e999", "deep-nesting"])
def test_a_crafted_recording_is_one_error_line_never_a_traceback(tmp_path, capsys, line):
    rec = tmp_path / "crafted.jsonl"
    rec.write_text(line + "\n")
    assert cli.main(["--replay", str(rec), "--json"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("ebpftop: error: recording ") and "line 1" in err, err


def test_json_output_never_holds_nan_or_infinity():
    """NaN and Infinity are not JSON: the loader refuses them (above), and
    the writer would rather fail than print them."""
    from ebpftop.recording import dumps
    from tests.unit.snapshots import replace

    with pytest.raises(ValueError):
        dumps(replace(sample_snapshot(), interval_s=float("nan")))


def test_recordings_are_0600_and_never_written_through_a_symlink(tmp_path, capsys):
    import os
    import stat

    rec = tmp_path / "new.jsonl"
    Recorder(rec).close()
    assert stat.S_IMODE(rec.stat().st_mode) == 0o600
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    link = tmp_path / "planted"
    link.symlink_to(victim)
    with pytest.raises(Exception, match="symbolic link"):
        Recorder(link)
    assert victim.read_text() == "keep me"
    with pytest.raises(Exception, match="not a regular file"):
        Recorder(os.devnull)


def test_recording_into_proc_is_one_line():
    """--record /proc/version was an EIO traceback."""
    from ebpftop.recording import RecordingError

    with pytest.raises(RecordingError, match="cannot write /proc/version"):
        r = Recorder("/proc/version")
        r.write(sample_snapshot())


def test_a_reader_that_goes_away_is_quiet(tmp_path):
    import subprocess

    rec = tmp_path / "rec.jsonl"
    _record(rec, [sample_snapshot()] * 3)
    proc = subprocess.run(f"{sys.executable} -m ebpftop --replay {rec} --json --speed 100 | head -c 10",
                          shell=True, capture_output=True, text=True, timeout=60)
    assert proc.stderr == "" and len(proc.stdout) == 10  # a reader that went away: no BrokenPipeError


def test_missing_recording(tmp_path, capsys):
    assert cli.main(["--replay", str(tmp_path / "nope.jsonl")]) == 2
    assert "cannot read recording" in capsys.readouterr().err


def test_not_root(monkeypatch, capsys):
    monkeypatch.setattr(preflight.os, "geteuid", lambda: 1000)
    assert cli.main(["--json", "--count", "1"]) == 2
    err = capsys.readouterr().err
    assert err == "ebpftop: error: live collection needs root (CAP_BPF, CAP_PERFMON): run it with sudo, or use --replay FILE\n"


def test_bcc_missing(monkeypatch, capsys):
    monkeypatch.setattr(preflight.os, "geteuid", lambda: 0)
    monkeypatch.setitem(sys.modules, "bcc", None)  # import bcc -> ImportError
    assert cli.main(["--json"]) == 2
    assert "apt install python3-bpfcc" in capsys.readouterr().err


def test_headers_missing(monkeypatch, capsys):
    monkeypatch.setattr(preflight.os, "geteuid", lambda: 0)
    monkeypatch.setitem(sys.modules, "bcc", object())
    monkeypatch.setattr(preflight.platform, "release", lambda: "0.0.0-nonexistent")
    assert cli.main(["--json"]) == 2
    err = capsys.readouterr().err
    assert "kernel headers missing at /lib/modules/0.0.0-nonexistent/build" in err
    assert "linux-headers-0.0.0-nonexistent" in err


def test_tracefs_missing(monkeypatch, capsys, tmp_path):
    from ebpftop.sources import program

    monkeypatch.setattr(preflight.os, "geteuid", lambda: 0)
    monkeypatch.setitem(sys.modules, "bcc", object())
    monkeypatch.setattr(preflight.os.path, "isdir", lambda p: not str(p).endswith("events"))
    monkeypatch.setattr(program, "TRACEFS_DIRS", (str(tmp_path),))
    assert cli.main(["--json"]) == 2
    assert "mount -t tracefs nodev /sys/kernel/tracing" in capsys.readouterr().err


def test_missing_bpf_sources(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(preflight.os, "geteuid", lambda: 0)
    monkeypatch.setitem(sys.modules, "bcc", object())
    monkeypatch.setattr(preflight.os.path, "isdir", lambda p: True)
    from ebpftop.sources import program

    def missing():
        raise FileNotFoundError("ebpftop's eBPF sources (bpf/*.c) are missing from this installation")

    monkeypatch.setattr(program, "bpf_dir", missing)
    assert cli.main(["--json"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "eBPF sources" in err and "Traceback" not in err


def test_a_log_path_through_a_symlink_is_one_line(tmp_path, monkeypatch, capsys):
    """EBPFTOP_LOG is opened by root: never through a link another user planted."""
    rec = tmp_path / "rec.jsonl"
    _record(rec, [sample_snapshot()])
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    link = tmp_path / "log"
    link.symlink_to(victim)
    monkeypatch.setenv("EBPFTOP_LOG", str(link))
    assert cli.main(["--replay", str(rec)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "EBPFTOP_LOG" in err and "symbolic link" in err
    assert victim.read_text() == "keep me"


def _ten(tmp_path):
    """A recording of ten 5 s intervals, the first ending at 10:00:05 local time."""
    import datetime as dt

    t0 = dt.datetime(2026, 11, 25, 10, 0, 5).timestamp()
    rec = tmp_path / "rec.jsonl"
    _record(rec, [sample_snapshot(t=t0 + 5 * i) for i in range(10)])
    return rec, t0


@pytest.mark.parametrize("at, first", [("10:00:20", 3), ("10:00", 0), ("10:00:21", 4), ("-10s", 7), ("-1m", 0),
                                       ("-0s", 9)])
def test_replay_at_starts_there(tmp_path, capsys, at, first):
    from ebpftop.sources.replay import split_at

    rec, t0 = _ten(tmp_path)
    assert cli.main(["--replay", str(rec), "--json", "--at", at]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert len(lines) == 10 - first
    from ebpftop.recording import read_recording

    before, played = split_at(read_recording(rec), at)
    assert len(before) == first and played[0].time == t0 + 5 * first


@pytest.mark.parametrize("argv, message", [
    (["--at", "-5m"], "--at needs --replay"),
])
def test_at_without_replay_is_an_argparse_error(argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(argv)
    assert e.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize("at, message", [("11:00", "the recording covers 10:00:00 to 10:00:50"), ("25:00", "not a time of day"),
                                         ("yesterday", "give a time of day"), ("9:59", "the recording covers")])
def test_replay_at_outside_or_unreadable_is_one_line(tmp_path, capsys, at, message):
    rec, _ = _ten(tmp_path)
    assert cli.main(["--replay", str(rec), "--json", "--at", at]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and "Traceback" not in err


def test_a_trigger_writes_the_kept_window_and_the_next_intervals(tmp_path):
    from ebpftop import triggers
    from ebpftop.recording import read_recording
    from ebpftop.sets.file_opens import FileOpenRow
    from ebpftop.sources.flight import FlightRecorderSource, prepare_dir
    from ebpftop.sources.replay import ReplaySource
    from tests.unit.snapshots import replace

    # errors 0, 1, ... 9 in ten 5 s intervals: 'file_open_errors>=6' fires at the seventh
    snaps = [replace(sample_snapshot(t=1_764_000_000.0 + 5 * i), file_opens=(FileOpenRow("x", 1, "/e", 9, i),))
             for i in range(10)]
    source = FlightRecorderSource(ReplaySource(snaps), prepare_dir(str(tmp_path)), [triggers.parse("file_open_errors >= 6")],
                                  window_s=12.0, after_s=10.0)
    out = [source.poll() for _ in range(10)]
    source.close()
    files = sorted(tmp_path.iterdir())
    assert len(files) == 1 and files[0].name.endswith("-trigger-file-open-errors-6.jsonl"), files
    recorded = read_recording(files[0])
    # the kept window (12 s: the three intervals before), the one that fired, then 10 s more;
    # the later intervals fire again and extend it to the end
    assert [s.file_opens[0].errors for s in recorded] == [3, 4, 5, 6, 7, 8, 9]
    assert "file_open_errors >= 6" in out[6].notices[0] and str(files[0]) in out[6].notices[0]
    assert all(not s.notices for s in out[:6])


@pytest.mark.parametrize("expr, figure, ns", [("read_p99>10ms", "read_p99", 10_000_000), ("write_p50 <= 1.5us", "write_p50", 1500),
                                              ("lost>0", "lost", 0), ("syscalls_per_s>1e6", "syscalls_per_s", 1e6)])
def test_trigger_grammar(expr, figure, ns):
    from ebpftop import triggers

    t = triggers.parse(expr)
    assert (t.name, t.threshold) == (figure, ns)


def test_triggers_fire_on_the_snapshot_figures():
    from ebpftop import triggers

    snap = sample_snapshot()  # read p99 within [1M, 2M) ns: nginx's two slow reads
    assert triggers.parse("read_p99>1ms").fires(snap) and not triggers.parse("read_p99>2ms").fires(snap)
    assert triggers.parse("file_open_errors>=1").fires(snap) and not triggers.parse("tcp_new>3").fires(snap)


@pytest.mark.parametrize("name", ["rec.jsonl", "rec.jsonl.gz"])
def test_recordings_rotate_at_a_size_and_keep_the_last_files(tmp_path, name):
    from ebpftop.recording import Recorder, read_recording

    path = tmp_path / name
    one = len(dumps_of(sample_snapshot()))
    r = Recorder(path, max_bytes=(3 * one if name.endswith(".jsonl") else 1), keep=2)
    for i in range(10):
        r.write(sample_snapshot(t=1_764_000_000.0 + 5 * i))
    r.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    if name.endswith(".gz"):  # each snapshot compresses to more than a byte: a file each
        # the last one rotated too; the next interval would begin rec.jsonl.gz (none left empty meanwhile)
        assert files == ["rec.jsonl.1.gz", "rec.jsonl.2.gz"]
        assert [len(read_recording(tmp_path / f)) for f in ("rec.jsonl.2.gz", "rec.jsonl.1.gz")] == [1, 1]
        assert read_recording(tmp_path / "rec.jsonl.1.gz")[0].time == 1_764_000_045.0
    else:  # three a file: 0-2, 3-5, 6-8 rotated (the first deleted), 9 current
        assert files == ["rec.jsonl", "rec.jsonl.1", "rec.jsonl.2"]
        assert [s.time for s in read_recording(tmp_path / "rec.jsonl.2")] == [1_764_000_015.0 + 5 * i for i in range(3)]
        assert [s.time for s in read_recording(path)] == [1_764_000_045.0]
    assert all(oct(p.stat().st_mode & 0o777) == "0o600" for p in tmp_path.iterdir())


def dumps_of(snap) -> str:
    from ebpftop.recording import dumps

    return dumps(snap) + "\n"


def test_a_compressed_recording_replays_and_one_cut_short_keeps_its_whole_lines(tmp_path, capsys):
    from ebpftop.recording import Recorder, read_recording

    path = tmp_path / "rec.jsonl.gz"
    r = Recorder(path)
    for i in range(5):
        r.write(sample_snapshot(t=1_764_000_000.0 + 5 * i))
    r.close()
    assert cli.main(["--replay", str(path), "--json"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 5
    data = path.read_bytes()
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(data[:-40])  # ebpftop killed while writing the last line (later lines compress to little)
    got = read_recording(cut)
    assert len(got) == 4 and [s.time for s in got] == [1_764_000_000.0 + 5 * i for i in range(len(got))]
    assert "line 5 is cut short" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl.gz"
    bad.write_bytes(b"\x1f\x8bnot gzip at all")
    assert cli.main(["--replay", str(bad), "--json"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a readable gzip file" in err
