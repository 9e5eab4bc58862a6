"""The watchlist of sensitive files: paths whose every open becomes an alert.

The kernel matches the path string given to open()/openat()/openat2() (as
the program wrote it) against 64-bit FNV-1a hashes of the watched paths, and
of watched directories with their trailing '/', which cover every file
directly inside them.  A path that does not exist yet is watched all the same.
Known gap: a relative path ("shadow" opened from /etc), one through a symlink,
or one spelled differently ("/etc//shadow") is a different string and is not
matched."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

DEFAULT_WATCH = (
    "/etc/shadow",
    "/etc/gshadow",
    "/etc/sudoers",
    "/etc/sudoers.d/*",
    "/root/.ssh/*",
)

FNV_OFFSET = 14695981039346656037
FNV_PRIME = 1099511628211


class WatchError(Exception):
    pass


def syslog_message(alert) -> str:
    """An alert as --syslog writes it: one line, its names escaped (a name
    holding a newline would forge a second syslog line)."""
    from ebpftop.text import visible

    return (f"watched file opened: path={visible(alert.path)} result={visible(alert.result)} "
            f"pid={alert.pid} ppid={alert.ppid} uid={alert.uid} comm={visible(alert.comm)}")


def fnv1a64(data: bytes) -> int:
    """The hash bpf/file_opens.c computes over a path."""
    h = FNV_OFFSET
    for byte in data:
        h = ((h ^ byte) * FNV_PRIME) & 0xFFFFFFFFFFFFFFFF
    return h


def users_ssh_dirs() -> list[str]:
    """Every local user's ~/.ssh/ (their keys), from the password database."""
    dirs = []
    for entry in pwd.getpwall():
        home = entry.pw_dir
        if home and home.startswith("/") and home not in ("/", "/nonexistent") and os.path.isdir(home):
            dirs.append(os.path.join(home, ".ssh") + "/*")
    return sorted(set(dirs))


MAX_CONFIG_BYTES = 64 * 1024
MAX_ENTRIES = 4096  # the kernel map of watched hashes holds this many


def config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "ebpftop" / "watch"


def read_safely(path: Path, what: str = "watch list", error: type[Exception] = WatchError) -> str | None:
    """The file's text, read as root from a place a user may control
    (sudo -E keeps their HOME): only a regular file, not through a symlink,
    owned by root or the invoking user and writable by no one else, and at
    most 64 KiB.  None when it does not exist.  Errors are `error`, naming
    the file as `what`."""
    import stat

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as e:
        why = "it is a symbolic link" if e.errno == 40 else e.strerror  # ELOOP
        raise error(f"cannot read {what} {path}: {why}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise error(f"cannot read {what} {path}: not a regular file")
        from ebpftop.safefile import trusted_uids

        if st.st_uid not in trusted_uids() or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise error(f"cannot read {what} {path}: it must belong to root or you "
                        "and be writable by no one else")
        data = os.read(fd, MAX_CONFIG_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) > MAX_CONFIG_BYTES:
        raise error(f"{what} {path} is larger than {MAX_CONFIG_BYTES // 1024} KiB")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise error(f"{what} {path} is not UTF-8 text") from None


def read_config(path: Path) -> list[str]:
    """One path per line; '#' starts a comment; 'DIR/*' watches a directory.
    Errors name the file and line, never echo its content beyond that."""
    text = read_safely(path)
    if text is None:
        return []
    out = []
    for n, line in enumerate(text.splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if not line.startswith("/"):
            raise WatchError(f"watch list {path} line {n}: not an absolute path")
        out.append(line)
    return out


def normalize(entry: str) -> str:
    """'/d/*' and '/d/' watch the directory /d; anything else one path."""
    if entry.endswith("/*"):
        return entry[:-1]
    return entry


def hashes(entries) -> dict[int, str]:
    """hash -> watched entry, as the kernel map holds them."""
    out = {}
    for e in entries:
        n = normalize(e)
        out[fnv1a64(n.encode())] = e
    return out


def build(extra: list[str], defaults: bool = True, config: Path | None = None) -> list[str]:
    entries = list(DEFAULT_WATCH) + users_ssh_dirs() if defaults else []
    entries += read_config(config if config is not None else config_path())
    for e in extra:
        if not e.startswith("/"):
            raise WatchError(f"--watch needs an absolute path, not {e!r}")
        entries.append(e)
    entries = list(dict.fromkeys(entries))
    if len(entries) > MAX_ENTRIES:
        raise WatchError(f"{len(entries)} watched paths: at most {MAX_ENTRIES}")
    return entries
