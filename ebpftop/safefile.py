"""Every file ebpftop writes as root (recordings and their rotation, the
flight recorder's, the EBPFTOP_LOG log) is made under one rule, so that no
other user can read what it writes or make it write into a file of theirs:

- its directory, and every directory above it, belongs to root, to you (the
  effective user) or to the user who ran sudo (SUDO_UID); the directory
  itself is writable by no one else, and those above it by no one else
  either unless sticky (/tmp may lead to a private directory, as in
  /tmp/root-only/), since a sticky directory lets no one rename what is not
  theirs.  Otherwise ebpftop refuses the directory, before it starts;
- the directory is held open, and every name is opened relative to it, so
  that nothing renamed meanwhile changes where the files go;
- a file is created new (O_CREAT|O_EXCL|O_NOFOLLOW), 0600: never opened if
  it exists, never through a symbolic link; where a fixed name is wanted
  (--record FILE), under a temporary name first, then renamed over FILE, so
  that an existing FILE is replaced, never truncated or written into.

The kernel's fs.protected_regular and fs.protected_symlinks would stop some
of what this prevents; ebpftop does not count on them (some systems turn
them off)."""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

ADVICE = "choose a directory only root (or you) can write, such as /var/log/ebpftop or your home directory"
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class UnsafePathError(Exception):
    """A directory or file the rule refuses, or that cannot be made; the
    message is one line naming it and why."""


def trusted_uids() -> frozenset[int]:
    """Whose directories and files ebpftop uses: root's, the effective
    user's, and those of the user who ran sudo."""
    uids = {0, os.geteuid()}
    sudo_uid = os.environ.get("SUDO_UID", "")
    if sudo_uid.isdigit():
        uids.add(int(sudo_uid))
    return frozenset(uids)


def _owner(uid: int) -> str:
    import pwd

    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"


def why_untrusted(st: os.stat_result, *, final: bool, trusted: frozenset[int]) -> str | None:
    """Why a directory with this stat may not hold root's files (final: the
    directory itself; else one above it); None if it may."""
    mode = stat.S_IMODE(st.st_mode)
    if st.st_uid not in trusted:
        return f"it belongs to {_owner(st.st_uid)}"
    writable = mode & (stat.S_IWGRP | stat.S_IWOTH)
    if writable and (final or not mode & stat.S_ISVTX):
        who = "others" if mode & stat.S_IWOTH else "its group"
        return f"it is writable by {who} (mode {mode:04o})"
    return None


