"""Installed as a tool, as the README says: the wheel built from this
checkout holds every eBPF source, the man page and the completion;
`pipx install --python /usr/bin/python3 --system-site-packages WHEEL`, with
pipx's state in a temporary directory (the machine's own is never touched),
gives an `ebpftop` that, run as root from a directory outside the checkout,
reports a workload's exact counts from the sources it was installed with;
then `pipx uninstall` removes it.  That with the distribution's pipx (what
`apt install pipx` gives: 1.1 on Debian 12); a recent pipx (the test extras')
also links the man page into PIPX_MAN_DIR."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from tests.conftest import require_kernel_support
from tests.kernel.test_lifecycle import REPO, prog_ids, wait_detached

SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's, which has BCC (python3-bpfcc)


def _need(what: str, why: str):
    reason = f"the install test needs {what}: {why}"
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI must run every kernel test)")
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def _kernel():
    require_kernel_support()


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel of this checkout, built as pip builds it (hatchling in an
    isolated environment, from pip's cache when it has it)."""
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check", "-q",
                    "-w", str(out), str(REPO)], check=True, capture_output=True, text=True, timeout=300)
    (built,) = out.glob("ebpftop-*.whl")
    return built


def _files(top: Path) -> set[str]:
    return {str(p.relative_to(top)) for p in top.rglob("*") if p.is_file() and "__pycache__" not in p.parts}


def test_the_wheel_holds_every_ebpf_source_the_man_page_and_the_completion(wheel):
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        name, version = wheel.name.split("-")[:2]
        data = f"{name}-{version}.data/data/share"
        # every eBPF source, headers included, byte for byte
        bpf_files = _files(REPO / "bpf")
        assert {"ebpftop.h", "syscalls.c"} <= bpf_files
        assert {f"ebpftop/bpf/{f}" for f in bpf_files} <= names
        for f in bpf_files:
            assert z.read(f"ebpftop/bpf/{f}") == (REPO / "bpf" / f).read_bytes(), f
        assert {f"ebpftop/{f}" for f in _files(REPO / "ebpftop") if f.endswith(".py")} <= names
        assert z.read(f"{data}/man/man8/ebpftop.8") == (REPO / "docs" / "ebpftop.8").read_bytes()
        assert z.read(f"{data}/bash-completion/completions/ebpftop") == (REPO / "docs" / "ebpftop.bash").read_bytes()
        entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        assert "ebpftop = ebpftop.cli:main" in z.read(entry_points).decode()


class Pipx:
    """pipx with its state, its links and its man pages under one temporary
    directory, run from another one outside the checkout, with nothing in
    the environment that points into the checkout."""

    def __init__(self, command: list[str], tmp: Path):
        self.command = command
        self.home = tmp / "pipx"
        self.cwd = tmp / "elsewhere"
        self.cwd.mkdir()
        self.env = {k: v for k, v in os.environ.items()
                    if k not in ("PYTHONPATH", "VIRTUAL_ENV", "EBPFTOP_BPF_DIR") and not k.startswith("PIPX_")}
        self.env.update(PIPX_HOME=str(self.home / "home"), PIPX_BIN_DIR=str(self.home / "bin"),
                        PIPX_MAN_DIR=str(self.home / "man"))
        self.venv = self.home / "home" / "venvs" / "ebpftop"
        self.bin = self.home / "bin" / "ebpftop"
        self.man = self.home / "man" / "man8" / "ebpftop.8"

    def __call__(self, *args: str) -> str:
        done = subprocess.run([*self.command, *args], cwd=self.cwd, env=self.env, capture_output=True, text=True,
                              timeout=600)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def install(self, wheel: Path) -> None:
        self("install", "--python", SYSTEM_PYTHON, "--system-site-packages", str(wheel))
        assert self.bin.resolve().is_relative_to(self.venv.resolve())
        # the man page and the completion, installed with the package's data
        assert (self.venv / "share/man/man8/ebpftop.8").read_bytes() == (REPO / "docs/ebpftop.8").read_bytes()
        assert (self.venv / "share/bash-completion/completions/ebpftop").is_file()

    def uninstall(self) -> None:
        self("uninstall", "ebpftop")
        assert not self.venv.exists() and not self.bin.exists() and not self.man.exists()


