"""What an installation brings besides the program, generated from the
argument parser so they cannot drift from it: the man page ebpftop(8)
(docs/ebpftop.8) and the bash completion (docs/ebpftop.bash), both
committed, shipped in the wheel and installed by `make setup`.  The page
renders without a groff warning and holds every option with its help; the
completion, run in a real bash, completes options, choices, files, the
probe sets and running process names, and never expands a hostile name.
The wheel and pipx themselves: tests/kernel/test_install.py."""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ebpftop import cli, completion, manpage, sets

REPO = Path(__file__).resolve().parents[2]
MAN_PAGE = REPO / "docs" / "ebpftop.8"
COMPLETION = REPO / "docs" / "ebpftop.bash"


def _need(tool: str, package: str) -> str:
    path = shutil.which(tool)
    if path is None:
        reason = f"needs {tool} (Debian: apt-get install {package}, or make test-packages)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI must run every test")
        pytest.skip(reason)
    return path


def _options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if a.option_strings and a.help is not argparse.SUPPRESS]


# -- the man page ---------------------------------------------------------------


@pytest.mark.parametrize("module, committed", [("ebpftop.manpage", MAN_PAGE), ("ebpftop.completion", COMPLETION)])
def test_the_committed_file_is_what_the_generator_makes_of_the_parser(module, committed):
    out = subprocess.run([sys.executable, "-m", module], cwd=REPO, check=True, capture_output=True, text=True).stdout
    assert out == committed.read_text(), f"{committed.relative_to(REPO)} is stale: make generated"


def groff(page: str, *args: str) -> tuple[str, str]:
    """The page as man shows it, in plain ASCII (no overstriking, no
    hyphenation), and what groff warned of (-ww: every warning)."""
    done = subprocess.run([_need("groff", "groff-base"), "-man", "-Tascii", "-ww", "-rHY=0",
                           "-P-c", "-P-b", "-P-u", "-P-o", *args],
                          input=page, capture_output=True, text=True, check=True)
    return done.stdout, done.stderr


@pytest.mark.parametrize("width", ["-rLL=80n", "-rLL=60n", "-rLL=200n"])
def test_the_page_renders_without_a_warning(width):
    text, warnings = groff(MAN_PAGE.read_text(), width)
    assert warnings == ""
    for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "EXAMPLES", "FILES", "ENVIRONMENT",
                    "EXIT STATUS", "SEE ALSO"):
        assert re.search(rf"^{section}$", text, re.M), section


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_every_option_is_in_the_page_with_its_value_and_its_help():
    parser = cli.build_parser()
    page = MAN_PAGE.read_text()
    text = _flat(groff(page, "-rLL=200n")[0])
    for action in _options(parser):
        heading = manpage.option_heading(action)
        assert f".TP\n{heading}\n" in page, action.option_strings
        shown = ", ".join(action.option_strings)
        if action.nargs != 0:
            value = action.metavar or ("{" + ",".join(map(str, action.choices)) + "}" if action.choices else action.dest.upper())
            shown += " " + (f"[{value}]" if action.nargs == "?" else value)
        assert shown in text, shown
        assert _flat(parser._get_formatter()._expand_help(action)) in text, action.option_strings
    # option names are minus signs, never hyphens that groff may typeset as U+2010
    assert "\\fB\\%\\-\\-interval\\fR" in page and "\\fB--" not in page


def test_the_epilogs_examples_and_the_files_are_in_the_page():
    text = _flat(groff(MAN_PAGE.read_text(), "-rLL=200n")[0])
    examples = [line.strip() for line in cli.EPILOG.splitlines() if line.startswith("  ")]
    assert examples
    for line in examples:
        command, what = re.split(r"\s{2,}", line, maxsplit=1)
        assert f"{command} {what}" in text, line
    assert "/etc/ebpftop/config.toml" in text and "~/.config/ebpftop/config.toml" in text


