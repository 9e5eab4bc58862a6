from __future__ import annotations

import json
import sys

import pytest

from ebpftop import cli, preflight
from ebpftop.recording import Recorder
from tests.unit.snapshots import sample_snapshot


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
        (["--pid", "0"], "must be at least 1"),
        (["--count", "2"], "--count needs --json"),
        (["--panes", "tcp,disk"], "unknown pane 'disk'"),
        (["--replay", "x", "--record", "y"], "cannot be combined"),
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


def test_truncated_last_line_after_good_ones(tmp_path, capsys):
    rec = tmp_path / "cut.jsonl"
    _record(rec, [sample_snapshot(), sample_snapshot()])
    data = rec.read_text()
    rec.write_text(data[: len(data) - 40])
    assert cli.main(["--replay", str(rec), "--json"]) == 2
    assert "line 2: truncated" in capsys.readouterr().err


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
    from ebpftop.sources import live

    monkeypatch.setattr(preflight.os, "geteuid", lambda: 0)
    monkeypatch.setitem(sys.modules, "bcc", object())
    monkeypatch.setattr(preflight.os.path, "isdir", lambda p: not str(p).endswith("events"))
    monkeypatch.setattr(live, "TRACEFS_DIRS", (str(tmp_path),))
    assert cli.main(["--json"]) == 2
    assert "mount -t tracefs nodev /sys/kernel/tracing" in capsys.readouterr().err


def test_missing_bpf_sources(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(preflight.os, "geteuid", lambda: 0)
    monkeypatch.setitem(sys.modules, "bcc", object())
    monkeypatch.setattr(preflight.os.path, "isdir", lambda p: True)
    from ebpftop.sources import live

    def missing():
        raise FileNotFoundError("ebpftop's eBPF sources (bpf/*.c) are missing from this installation")

    monkeypatch.setattr(live, "bpf_dir", missing)
    assert cli.main(["--json"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "eBPF sources" in err and "Traceback" not in err