def _need_system_python():
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        _need(SYSTEM_PYTHON, "the system Python, which has BCC")


def test_the_distributions_pipx_installs_an_ebpftop_that_runs_from_its_own_files(wheel, workload, tmp_path):
    pipx = shutil.which("pipx", path="/usr/bin")
    if pipx is None:
        _need("the distribution's pipx", "not installed (Debian: apt-get install pipx, or make test-packages)")
    _need_system_python()
    started = time.monotonic()
    tool = Pipx([pipx], tmp_path)
    tool.install(wheel)
    installed = time.monotonic()
    try:
        # what the installed ebpftop runs: its own package and eBPF sources, and the system's BCC
        where = subprocess.run(
            [str(tool.venv / "bin" / "python"), "-c",
             "import bcc, ebpftop; from ebpftop.sources.program import bpf_dir; "
             "print(ebpftop.__file__); print(bpf_dir()); print(bcc.__file__)"],
            cwd=tool.cwd, env=tool.env, check=True, capture_output=True, text=True).stdout.split("\n")
        assert Path(where[0]).is_relative_to(tool.venv) and Path(where[1]) == Path(where[0]).parent / "bpf", where
        assert where[2].startswith("/usr/lib/python3/"), where

        path = tool.cwd / "opened-by-the-installed-ebpftop"
        path.write_text("x")
        before = prog_ids()
        proc = subprocess.Popen([str(tool.bin), "--json", "--count", "2", "--interval", "1", "--comm", workload.comm],
                                cwd=tool.cwd, env=tool.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            first = json.loads(proc.stdout.readline())  # attached and one interval in
            done = workload.run("work", 37, path, 40_000)
            out, err = proc.communicate(timeout=30)
        finally:
            proc.kill()
        assert proc.returncode == 0, err
        snaps = [first] + [json.loads(line) for line in out.splitlines()]
        assert len(snaps) == 2
        assert all(s == "ok" for s in snaps[-1]["status"].values()), snaps[-1]["status"]
        opens = [r for s in snaps for r in s["file_opens"] if r["path"] == str(path)]
        assert sum(r["count"] for r in opens) == done["ok"] == 37
        calls = [r for s in snaps for r in s["syscalls"]]
        assert {r["comm"] for r in calls} == {workload.comm}  # --comm kept only the workload
        # the opens, exec, the dynamic loader and exit add a few dozen; nothing near double
        assert 40_000 + 37 <= sum(r["count"] for r in calls) < 40_000 + 500
        assert wait_detached(prog_ids() - before) == set()
        ran = time.monotonic()
    finally:
        tool.uninstall()
    print(f"\ndistribution's pipx {tool('--version').strip()}: install {installed - started:.1f} s, "
          f"run {ran - installed:.1f} s, uninstall {time.monotonic() - ran:.1f} s")


def test_a_recent_pipx_also_installs_the_man_page(wheel, tmp_path):
    """pipx links a wheel's share/man pages into PIPX_MAN_DIR since 1.3
    (Debian 13, Ubuntu 24.04); the test extras bring one."""
    _need_system_python()
    started = time.monotonic()
    tool = Pipx([sys.executable, "-m", "pipx"], tmp_path)
    assert tuple(int(x) for x in re.findall(r"\d+", tool("--version"))[:2]) >= (1, 3)
    tool.install(wheel)
    try:
        assert tool.man.read_bytes() == (REPO / "docs/ebpftop.8").read_bytes()
        # man finds it there, as it finds ~/.local/share/man beside ~/.local/bin
        man = shutil.which("man")
        if man is not None:
            found = subprocess.run([man, "-M", str(tool.home / "man"), "-w", "8", "ebpftop"], capture_output=True,
                                   text=True, env=tool.env)
            assert found.returncode == 0, found.stderr
            assert Path(found.stdout.strip()).resolve() == tool.man.resolve()  # man -w prints the link's target
    finally:
        tool.uninstall()
    print(f"\nrecent pipx: install and uninstall {time.monotonic() - started:.1f} s")