def test_every_environment_variable_ebpftop_reads_is_in_the_page():
    read = set()
    for path in (REPO / "ebpftop").rglob("*.py"):
        source = path.read_text()
        read |= set(re.findall(r"environ(?:\.get)?[(\[]\s*\"(EBPFTOP_\w+)\"", source))
        read |= set(re.findall(r"^\w+_ENV = \"(EBPFTOP_\w+)\"", source, re.M))
    assert {"EBPFTOP_LOG", "EBPFTOP_FORCE_FALLBACK", "EBPFTOP_BPF_DIR"} <= read
    text = groff(MAN_PAGE.read_text())[0]
    assert read <= {name for name, _ in manpage.ENVIRONMENT}
    for name in read:
        assert re.search(rf"^ +{name}$", text, re.M), name


def test_help_text_reaches_the_page_literally_whatever_it_holds():
    """roff's specials in a help text: a leading dot or apostrophe (a
    request), backslashes, non-ASCII, and the forms an option may take."""
    p = argparse.ArgumentParser(prog="ebpftop", description=".TH looks like a request\n'also this",
                                epilog="examples:\n  ebpftop --mode udp   a \\fBbackslash\\fR stays")
    p.add_argument("--mode", choices=["tcp", "udp"], help=".starts with a dot, ≥ 5 µs, C:\\temp, %(default)s")
    p.add_argument("--instance", nargs="?", const="", metavar="NAME", help="'quoted at the start")
    p.add_argument("--secret", help=argparse.SUPPRESS)
    g = p.add_argument_group("tracing", "what to trace")
    g.add_argument("-x", "--max-x", type=int, default=3, metavar="N", help="at most N (default %(default)s)")
    text, warnings = groff(manpage.render(p), "-rLL=200n", "-Tutf8", "-k")
    assert warnings == ""
    assert ".TH looks like a request 'also this" in _flat(text)
    assert "--mode {tcp,udp}" in text and ".starts with a dot, ≥ 5 µs, C:\\temp, None" in text
    assert "--instance [NAME]" in text and "'quoted at the start" in text
    assert "secret" not in text  # a hidden option stays hidden
    assert re.search(r"^   Tracing$", text, re.M) and "what to trace" in text
    assert "-x, --max-x N" in text and "at most N (default 3)" in text
    assert "a \\fBbackslash\\fR stays" in text


def test_escape():
    assert manpage.escape(".B x\n'y\nz.") == "\\&.B x\n\\&'y\nz."
    assert manpage.escape("a\\b") == "a\\eb"
    assert manpage.escape("≥") == "\\[u2265]"
    assert manpage.prose("--record-keep and -5m, a-b") == "\\%\\-\\-record\\-keep and \\%\\-5m, a-b"
    assert manpage.prose("a,b,c") == "a,\\:b,\\:c"


# -- the bash completion ----------------------------------------------------------


def complete(script: str, *words: str, cwd: Path | None = None) -> list[str]:
    """COMPREPLY of the completion function, in a real bash, for the
    command line `words` (the last is the word being completed)."""
    bash = _need("bash", "bash")
    done = subprocess.run(
        [bash, "--norc", "--noprofile", "-c",
         'source /dev/stdin || exit 9; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMPREPLY=(); '
         '_ebpftop || exit 8; [ ${#COMPREPLY[@]} -eq 0 ] || printf "%s\\0" "${COMPREPLY[@]}"',
         "bash", *words],
        input=script, capture_output=True, text=True, cwd=cwd, timeout=30)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    return sorted(done.stdout.split("\0")[:-1])


@pytest.fixture(scope="module")
def script() -> str:
    return COMPLETION.read_text()


