"""Start, fail and stop as a user would: through the command line."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ebpftop import sets
from ebpftop.panes.tabs import TABS
from tests.conftest import require_kernel_support

REPO = Path(__file__).resolve().parents[2]

FIRST_TAB = f"{TABS[0].key} {TABS[0].title}"  # on the tab bar: the first frame is drawn


def wait_detached(ids: set[int]) -> set[int]:
    """Which of ids are still loaded after up to 2 s (the kernel frees a
    program shortly after its last file descriptor closes)."""
    deadline = time.monotonic() + 2
    while (left := prog_ids() & ids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def prog_ids() -> set[int]:
    out = subprocess.run(["bpftool", "prog", "list", "-j"], check=True, capture_output=True, text=True)
    return {p["id"] for p in json.loads(out.stdout)}


def cgroup_programs() -> dict[int, str]:
    """id -> name of the programs attached to the root of the cgroup v2 hierarchy."""
    from ebpftop.sources.bpf_syscall import cgroup2_root

    root = cgroup2_root(Path("/proc/self/mounts").read_text())
    out = subprocess.run(["bpftool", "cgroup", "show", root, "-j"], check=True, capture_output=True, text=True)
    return {p["id"]: p.get("name", "") for p in json.loads(out.stdout.strip() or "[]")}  # nothing attached: empty output


def ebpftop(*args, **kw) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "ebpftop", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        **kw,
    )


@pytest.fixture(autouse=True)
def _kernel():
    require_kernel_support()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGKILL])
def test_every_exit_leaves_nothing_attached(sig):
    before = prog_ids()
    proc = ebpftop("--json", "--interval", "0.3")
    first = proc.stdout.readline()
    assert json.loads(first)["status"]["syscalls"] == "ok"
    ours = prog_ids() - before
    assert len(ours) >= 10, "the probes should be loaded while it runs"
    on_cgroup = {i for i, name in cgroup_programs().items() if i in ours}
    assert sorted(cgroup_programs()[i] for i in on_cgroup) == ["udp_egress", "udp_ingress"]
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=20)
    assert "Traceback" not in err
    if sig != signal.SIGKILL:
        assert proc.returncode in (130, 128 + sig), (proc.returncode, err)
    assert not wait_detached(ours), "programs left attached after exit"
    assert not on_cgroup & set(cgroup_programs()), "left attached to the root cgroup"


def _busy_machine(stop: threading.Event):
    """Opens files, makes TCP connections and starts processes until stopped,
    so every pane has something to show even on an idle machine."""
    with socket.create_server(("127.0.0.1", 0)) as server, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        port = server.getsockname()[1]
        while not stop.wait(0.05):
            udp.sendto(b"ping", ("127.0.0.1", port))  # nobody listens: still a datagram sent
            with open("/etc/hostname"):
                pass
            with socket.create_connection(("127.0.0.1", port)):
                conn, _ = server.accept()
                conn.close()
            subprocess.run(["true"], check=True)


def test_count_exits_by_itself_with_real_data_from_every_pane():
    stop = threading.Event()
    busy = threading.Thread(target=_busy_machine, args=(stop,))
    busy.start()
    try:
        proc = ebpftop("--json", "--interval", "1", "--count", "2")
        out, err = proc.communicate(timeout=60)
    finally:
        stop.set()
        busy.join()
    assert proc.returncode == 0, err
    assert "Exception ignored" not in err, err  # an exception in a ring-buffer callback is only printed
    lines = [json.loads(x) for x in out.splitlines()]
    assert len(lines) == 2
    for snap in lines:
        assert set(snap) >= {"time", "interval_s", "tcp", "syscalls", "read_latency",
                             "file_opens", "page_faults", "status", "lost"}
        assert snap["status"] == {p: "ok" for p in snap["status"]} and set(snap["status"]) == set(sets.NAMES)
    # ebpftop's own polling makes syscalls, reads, opens and faults every interval
    assert any(r["count"] > 0 for r in lines[-1]["syscalls"])
    assert lines[-1]["read_latency"]["total"]["count"] > 0
    assert lines[-1]["file_opens"] and lines[-1]["page_faults"] and lines[-1]["tcp"] and lines[-1]["processes"]
    assert any(f["tx_datagrams"] and f["pid"] == os.getpid() for f in lines[-1]["udp"])


def test_a_pane_that_fails_to_compile_leaves_the_others_running(tmp_path):
    broken = tmp_path / "bpf"
    shutil.copytree(REPO / "bpf", broken)
    tcp = broken / "tcp.c"
    tcp.write_text(tcp.read_text() + "\nthis is not C;\n")
    before = prog_ids()
    proc = ebpftop("--json", "--interval", "0.5", "--count", "1", env={**os.environ, "EBPFTOP_BPF_DIR": str(broken)})
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    snap = json.loads(out)
    assert snap["status"]["tcp"].startswith("failed to load: tcp.c:")
    assert "error" in snap["status"]["tcp"]
    assert all(snap["status"][p] == "ok"
               for p in ("udp", "syscalls", "read_latency", "file_opens", "page_faults", "processes"))
    assert snap["syscalls"]
    assert err.count("\n") == 1 and err.startswith("ebpftop: tcp: failed to load")
    assert not wait_detached(prog_ids() - before)


def test_not_root_is_one_line_and_exit_2():
    proc = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
         sys.executable, "-m", "ebpftop", "--json", "--count", "1"],
        capture_output=True, text=True, cwd=REPO, timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1
    assert proc.stderr.startswith("ebpftop: error: live collection needs root")


class Terminal:
    """ebpftop's TUI in a tmux session: a real terminal that can go away."""

    def __init__(self, name: str, after: str | None = None, rc_file: Path | None = None):
        """ebpftop in a new terminal; with after, a shell runs ebpftop, writes
        its exit status to rc_file, then runs after (in the same terminal);
        self.pid is ebpftop's."""
        if shutil.which("tmux") is None:
            reason = "tmux is not installed (apt install tmux, or make test)"
            if os.environ.get("CI"):
                pytest.fail(reason)
            pytest.skip(reason)
        self.name = name
        command = f"cd {REPO} && exec {sys.executable} -m ebpftop"
        if after:
            command = f"cd {REPO} && {sys.executable} -m ebpftop; echo \"exit $?\" > {rc_file}; {after}; sleep 60"
        subprocess.run(["tmux", "new-session", "-d", "-s", name, "-x", "120", "-y", "36", command], check=True)
        self.pid = int(subprocess.run(["tmux", "list-panes", "-t", name, "-F", "#{pane_pid}"],
                                      check=True, capture_output=True, text=True).stdout)
        if after:  # ebpftop is the shell's child
            deadline = time.monotonic() + 10
            while not (children := subprocess.run(["pgrep", "-P", str(self.pid)], capture_output=True,
                                                   text=True).stdout.split()):
                assert time.monotonic() < deadline, "ebpftop did not start"
                time.sleep(0.02)
            self.pid = int(children[0])

    def keys(self, *keys: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.name, *keys], check=True)

    def screen(self) -> str:
        return subprocess.run(["tmux", "capture-pane", "-p", "-t", self.name],
                              capture_output=True, text=True).stdout

    def wait_for(self, text: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.screen():
            assert time.monotonic() < deadline, f"{text!r} never appeared:\n{self.screen()}"
            time.sleep(0.02)

    def close(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.name], capture_output=True)

    def gone_within(self, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                return True
            time.sleep(0.1)
        os.kill(self.pid, signal.SIGKILL)
        return False


@pytest.fixture
def busy_cpus():
    """Every CPU kept busy: the races of a shutdown show more often."""
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 2)]
    yield
    for p in spinners:
        p.kill()
        p.wait()


