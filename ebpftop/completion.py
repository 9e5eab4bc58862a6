"""bash completion for ebpftop, generated from the argument parser so that a
new option completes without anyone writing it twice.  `python -m
ebpftop.completion` prints it; docs/ebpftop.bash is its output (committed,
so the wheel ships it and `make setup` installs it), checked against the
parser by tests/unit/test_install.py.

It completes option names; a value by what the option takes: its choices,
a file (FILE, PATH) or a directory (DIR) by its metavar, the probe sets'
names (a comma-separated list), the names of running processes for
--comm; nothing for a number.  It needs no bash-completion package.

Process names are anyone's to choose (prctl, or an executable's name), and
this runs in root's shell: no candidate ever goes through `compgen -W`,
which would expand a name like `$(reboot)`.  They are matched as plain
strings in bash and quoted with printf %q."""

from __future__ import annotations

import argparse
import sys

from ebpftop import sets

# A value's completion by the option's dest, where the metavar does not say.
BY_DEST = {
    "comm": "process",
    "probe_sets": "probe_sets",
}
BY_METAVAR = {"FILE": "file", "PATH": "file", "DIR": "directory"}


def value_kind(action: argparse.Action) -> str:
    """How the value of an option is completed: "choices", "file",
    "directory", "process", "probe_sets", or "none" (a number, a name)."""
    if action.choices is not None:
        return "choices"
    if action.dest in BY_DEST:
        return BY_DEST[action.dest]
    return BY_METAVAR.get(action.metavar if isinstance(action.metavar, str) else "", "none")


def _options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if a.option_strings and a.help is not argparse.SUPPRESS]


def _word_list(words) -> str:
    """A bash array's elements: each single-quoted, a quote inside as '\\''."""
    return " ".join("'" + str(w).replace("'", "'\\''") + "'" for w in words)


def render(parser: argparse.ArgumentParser) -> str:
    prog = parser.prog
    fn = "_" + prog.replace("-", "_")
    options = _options(parser)
    cases = []
    for action in options:
        if action.nargs == 0:
            continue
        kind = value_kind(action)
        pattern = "|".join(action.option_strings)
        if kind == "choices":
            body = f"{fn}_match \"$cur\" {_word_list(action.choices)}; "
        elif kind in ("file", "directory"):
            # one name a line (a name with a space stays one); readline quotes them
            body = f"mapfile -t COMPREPLY < <(compgen -{kind[0]} -- \"$cur\"); compopt -o filenames 2>/dev/null; "
        elif kind == "process":
            body = f"{fn}_processes \"$cur\"; "
        elif kind == "probe_sets":
            body = f"{fn}_list \"$cur\" {_word_list(sets.NAMES)}; "
        else:
            body = ""  # a number or a free-form name: nothing to offer
        if action.nargs == "?":
            # the value is optional: a word starting with - is the next option
            body = f"[[ $cur == -* ]] || {{ {body}return 0; }}"
        else:
            body += "return 0"
        cases.append(f"        {pattern}) {body} ;;")
    names = [s for a in options for s in a.option_strings]
    return f"""\
# bash completion for {prog}, generated from its argument parser by
# python -m ebpftop.completion: do not edit.

# COMPREPLY: the words among the rest that start with $1, quoted for the shell.
{fn}_match() {{
    local cur=$1 word q
    shift
    COMPREPLY=()
    for word in "$@"; do
        [[ $word == "$cur"* ]] || continue
        printf -v q '%q' "$word"
        COMPREPLY+=("$q")
    done
}}

# The names of running processes (each read as a plain string, never expanded).
{fn}_processes() {{
    local -a names=()
    local f name
    for f in /proc/[0-9]*/comm; do
        IFS= read -r name < "$f" 2>/dev/null && names+=("$name")
    done
    {fn}_match "$1" "${{names[@]}}"
}}

# A comma-separated list: the word after the last comma among the rest.
{fn}_list() {{
    local cur=$1 head=
    shift
    [[ $cur == *,* ]] && head=${{cur%,*}},
    {fn}_match "${{cur##*,}}" "$@"
    COMPREPLY=("${{COMPREPLY[@]/#/$head}}")
    compopt -o nospace 2>/dev/null  # another name may follow a comma
}}

{fn}() {{
    local cur=${{COMP_WORDS[COMP_CWORD]}} prev=
    (( COMP_CWORD > 0 )) && prev=${{COMP_WORDS[COMP_CWORD-1]}}
    # --option=value: bash splits at the = (COMP_WORDBREAKS)
    if [[ $cur == = ]]; then
        cur=
    elif [[ $prev == = ]] && (( COMP_CWORD > 1 )); then
        prev=${{COMP_WORDS[COMP_CWORD-2]}}
    fi
    COMPREPLY=()
    case $prev in
{chr(10).join(cases)}
    esac
    local -a options=({_word_list(names)})
    # no positional arguments: any other word is an option
    [[ -z $cur || $cur == -* ]] && {fn}_match "$cur" "${{options[@]}}"
    return 0
}}

complete -F {fn} {prog}
"""


def main() -> int:
    from ebpftop.cli import build_parser

    sys.stdout.write(render(build_parser()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
