from __future__ import annotations

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
    with pytest.raises(watch.WatchError, match="cannot read watch list"):
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