@pytest.mark.parametrize("when", ["at the first frame", "while running"])
def test_closing_the_terminal_ends_ebpftop_and_detaches_everything(when, busy_cpus):
    """The terminal goes away (ssh drops, the window closes): the kernel sends
    SIGHUP, then SIGCONT.  Textual's own SIGCONT handler restarted
    application mode inside the signal handler and deadlocked its writer
    queue during shutdown (3 runs in 3 on a fresh machine); before that, its
    input thread outlived an app ended mid-start-up and spun forever."""
    before = prog_ids()
    for attempt in range(20 if when == "at the first frame" else 1):
        term = Terminal(f"ebpftop-test-{os.getpid()}-{attempt}")
        try:
            term.wait_for(FIRST_TAB)
            if when == "while running":
                term.wait_for("● running")
                time.sleep(1.5)
        finally:
            term.close()
        assert term.gone_within(15), f"ebpftop still running after its terminal closed ({when}, try {attempt + 1})"
        assert not wait_detached(prog_ids() - before)


def _terminal_modes(path: Path) -> set[str]:
    return set(path.read_text().split())


@pytest.mark.parametrize("how", ["stop, continue, q", "SIGQUIT", "SIGTERM"])
def test_signals_leave_the_terminal_as_it_was(how, tmp_path):
    """kill -STOP/-CONT then q: Textual's SIGCONT handler started a second
    input thread (2 runs in 7 never exited) and saved the raw modes as those
    to restore (7 in 7 left the terminal raw); SIGQUIT left raw mode, the
    alternate screen and mouse reporting on."""
    before = prog_ids()
    modes = tmp_path / "stty"
    rc = tmp_path / "rc"
    term = Terminal(f"ebpftop-test-{os.getpid()}-modes", after=f"stty -a > {modes}", rc_file=rc)
    try:
        term.wait_for("● running")
        if how == "stop, continue, q":
            os.kill(term.pid, signal.SIGSTOP)
            time.sleep(0.5)
            os.kill(term.pid, signal.SIGCONT)
            time.sleep(0.5)
            term.keys("q")
            expected = "exit 0"
        else:
            sig = signal.SIGQUIT if how == "SIGQUIT" else signal.SIGTERM
            os.kill(term.pid, sig)
            expected = f"exit {128 + sig}"
        deadline = time.monotonic() + 15
        while not modes.exists() or not modes.read_text():
            assert time.monotonic() < deadline, f"ebpftop did not exit ({how}):\n{term.screen()}"
            time.sleep(0.05)
        time.sleep(0.1)
        assert rc.read_text().strip() == expected
        # the shell's terminal modes are back: canonical input and echo
        assert {"icanon", "echo"} <= _terminal_modes(modes), modes.read_text()
        screen = term.screen()
        assert FIRST_TAB not in screen, "still on the alternate screen"
    finally:
        term.close()
    assert not wait_detached(prog_ids() - before)


def test_sudo_finds_ebpftop_as_typed():
    """sudo searches only its secure_path: make setup links /usr/local/bin/ebpftop."""
    link = Path("/usr/local/bin/ebpftop")
    if not link.exists():
        reason = "make setup has not linked /usr/local/bin/ebpftop"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    out = subprocess.run(["env", "-i", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                          "ebpftop", "--version"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.startswith("ebpftop "), out.stderr
