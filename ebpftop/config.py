"""The config file: /etc/ebpftop/config.toml, then the user's
~/.config/ebpftop/config.toml ($XDG_CONFIG_HOME; under sudo, the invoking
user's).  Its keys are the long options' names (``interval = 2``,
``watch = ["/etc/passwd"]``, ``probe-cost = true``); the user's file wins
over the system's, the command line over both.  Written by hand, never by
ebpftop.  Each file is read as the watch list is (watch.read_safely: not
through a link, owned by root or the user, writable by no one else), and a
key ebpftop does not know, or a value it refuses, is one error line naming
the file and the line."""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path

SYSTEM_PATH = Path("/etc/ebpftop/config.toml")
# one run's choices, not settings: never taken from a file
NOT_KEYS = frozenset({"help", "version", "replay", "at", "config", "no-config", "openmetrics"})


class ConfigError(Exception):
    pass


def user_path(env=os.environ) -> Path:
    """The user's file; as root under sudo, the user who ran sudo's (sudo
    resets HOME to root's, and that user's settings are what they expect)."""
    sudo_user = env.get("SUDO_USER", "")
    if os.geteuid() == 0 and sudo_user and sudo_user != "root":
        import pwd

        try:
            return Path(pwd.getpwnam(sudo_user).pw_dir) / ".config" / "ebpftop" / "config.toml"
        except KeyError:
            pass
    base = env.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "ebpftop" / "config.toml"


def _toml():
    try:
        import tomllib  # Python >= 3.11
    except ImportError:
        try:
            import tomli as tomllib  # the same parser, from PyPI, for older Pythons
        except ImportError:
            return None
    return tomllib


def read(path: Path, required: bool = False) -> dict[str, tuple[object, int]] | None:
    """key -> (value, its line) of one file; None when it does not exist,
    or, unless required (--config), when a directory on its way may not be
    searched by this user (a user's HOME of /root: not theirs)."""
    from ebpftop import watch

    if not required:
        try:
            os.stat(path)
        except FileNotFoundError:
            return None
        except PermissionError:
            return None
    text = watch.read_safely(path, "config file", ConfigError)
    if text is None:
        return None
    toml = _toml()
    if toml is None:
        raise ConfigError(f"{path}: reading it needs Python 3.11, or the tomli package")
    try:
        data = toml.loads(text)
    except toml.TOMLDecodeError as e:
        raise ConfigError(f"{path}: {e}") from None
    lines = text.splitlines()
    out = {}
    for key, value in data.items():
        out[key] = (value, _line_of(key, lines))
    return out


def _line_of(key: str, lines: list[str]) -> int:
    pattern = re.compile(r"^\s*(?:" + re.escape(key) + r"|\"" + re.escape(key) + r"\"|'" + re.escape(key) + r"')\s*[=\]]")
    header = re.compile(r"^\s*\[+\s*(?:" + re.escape(key) + r")\s*\]")
    for n, line in enumerate(lines, start=1):
        if pattern.match(line) or header.match(line):
            return n
    return 0


def _options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """Long option name (without --) -> its action."""
    out = {}
    for action in parser._actions:  # noqa: SLF001 - argparse has no public list of its options
        for s in action.option_strings:
            if s.startswith("--") and s[2:] not in NOT_KEYS:
                out[s[2:]] = action
    return out


def _given(action: argparse.Action, argv: list[str]) -> bool:
    """Whether the command line names this option (then it wins)."""
    for token in argv:
        if token == "--":
            break
        for s in action.option_strings:
            if token == s or token.startswith(s + "=") or (len(s) == 2 and token.startswith(s) and s[1] != "-"):
                return True
    return False


def _check(action: argparse.Action, text: str, where: str, key: str) -> None:
    if action.type is None:
        return
    try:
        action.type(text)
    except (argparse.ArgumentTypeError, ValueError, TypeError) as e:
        raise ConfigError(f"{where}: {key}: {e}") from None


def to_argv(parser: argparse.ArgumentParser, files: list[Path], argv: list[str], required: bool = False) -> list[str]:
    """The options the files set, as command-line words to put before argv
    (so that argv's own win); a list option (watch, trigger) given on the
    command line replaces the files' list."""
    options = _options(parser)
    merged: dict[str, tuple[object, str]] = {}
    for path in files:
        entries = read(path, required)
        for key, (value, line) in (entries or {}).items():
            where = f"{path} line {line}" if line else str(path)
            if key not in options:
                raise ConfigError(f"{where}: unknown key {key!r} (the keys are the long options' names, "
                                  f"as `ebpftop --help` lists them, without the --)")
            merged[key] = (value, where)
    words: list[str] = []
    for key, (value, where) in merged.items():
        action = options[key]
        if _given(action, argv):
            continue
        flag = f"--{key}"
        if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):  # noqa: SLF001
            if not isinstance(value, bool):
                raise ConfigError(f"{where}: {key} takes true or false")
            if value is (isinstance(action, argparse._StoreTrueAction)):  # noqa: SLF001
                words.append(flag)
        elif isinstance(action, argparse._AppendAction):  # noqa: SLF001
            items = value if isinstance(value, list) else [value]
            if not all(isinstance(x, str) for x in items):
                raise ConfigError(f"{where}: {key} takes a string or a list of strings")
            for x in items:
                _check(action, x, where, key)
                words += [f"{flag}={x}"]
        else:
            if isinstance(value, list) and all(isinstance(x, str) for x in value):
                value = ",".join(value)  # probe-sets = ["cpu", "disk"]
            if isinstance(value, bool) or not isinstance(value, (str, int, float)):
                raise ConfigError(f"{where}: {key} takes a single value (a number or a string)")
            _check(action, str(value), where, key)
            words.append(f"{flag}={value}")
    return words
