"""The shape of the code, enforced: the core never imports textual, and only
ebpftop/sources/live.py imports bcc."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "ebpftop"
CORE = ["model", "filters", "aggregate", "history", "render", "text", "recording", "metrics", "exporter",
        "headless", "watch", "preflight", "terminal", "sources.replay", "sources.live", "sources.bpf_syscall",
        "sources.program", "sources.events", "sources.joins", "sources.recorded", "sources.base", "probesets", "cdefs"]


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_the_core_imports_without_textual():
    code = ("import sys; sys.modules['textual'] = None; sys.modules['rich'] = None\n"
            + "".join(f"import ebpftop.{m}\n" for m in CORE))
    subprocess.run([sys.executable, "-c", code], check=True, cwd=PACKAGE.parent)


def test_only_the_live_source_imports_bcc():
    importers = sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py") if "bcc" in _imports(p))
    assert importers == ["sources/live.py"]
