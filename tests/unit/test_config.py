"""The config file: keys are the long options, the command line wins, and
a bad file is one error line naming the file and the line."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ebpftop import cli, config
from tests.unit.snapshots import sample_snapshot
from tests.unit.test_cli import _record


def _file(tmp_path, text: str, name: str = "config.toml"):
    f = tmp_path / name
    f.write_text(text)
    f.chmod(0o644)
    return f


def _args(files, argv=()):
    parser = cli.build_parser()
    return parser.parse_args(config.to_argv(parser, list(files), list(argv)) + list(argv))


def test_the_file_sets_the_interval_and_a_watch_path_and_the_command_line_wins(tmp_path):
    f = _file(tmp_path, 'interval = 2\nwatch = ["/etc/passwd", "/srv/secret/*"]\nprobe-cost = true\n'
                        'probe-sets = ["cpu", "disk"]\nslow-io = 2.5\n')
    args = _args([f])
    assert args.interval == 2.0 and args.watch == ["/etc/passwd", "/srv/secret/*"] and args.probe_cost is True
    assert args.probe_sets == ("cpu", "disk") and args.slow_io == 2.5
    args = _args([f], ["-i", "3", "--watch", "/x"])
    assert args.interval == 3.0 and args.watch == ["/x"]  # a list given on the command line replaces the file's
    assert _args([f], ["--interval=4"]).interval == 4.0


def test_the_users_file_wins_over_the_systems(tmp_path):
    system = _file(tmp_path, "interval = 2\nsyslog = true\n", "system.toml")
    user = _file(tmp_path, "interval = 7\nsyslog = false\n", "user.toml")
    args = _args([system, user])
    assert args.interval == 7.0 and args.syslog is False


def test_a_replay_is_filtered_as_the_file_says(tmp_path, capsys):
    rec = tmp_path / "rec.jsonl"
    _record(rec, [sample_snapshot()])
    f = _file(tmp_path, "# only nginx\ncomm = \"nginx\"\n")
    assert cli.main(["--config", str(f), "--replay", str(rec), "--json"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert {r["comm"] for r in lines[0]["syscalls"]} == {"nginx"}


@pytest.mark.parametrize("text, message", [
    ("interval = 2\nintervall = 3\n", "line 2: unknown key 'intervall' (the keys are the long options' names"),
    ("\n\ninterval = -1\n", "line 3: interval: "),
    ('interval = "soon"\n', "line 1: interval: not a number: 'soon'"),
    ("probe-cost = \"yes\"\n", "line 1: probe-cost takes true or false"),
    ("watch = [1, 2]\n", "line 1: watch takes a string or a list of strings"),
    ("interval = [1]\n", "line 1: interval takes a single value"),
    ("[interval]\nx = 1\n", "line 1: interval takes a single value"),
    ("replay = \"x.jsonl\"\n", "line 1: unknown key 'replay'"),
    ("interval = = 2\n", "(at line 1, column 12)"),
    ("trigger = [\"nonsense>1\"]\n", "line 1: trigger: "),
])
def test_a_bad_file_is_one_error_line_naming_the_file_and_line(tmp_path, capsys, text, message):
    f = _file(tmp_path, text)
    assert cli.main(["--config", str(f), "--json"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"ebpftop: error: {f}") and message in err, err


def test_a_file_others_can_write_or_a_link_is_refused(tmp_path, capsys):
    f = _file(tmp_path, "interval = 2\n")
    f.chmod(0o666)
    assert cli.main(["--config", str(f), "--json"]) == 2
    assert "it must belong to root or you and be writable by no one else" in capsys.readouterr().err
    f.chmod(0o644)
    link = tmp_path / "link.toml"
    link.symlink_to(f)
    assert cli.main(["--config", str(link), "--json"]) == 2
    assert "it is a symbolic link" in capsys.readouterr().err
    assert cli.main(["--config", str(tmp_path / "missing.toml"), "--json"]) == 2
    assert "No such file" in capsys.readouterr().err


def test_no_config_reads_none_and_help_never_fails_on_a_bad_file(tmp_path, monkeypatch, capsys):
    f = _file(tmp_path, "nonsense = 1\n")
    monkeypatch.setattr(config, "SYSTEM_PATH", f)
    rec = tmp_path / "rec.jsonl"
    _record(rec, [sample_snapshot()])
    assert cli.main(["--no-config", "--replay", str(rec), "--json"]) == 0
    with pytest.raises(SystemExit) as done:
        cli.main(["--help"])
    assert done.value.code == 0


def test_under_sudo_the_users_file_is_the_invoking_users(monkeypatch):
    import pwd

    monkeypatch.setattr(os, "geteuid", lambda: 0)
    me = pwd.getpwuid(os.getuid()).pw_name if os.getuid() else "nobody"
    home = pwd.getpwnam(me).pw_dir
    assert config.user_path({"SUDO_USER": me, "HOME": "/root"}) == Path(home) / ".config" / "ebpftop" / "config.toml"
    assert str(config.user_path({"XDG_CONFIG_HOME": "/cfg"})) == "/cfg/ebpftop/config.toml"


def test_a_default_file_behind_a_directory_this_user_cannot_search_is_absent_but_a_named_one_is_an_error(tmp_path):
    # a user running ebpftop with HOME=/root (sudo's environment kept, su without -) reads no config of root's
    locked = tmp_path / "locked"
    locked.mkdir()
    path = locked / "config.toml"
    path.write_text("interval = 2\n")
    locked.chmod(0)
    try:
        if os.geteuid() == 0:
            assert config.read(path) == {"interval": (2, 1)}  # root searches any directory
            return
        assert config.read(path) is None
        with pytest.raises(config.ConfigError, match="Permission denied"):
            config.read(path, required=True)
    finally:
        locked.chmod(0o700)
