"""The man page ebpftop(8), generated from the argument parser so that a new
option appears in it without anyone writing it twice.  `python -m
ebpftop.manpage` prints it; docs/ebpftop.8 is its output (committed, so the
wheel ships it and `make setup` installs it), checked against the parser by
tests/unit/test_install.py.

The parser gives NAME, SYNOPSIS, DESCRIPTION, OPTIONS (grouped as the parser
groups them) and EXAMPLES (its epilog); FILES, ENVIRONMENT and EXIT STATUS
are written here, next to the modules they describe being named."""

from __future__ import annotations

import argparse
import re
import sys

from ebpftop import __version__, config

# Option names and command lines: every hyphen is a minus (\-), which is
# what a reader copies into a shell; roff's plain "-" is a typographic
# hyphen that groff may render as U+2010.
_DASHED_WORD = re.compile(r"(?<![\w/.])(--?[\w][\w.:\-]*)")

# What ebpftop reads from its environment (grep os.environ in ebpftop/: a
# unit test checks that every EBPFTOP_ variable read there is listed).
ENVIRONMENT = (
    ("EBPFTOP_LOG", "Where the TUI's standard error goes while it owns the terminal (default /dev/null): "
                    "a file is appended to, made 0600, never through a link."),
    ("XDG_CONFIG_HOME", "The directory of the user's config file and watch list (default ~/.config)."),
    ("SUDO_USER", "Under sudo, the config file read is this user's, not root's."),
    ("EBPFTOP_FORCE_FALLBACK", "Comma-separated kernel features to act as if missing (all for every one), "
                               "to try the fallbacks ebpftop uses on older kernels."),
    ("EBPFTOP_BPF_DIR", "Read the eBPF C sources from this directory instead of the installed ones."),
    ("EBPFTOP_STATE_ROOT", "Read the container runtimes' state files under this directory instead of / "
                           "(the tests' fixtures)."),
)

EXIT_STATUS = (
    ("0", "The --count intervals were printed, the replay ended, or the TUI was quit."),
    ("1", "An unexpected error ended it."),
    ("2", "A bad option or config file, or live tracing cannot start here (not root, a kernel "
          "older than 5.8, BCC missing, no probe could be loaded); one line on standard error says which."),
    ("130", "Interrupted (Ctrl-C) while starting."),
    ("128+N", "Ended by signal N (SIGTERM: 143, SIGHUP: 129), after detaching every probe."),
)

SEE_ALSO = ("top(1)", "htop(1)", "bpftool(8)", "bpftrace(8)")


def escape(text: str) -> str:
    """Text as roff reads it literally: backslashes, a leading dot or
    apostrophe (which would start a request), and characters beyond ASCII
    (groff reads its input as Latin-1 unless preconv runs first)."""
    text = text.replace("\\", "\\e")
    text = "".join(c if ord(c) < 128 else f"\\[u{ord(c):04X}]" for c in text)
    return "\n".join("\\&" + line if line.startswith((".", "'")) else line for line in text.split("\n"))


def _minus(text: str) -> str:
    return text.replace("-", "\\-")


def prose(text: str) -> str:
    """Escaped text whose option names (--interval, -5m) keep real minus
    signs and are never hyphenated (\\%), and whose lists without spaces
    (a,b,c) may break after a comma (\\:) rather than overrun the line."""
    text = _DASHED_WORD.sub(lambda m: "\\%" + _minus(m.group(1)), escape(text))
    return re.sub(r",(?=\S)", ",\\:", text)


def _bold(text: str) -> str:
    return f"\\fB\\%{_minus(escape(text))}\\fR"


def _italic(text: str) -> str:
    return f"\\fI{escape(text)}\\fR"


def option_heading(action: argparse.Action) -> str:
    """-i, --interval S: the names in bold, the value's metavar in italics."""
    names = ", ".join(_bold(s) for s in action.option_strings)
    if action.nargs == 0:
        return names
    if action.metavar is not None:
        metavar = action.metavar if isinstance(action.metavar, str) else " ".join(action.metavar)
    elif action.choices is not None:
        metavar = "{" + ",".join(map(str, action.choices)) + "}"
    else:
        metavar = action.dest.upper()
    value = _italic(metavar)
    if action.nargs == "?":
        value = f"[{value}]"
    return f"{names} {value}"