class TrustedDir:
    """A directory under the rule above, held open by a file descriptor:
    every file of a recording is made and renamed relative to it."""

    def __init__(self, path: str | Path, *, what: str, create: bool = False):
        """what: the option that names it, for the messages ("--record
        FILE"); create: make it (0700) and any missing
        parents.  UnsafePathError when the rule refuses it."""
        self.path = Path(path)
        self.fd = _open_trusted(self.path, what, create)

    def open_new(self, name: str) -> int:
        """A new file of that name, 0600, for writing; FileExistsError if the
        name is taken (by anything: a file, a link, a directory)."""
        return os.open(name, _NEW_FILE_FLAGS, 0o600, dir_fd=self.fd)

    def kind(self, name: str) -> str | None:
        """'file' (a regular file), 'link', 'directory', 'other' or None (no such entry)."""
        try:
            st = os.stat(name, dir_fd=self.fd, follow_symlinks=False)
        except FileNotFoundError:
            return None
        if stat.S_ISREG(st.st_mode):
            return "file"
        if stat.S_ISLNK(st.st_mode):
            return "link"
        return "directory" if stat.S_ISDIR(st.st_mode) else "other"

    def replace_with_new(self, name: str) -> int:
        """A new file that has taken the place of NAME (if NAME was a regular
        file, it is replaced, its content untouched; a link, a directory or
        a device there is refused with UnsafePathError)."""
        kind = self.kind(name)
        if kind == "link":
            raise UnsafePathError(f"cannot write {self.path / name}: it is a symbolic link")
        if kind not in (None, "file"):
            raise UnsafePathError(f"cannot write {self.path / name}: not a regular file")
        attempt = None  # the temporary name being made: ours if it exists (random, in our own directory)
        fd = -1
        try:
            for _ in range(100):
                attempt = f".{name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
                try:
                    fd = os.open(attempt, _NEW_FILE_FLAGS, 0o600, dir_fd=self.fd)
                    break
                except FileExistsError:
                    attempt = None  # not ours
            else:
                raise FileExistsError(f"no free temporary name in {self.path}")
            os.replace(attempt, name, src_dir_fd=self.fd, dst_dir_fd=self.fd)
        except BaseException:
            # an error, or a signal (SIGTERM unwinds as SystemExit), even one
            # handled as os.open returns, before fd is assigned: no stray file
            if attempt is not None:
                self.unlink(attempt)
            if fd >= 0:
                os.close(fd)
            raise
        return fd

    def replace(self, src: str, dst: str) -> None:
        os.replace(src, dst, src_dir_fd=self.fd, dst_dir_fd=self.fd)

    def inode(self, name: str) -> int | None:
        try:
            return os.stat(name, dir_fd=self.fd, follow_symlinks=False).st_ino
        except FileNotFoundError:
            return None

    def unlink(self, name: str) -> None:
        try:
            os.unlink(name, dir_fd=self.fd)
        except FileNotFoundError:
            pass

    def free_bytes(self) -> int:
        """What the file system it is on has free for ordinary users."""
        st = os.fstatvfs(self.fd)
        return st.f_bavail * st.f_frsize

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _open_trusted(path: Path, what: str, create: bool) -> int:
    """The directory, opened one component at a time from / without
    following links (the path's own links resolved first, and the
    directories they lead through checked), each checked by its open file."""
    trusted = trusted_uids()
    real = os.path.realpath(path)
    parts = [p for p in real.split("/") if p]
    fd = os.open("/", _DIR_FLAGS)
    here = "/"
    try:
        for i in range(len(parts) + 1):
            final = i == len(parts)
            why = why_untrusted(os.fstat(fd), final=final, trusted=trusted)
            if why:
                where = "" if final else f"{here}, above it: "
                raise UnsafePathError(f"{what}: refusing the directory {path}: {where}{why}; {ADVICE}")
            if final:
                return fd
            part = parts[i]
            try:
                nxt = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise UnsafePathError(f"{what}: the directory {path} does not exist") from None
                try:
                    os.mkdir(part, 0o700, dir_fd=fd)
                except FileExistsError:
                    pass  # made meanwhile: opened and checked below like any other
                nxt = os.open(part, _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = nxt
            here = os.path.join(here, part)
    except OSError as e:
        os.close(fd)
        why = "it is a symbolic link" if e.errno == 40 else e.strerror  # ELOOP: replaced by a link meanwhile
        raise UnsafePathError(f"{what}: cannot use the directory {path}: {why}") from None
    except BaseException:
        os.close(fd)
        raise
    raise AssertionError("unreachable")


def open_log(path: str) -> int:
    """EBPFTOP_LOG, appended to: /dev/null as it is; elsewhere a file under
    the rule above, made 0600 if missing, and if it exists, a regular file
    of root's or yours (never a link, a FIFO or a device, never another
    user's file)."""
    if path == os.devnull:
        return os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    p = Path(path)
    directory = TrustedDir(p.parent, what=f"EBPFTOP_LOG={path}")
    try:
        try:
            fd = os.open(p.name, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK,
                         0o600, dir_fd=directory.fd)
        except OSError as e:
            why = "it is a symbolic link" if e.errno == 40 else e.strerror  # ELOOP
            raise UnsafePathError(f"EBPFTOP_LOG={path}: cannot write it: {why}") from None
    finally:
        directory.close()
    st = os.fstat(fd)
    why = None
    if not stat.S_ISREG(st.st_mode):
        why = "not a regular file"
    elif st.st_uid not in trusted_uids():
        why = f"it belongs to {_owner(st.st_uid)}"
    if why:
        os.close(fd)
        raise UnsafePathError(f"EBPFTOP_LOG={path}: cannot write it: {why}")
    os.set_blocking(fd, True)
    return fd