def test_it_registers_for_ebpftop(script):
    done = subprocess.run([_need("bash", "bash"), "--norc", "-c", 'source /dev/stdin; complete -p ebpftop'],
                          input=script, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "complete -F _ebpftop ebpftop"


def test_option_names(script):
    assert complete(script, "ebpftop", "--inter") == ["--interval"]
    assert complete(script, "ebpftop", "--json", "--record") == ["--record", "--record-keep", "--record-max-size"]
    every = [s for a in _options(cli.build_parser()) for s in a.option_strings]
    assert complete(script, "ebpftop", "-") == sorted(every)
    assert complete(script, "ebpftop", "") == sorted(every)  # no positional arguments
    for name in every:
        assert name in complete(script, "ebpftop", name)


def test_a_number_gets_nothing_and_an_optional_value_the_next_option(script):
    assert complete(script, "ebpftop", "--interval", "") == []
    assert complete(script, "ebpftop", "--interval", "-") == []
    assert complete(script, "ebpftop", "--replay", "x", "--openmetrics", "--js") == ["--json"]
    assert complete(script, "ebpftop", "--replay", "x", "--openmetrics", "") == []


def test_the_probe_sets_a_comma_separated_list(script):
    assert complete(script, "ebpftop", "--probe-sets", "") == sorted(sets.NAMES)
    assert complete(script, "ebpftop", "--probe-sets", "cpu,tcp_") == ["cpu,tcp_traffic"]
    assert complete(script, "ebpftop", "--panes", "cpu,d") == ["cpu,disk", "cpu,drops"]


def test_choices_as_the_parser_declares_them():
    p = argparse.ArgumentParser(prog="ebpftop")
    p.add_argument("--sort", choices=["count", "cpu", "bytes it's"])
    script = completion.render(p)
    assert complete(script, "ebpftop", "--sort", "c") == ["count", "cpu"]
    assert complete(script, "ebpftop", "--sort", "") == ["bytes\\ it\\'s", "count", "cpu"]
    for action in _options(cli.build_parser()):  # and the real parser's, if it has any
        if action.choices is not None:
            got = complete(COMPLETION.read_text(), "ebpftop", action.option_strings[-1], "")
            assert got == sorted(re.sub(r"([^\w,./:@%+-])", r"\\\1", str(c)) for c in action.choices)


def test_files_and_directories(script, tmp_path):
    (tmp_path / "a recording.jsonl").write_text("")
    (tmp_path / "flights").mkdir()
    assert complete(script, "ebpftop", "--replay", "a", cwd=tmp_path) == ["a recording.jsonl"]
    assert complete(script, "ebpftop", "--replay", "=", cwd=tmp_path) == ["a recording.jsonl", "flights"]
    assert complete(script, "ebpftop", "--record", "=", "a", cwd=tmp_path) == ["a recording.jsonl"]
    assert complete(script, "ebpftop", "--flight-recorder", "", cwd=tmp_path) == ["flights"]
    assert complete(script, "ebpftop", "--config", f"{tmp_path}/f") == [f"{tmp_path}/flights"]


def test_running_process_names_and_a_hostile_one_is_never_expanded(script, tmp_path):
    """--comm completes the names in /proc/*/comm; a process may name itself
    $(touch pwned), and root's shell completing it must not run that."""
    hostile = "$(touch pwned)"
    binary = tmp_path / hostile
    shutil.copy("/bin/sleep", binary)
    proc = subprocess.Popen([str(binary), "30"])
    try:
        for _ in range(100):
            if Path(f"/proc/{proc.pid}/comm").read_text().strip() == hostile:
                break
        got = complete(script, "ebpftop", "--comm", "$(to", cwd=tmp_path)
        mine = Path("/proc/self/comm").read_text().strip()  # pytest's python
        assert mine in complete(script, "ebpftop", "--comm", "", cwd=tmp_path)
    finally:
        proc.kill()
        proc.wait()
    assert got == ["\\$\\(touch\\ pwned\\)"]  # quoted as typed, so the shell takes it literally
    assert not (tmp_path / "pwned").exists()