def _help(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    # what --help prints, %(default)s and the like expanded as argparse does
    return parser._get_formatter()._expand_help(action) if action.help else ""


def option_groups(parser: argparse.ArgumentParser) -> list[tuple[argparse._ArgumentGroup, list[argparse.Action]]]:
    """The parser's groups of options, in its order, without the empty ones
    and the hidden options (help=SUPPRESS)."""
    out = []
    for group in parser._action_groups:
        actions = [a for a in group._group_actions if a.option_strings and a.help is not argparse.SUPPRESS]
        if actions:
            out.append((group, actions))
    return out


def _examples(epilog: str | None) -> list[str]:
    """The epilog's "command   what it does" lines as tagged paragraphs; any
    other line as text."""
    lines = []
    for line in (epilog or "").splitlines():
        if not line.strip() or line.strip().rstrip(":").lower() == "examples":
            continue
        m = re.match(r"\s+(\S.*?)\s{2,}(\S.*)$", line)
        if m:
            lines += [".TP", f"\\fB{_minus(escape(m.group(1)))}\\fR", prose(m.group(2))]
        else:
            lines += [".PP", prose(line.strip())]
    return lines


def render(parser: argparse.ArgumentParser) -> str:
    prog = parser.prog
    out = [
        f'.\\" {prog}(8), generated from its argument parser by python -m ebpftop.manpage: do not edit.',
        f'.TH {prog.upper()} 8 "" "{prog} {__version__}" "System Manager\'s Manual"',
        # ragged right: a help's list without spaces (a,b,c) fills a line
        # that justification could not stretch
        ".ad l",
        ".SH NAME",
        f"{prog} \\- a top\\-like monitor of Linux kernel events from eBPF tracepoints",
        ".SH SYNOPSIS",
        f"\\fB{prog}\\fR [\\fIOPTION\\fR]...",
        ".br",
        f"\\fB{prog}\\fR \\fB\\-\\-json\\fR [\\fB\\-\\-count\\fR \\fIN\\fR] [\\fIOPTION\\fR]...",
        ".br",
        f"\\fB{prog}\\fR \\fB\\-\\-prometheus\\fR [\\fIADDR\\fR:]\\fIPORT\\fR [\\fB\\-\\-web\\-config\\fR \\fIFILE\\fR] [\\fIOPTION\\fR]...",
        ".br",
        f"\\fB{prog}\\fR \\fB\\-\\-replay\\fR \\fIFILE\\fR [\\fIOPTION\\fR]...",
        ".SH DESCRIPTION",
        prose(parser.description or ""),
        ".PP",
        prose(f"Live tracing needs root (or CAP_BPF and CAP_PERFMON), Linux 5.8 or later and BCC 0.18 or later, "
              f"whose Python bindings come from the distribution (Debian: python3-bpfcc). Without --json or "
              f"--prometheus, {prog} is a full-screen terminal program (press ? for its keys); --replay plays "
              f"a recording and needs no privilege."),
    ]
    for i, (group, actions) in enumerate(option_groups(parser)):
        if i == 0:
            out.append(".SH OPTIONS")
        if i > 0 or group.title not in ("options", "optional arguments"):
            out.append(f".SS {escape(group.title or '').capitalize()}")
        if group.description:
            out += [".PP", prose(group.description)]
        for action in actions:
            out += [".TP", option_heading(action), prose(_help(parser, action))]
    examples = _examples(parser.epilog)
    if examples:
        out += [".SH EXAMPLES", *examples]
    out += [
        ".SH FILES",
        ".TP",
        _italic(str(config.SYSTEM_PATH)),
        prose("The system's options: TOML, its keys the long options' names (interval = 2). "
              "Never written by ebpftop; read only if a regular file owned by root and writable by no one else."),
        ".TP",
        _italic("~/.config/ebpftop/config.toml"),
        prose("The user's options ($XDG_CONFIG_HOME), which win over the system's; the command line wins over both. "
              "--config FILE reads FILE instead, --no-config neither."),
        ".TP",
        _italic("~/.config/ebpftop/watch"),
        prose("More paths to alert on, one a line (as --watch)."),
        ".SH ENVIRONMENT",
    ]
    for name, what in ENVIRONMENT:
        out += [".TP", f"\\fB{escape(name)}\\fR", prose(what)]
    out.append(".SH EXIT STATUS")
    for status, what in EXIT_STATUS:
        out += [".TP", f"\\fB{escape(status)}\\fR", prose(what)]
    out += [".SH SEE ALSO", ", ".join(f"\\fB{escape(p.split('(')[0])}\\fR({p.split('(')[1]}" for p in SEE_ALSO)]
    return "\n".join(out) + "\n"


def main() -> int:
    from ebpftop.cli import build_parser

    sys.stdout.write(render(build_parser()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
