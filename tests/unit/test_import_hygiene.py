"""The shape of the code, enforced: imports run down the floors below and
never back up; a probe set's module imports no view and no source; the
core never imports textual; only the loader (sources/kernel.py) imports bcc."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "ebpftop"

# Floors, lowest first: a module imports only from its own floor or below.
FLOORS = (
    ("cdefs", "text", "model", "watch", "terminal", "safefile"),  # definitions, and the file rule
    ("render", "aggregate", "filters", "budget", "capabilities", "containers", "act", "config", "webconfig"),  # pure helpers
    ("sets.",),  # each probe set (and sets/base.py)
    ("sets",),  # the registry of probe sets
    ("snapshots", "history", "recording", "triggers", "metrics", "dashboard"),  # over whole snapshots, the sets' metrics
    ("sources.", "sources", "preflight"),  # where snapshots come from
    ("headless", "exporter", "panes.", "panes"),  # what shows them
    ("app",),
    ("cli", "__main__"),
    ("manpage", "completion"),  # generated from the parser cli.py builds
)


def floor_of(module: str) -> int:
    """The floor of ebpftop.MODULE (a prefix ending in '.' names a package's modules)."""
    best = None
    for i, names in enumerate(FLOORS):
        for n in names:
            if module == n or (n.endswith(".") and module.startswith(n)):
                if best is None or len(n) > best[1]:
                    best = (i, len(n))
    assert best is not None, f"ebpftop.{module} is on no floor: add it to FLOORS"
    return best[0]


def modules() -> dict[str, Path]:
    out = {}
    for p in PACKAGE.rglob("*.py"):
        parts = p.relative_to(PACKAGE).with_suffix("").parts
        name = ".".join(parts[:-1]) if parts[-1] == "__init__" else ".".join(parts)
        if name:
            out[name] = p
    return out


def _imports(path: Path) -> set[str]:
    """Top-level package names imported, and ebpftop's own modules as ebpftop.X."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name if a.name.startswith("ebpftop") else a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "ebpftop" or (node.module.startswith("ebpftop.")
                                              and (PACKAGE.parent / node.module.replace(".", "/")).is_dir()):
                # from a package: its submodules, or a name the package itself defines
                pkg = PACKAGE.parent / node.module.replace(".", "/")
                names |= {f"{node.module}.{a.name}" if (pkg / f"{a.name}.py").exists() or (pkg / a.name).is_dir()
                          else node.module for a in node.names}
            elif node.module.startswith("ebpftop."):
                names.add(node.module)
            else:
                names.add(node.module.split(".")[0])
    return names


def own(names: set[str]) -> set[str]:
    return {n.removeprefix("ebpftop.") for n in names if n.startswith("ebpftop.")} - {"ebpftop"}


def test_imports_never_run_back_up():
    back_up = []
    for name, path in modules().items():
        for imported in own(_imports(path)):
            if floor_of(imported) > floor_of(name):
                back_up.append(f"{name} -> {imported}")
    assert back_up == []


def test_a_probe_set_imports_no_view_and_no_source():
    for name, path in modules().items():
        if name.startswith("sets."):
            assert not {n for n in own(_imports(path)) if n.startswith(("panes", "app", "sources"))}, name
            assert not _imports(path) & {"textual", "rich", "bcc"}, name


def test_the_core_imports_without_textual():
    core = [n for n in modules() if floor_of(n) < floor_of("panes") or n in ("headless", "exporter")]
    code = ("import sys; sys.modules['textual'] = None; sys.modules['rich'] = None\n"
            + "".join(f"import ebpftop.{m}\n" for m in core))
    subprocess.run([sys.executable, "-c", code], check=True, cwd=PACKAGE.parent)


def test_only_the_loader_imports_bcc():
    importers = sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py") if "bcc" in _imports(p))
    assert importers == ["sources/kernel.py"]
