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


def config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "ebpftop" / "watch"


def read_config(path: Path) -> list[str]:
    """One path per line; '#' starts a comment; 'DIR/*' watches a directory."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as e:
        raise WatchError(f"cannot read watch list {path}: {getattr(e, 'strerror', None) or e}") from None
    out = []
    for n, line in enumerate(text.splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if not line.startswith("/"):
            raise WatchError(f"watch list {path} line {n}: not an absolute path: {line!r}")
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
    return list(dict.fromkeys(entries))
