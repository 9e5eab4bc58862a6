from __future__ import annotations

from pathlib import Path

import pytest

from ebpftop import cli, watch


def test_fnv1a64_matches_the_reference_vectors():
    # FNV-1a 64-bit reference values
    assert watch.fnv1a64(b"") == 0xCBF29CE484222325
    assert watch.fnv1a64(b"a") == 0xAF63DC4C8601EC8C
    assert watch.fnv1a64(b"foobar") == 0x85944171F73967E8


def test_directory_entries_hash_the_prefix_with_its_slash():
    h = watch.hashes(["/etc/sudoers.d/*", "/etc/shadow"])
    assert h[watch.fnv1a64(b"/etc/sudoers.d/")] == "/etc/sudoers.d/*"
    assert h[watch.fnv1a64(b"/etc/shadow")] == "/etc/shadow"


def test_defaults_include_the_sensitive_files_and_users_keys(monkeypatch):
    monkeypatch.setattr(watch, "users_ssh_dirs", lambda: ["/home/alice/.ssh/*"])
    entries = watch.build([], config=None and None or __import__("pathlib").Path("/nonexistent/watch"))
    for e in ("/etc/shadow", "/etc/gshadow", "/etc/sudoers", "/etc/sudoers.d/*", "/root/.ssh/*", "/home/alice/.ssh/*"):
        assert e in entries


def test_config_file_lines_and_comments(tmp_path):
    conf = tmp_path / "watch"
    conf.write_text("# secrets\n/srv/keys/*   # the key dir\n\n/etc/app.conf\n")
    assert watch.build(["/opt/x"], defaults=False, config=conf) == ["/srv/keys/*", "/etc/app.conf", "/opt/x"]


def test_a_path_that_does_not_exist_is_still_watched(tmp_path):
    assert watch.build([str(tmp_path / "later")], defaults=False, config=tmp_path / "none") == [str(tmp_path / "later")]


def test_bad_config_is_one_error(tmp_path):
    conf = tmp_path / "watch"
    conf.write_text("relative/path\n")
    with pytest.raises(watch.WatchError, match="line 1: not an absolute path"):
        watch.build([], defaults=False, config=conf)
    conf.write_bytes(b"\xff\xfe")
    with pytest.raises(watch.WatchError, match="is not UTF-8 text"):
        watch.build([], defaults=False, config=conf)


def test_unreadable_config_through_the_cli(tmp_path, monkeypatch, capsys):
    from ebpftop import preflight

    monkeypatch.setattr(preflight, "check_live", lambda: None)
    (tmp_path / "ebpftop").mkdir()
    (tmp_path / "ebpftop" / "watch").mkdir()  # a directory: cannot be read as a file
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert cli.main(["--json", "--count", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ebpftop: error: cannot read watch list") and err.count("\n") == 1


def test_relative_watch_argument(monkeypatch, capsys, tmp_path):
    from ebpftop import preflight

    monkeypatch.setattr(preflight, "check_live", lambda: None)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert cli.main(["--json", "--watch", "shadow"]) == 2
    assert "--watch needs an absolute path" in capsys.readouterr().err


def test_the_watch_file_is_read_safely_as_root(tmp_path):
    """Under sudo -E the config path comes from the user: a symlink to
    /etc/shadow printed its first line, a FIFO blocked start-up, /dev/zero
    exhausted memory, and 4,096+ entries gave a traceback."""
    import os

    from ebpftop.watch import WatchError, read_config

    secret = tmp_path / "secret"
    secret.write_text("root:$6$hash:19000::::::\n")
    link = tmp_path / "link"
    link.symlink_to(secret)
    with pytest.raises(WatchError, match="symbolic link") as e:
        read_config(link)
    assert "$6$" not in str(e.value)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(WatchError, match="not a regular file"):
        read_config(fifo)
    with pytest.raises(WatchError, match="not a regular file"):
        read_config(Path("/dev/zero"))
    big = tmp_path / "big"
    big.write_text("/x\n" * 30000)
    with pytest.raises(WatchError, match="larger than 64 KiB"):
        read_config(big)
    shared = tmp_path / "shared"
    shared.write_text("/etc/hosts\n")
    shared.chmod(0o666)
    with pytest.raises(WatchError, match="writable by no one else"):
        read_config(shared)
    bad = tmp_path / "bad"
    bad.write_text("root:$6$hash\n")
    with pytest.raises(WatchError) as e:
        read_config(bad)
    assert "$6$" not in str(e.value)  # the line is named, not echoed


def test_at_most_4096_watched_paths(tmp_path):
    from ebpftop.watch import WatchError, build

    with pytest.raises(WatchError, match="at most 4096"):
        build([f"/w/{i}" for i in range(5000)], defaults=False, config=tmp_path / "none")
