"""Issue 23 as an attacker plays it: an unprivileged user (nobody, through
setpriv) against ebpftop run by root, on a machine with
fs.protected_regular=0 and fs.protected_symlinks=0.  Nobody names a process
after terminal escapes, makes the directories and pre-creates the files
root is about to write, opens /etc/shadow often enough to fill the disk;
ebpftop never writes into their files, never lets them read its recordings,
never stops, and leaves nothing attached."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from ebpftop.recording import read_recording
from tests.conftest import require_kernel_support
from tests.kernel.test_lifecycle import REPO, ebpftop, prog_ids, wait_detached
from tests.unit.test_security import RAW

NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
# As nobody: take each name in turn (prctl PR_SET_NAME) and open /etc/shadow
# (EACCES: it alerts all the same), one every PERIOD seconds.
ALERTER = textwrap.dedent("""
    import ctypes, sys, time
    period, names = float(sys.argv[1]), sys.argv[2:]
    libc = ctypes.CDLL(None)
    for name in names:
        libc.prctl(15, name.encode("utf-8", "surrogateescape"))  # PR_SET_NAME
        try:
            open("/etc/shadow").close()
        except PermissionError:
            pass
        time.sleep(period)
""")


@pytest.fixture(autouse=True)
def _kernel():
    require_kernel_support()


@pytest.fixture
def shared_tmp():
    """A directory every user can reach (the tests' own are root's, 0700)."""
    d = Path(tempfile.mkdtemp(prefix="ebpftop-sec-", dir="/tmp"))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def as_nobody(*argv, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([*NOBODY, *argv], cwd="/", capture_output=True, text=True, **kw)


def alerts_as_nobody(period: float, names: list[str]) -> subprocess.Popen:
    return subprocess.Popen([*NOBODY, "/usr/bin/python3", "-c", ALERTER, str(period), *names], cwd="/")


@pytest.fixture
def tmpfs(shared_tmp):
    """Small file systems of root's (0700), unmounted after."""
    mounted = []

    def make(name: str, size: str) -> Path:
        mnt = shared_tmp / name
        mnt.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(mnt)], check=True)
        mounted.append(mnt)
        return mnt

    yield make
    for mnt in mounted:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


WATCH_SHADOW = ("--panes", "file_opens", "--no-default-watch", "--watch", "/etc/shadow")


def test_a_process_name_of_escapes_never_reaches_roots_terminal_raw(shared_tmp):
    """Finding 1: OSC 0 set root's terminal title to PWNED and OSC 52 put
    'pwn' in its clipboard, through the flight recorder's notice in the
    TUI; in --json the notice reached stderr raw, a newline forging a line.
    Here the TUI runs in a real terminal (tmux, its clipboard on) and
    --json beside it, while nobody alerts under three such names."""
    names = ["\x1b]0;PWNED\x1b\\", "\x1b]52;c;cHdu\x1b\\", "x\n../x opened"]
    flights = shared_tmp / "root-only"
    flights.mkdir(mode=0o700)
    args = [*WATCH_SHADOW, "--interval", "0.5", "--flight-after", "0.1s"]
    before = prog_ids()
    socket = f"ebpftop-sec-{os.getpid()}"
    tmux = ["tmux", "-L", socket]
    subprocess.run([*tmux, "-f", "/dev/null", "new-session", "-d", "-x", "160", "-y", "40",
                    f"cd {REPO} && exec {sys.executable} -m ebpftop {' '.join(args)} --flight-recorder {flights}/tui"],
                   check=True)
    try:
        subprocess.run([*tmux, "set-option", "-s", "set-clipboard", "on"], check=True)
        proc = ebpftop("--json", "--count", "10", *args, "--flight-recorder", str(flights / "json"))
        first = json.loads(proc.stdout.readline())
        assert first["status"]["file_opens"] == "ok"
        deadline = time.monotonic() + 60
        while "· data of " not in subprocess.run([*tmux, "capture-pane", "-p"], capture_output=True, text=True).stdout:
            assert time.monotonic() < deadline, "the TUI never ran"
            time.sleep(0.1)
        alerts_as_nobody(1.0, names).wait(timeout=30)
        out, err = proc.communicate(timeout=60)
        time.sleep(1)  # the TUI's last notice drawn
        title = subprocess.run([*tmux, "display-message", "-p", "#{pane_title}"], capture_output=True, text=True).stdout
        buffers = subprocess.run([*tmux, "list-buffers"], capture_output=True, text=True).stdout
        screen = subprocess.run([*tmux, "capture-pane", "-p"], capture_output=True, text=True).stdout
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True)
    assert proc.returncode == 0, err
    assert "PWNED" not in title and buffers == "", (title, buffers)  # no title set, nothing in the clipboard
    assert "\\x1b]0;PWNED" in screen or "\\x1b]52" in screen or "x\\x0a../x" in screen, screen  # the toasts, escaped
    lines = [first] + [json.loads(line) for line in out.splitlines()]
    assert [a["comm"] for line in lines for a in line["alerts"]] == names  # the data as it is, JSON-escaped
    assert not [ch for ch in RAW if ch in err] and all(line.startswith("ebpftop: ") for line in err.splitlines()), err
    assert "flight recorder: alert: \\x1b]0;PWNED\\x1b\\\\ opened /etc/shadow" in err
    assert "flight recorder: alert: x\\x0a../x opened opened /etc/shadow" in err
    assert not wait_detached(prog_ids() - before)


def test_a_directory_or_file_another_user_made_is_refused(shared_tmp):
    """Finding 2: nobody made the flight recorder's DIR (0777) and
    pre-created the names of its next recordings; or FILE of --record in a
    sticky directory.  Root wrote 49,660 and 10,253 bytes into nobody's
    files.  Now both are refused at start-up, one line each, exit 2, and
    nobody's files stay empty."""
    shared = shared_tmp / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    theirs = shared / "flights"
    assert as_nobody("mkdir", "-m", "0777", str(theirs)).returncode == 0
    now = time.time()
    planted = [theirs / f"ebpftop-{time.strftime('%Y%m%d-%H%M%S', time.localtime(now + s))}-alert.jsonl"
               for s in range(40)]
    assert as_nobody("touch", *map(str, planted)).returncode == 0
    assert as_nobody("touch", str(shared / "rec.jsonl")).returncode == 0
    before = prog_ids()
    for option, where, why in (("--flight-recorder", theirs, "it belongs to nobody (uid 65534)"),
                               ("--record", shared / "rec.jsonl", "it is writable by others (mode 1777)")):
        proc = ebpftop("--json", "--count", "1", *WATCH_SHADOW, option, str(where))
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 2 and out == "" and err.count("\n") == 1, err
        assert f"refusing the directory {where if option != '--record' else shared}: {why}; choose a directory only " \
               "root (or you) can write" in err
    assert all(p.stat().st_size == 0 and p.stat().st_uid == 65534 for p in [*planted, shared / "rec.jsonl"])
    assert sorted(theirs.iterdir()) == sorted(planted)
    assert prog_ids() - before == set()


def test_roots_recording_replaces_another_users_file_which_they_can_never_read(shared_tmp):
    """FILE of nobody's in a directory of root's: --record puts a new file
    in its place (a rename) instead of truncating and writing theirs; root's
    recording is 0600, nobody's file (still theirs, by its other name)
    untouched."""
    d = shared_tmp / "records"
    d.mkdir(mode=0o755)
    rec = d / "rec.jsonl"
    rec.write_text("nobody's\n")
    os.chown(rec, 65534, 65534)
    rec.chmod(0o666)
    (d / "nobodys-other-name").hardlink_to(rec)
    before = prog_ids()
    proc = ebpftop("--json", "--count", "2", "--interval", "0.5", *WATCH_SHADOW, "--record", str(rec))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert (d / "nobodys-other-name").read_text() == "nobody's\n"
    st = rec.stat()
    assert (st.st_uid, st.st_mode & 0o777) == (0, 0o600) and len(read_recording(rec)) == 2
    denied = as_nobody("cat", str(rec))
    assert denied.returncode != 0 and "Permission denied" in denied.stderr
    assert not wait_detached(prog_ids() - before)


def test_alerts_every_second_never_fill_the_disk_nor_stop_the_monitor(tmpfs):
    """Findings 3, 4, 7: nobody opening /etc/shadow about once a second
    filled a 4 MiB file system in 12 s (each recording copied the whole kept
    window), and ebpftop exited 1, the alert's interval never printed.  Two
    ebpftops: one on a 256 KiB file system with the default budget (a tenth
    of it), one with a budget larger than its 16 KiB file system (which
    fills).  Both print every interval and exit 0; the first stays within
    its budget, writing each interval once; the second says that it cannot
    write, and goes on."""
    small, tiny = tmpfs("small", "256k"), tmpfs("tiny", "16k")  # tmpfs gives a file 4 KiB at least: 9 recordings fill it
    budget = int(os.statvfs(small).f_bavail * os.statvfs(small).f_frsize * 0.10)
    args = ("--json", "--interval", "0.5", "--count", "24", "--panes", "file_opens,syscalls", "--no-default-watch",
            "--watch", "/etc/shadow", "--flight-after", "0.1s")
    before = prog_ids()
    default = ebpftop(*args, "--flight-recorder", str(small / "fl"))
    too_big = ebpftop(*args, "--flight-recorder", str(tiny / "fl"), "--flight-max-size", "64M")
    for p in (default, too_big):
        assert json.loads(p.stdout.readline())["status"]["file_opens"] == "ok"
    alerter = alerts_as_nobody(1.2, ["opener"] * 9)
    results = [p.communicate(timeout=90) for p in (default, too_big)]
    alerter.wait(timeout=30)
    for p, (out, err) in zip((default, too_big), results):
        assert p.returncode == 0, err
        lines = [json.loads(line) for line in out.splitlines()]
        assert len(lines) == 23  # and the first: every interval printed
        assert sum(a["comm"] == "opener" for line in lines for a in line["alerts"]) == 9
    files = sorted((small / "fl").iterdir())
    assert files and sum(p.stat().st_size for p in files) <= budget, (budget, [p.stat().st_size for p in files])
    times = [s.time for p in files for s in read_recording(p)]
    assert len(times) == len(set(times))  # each interval in one recording
    assert all(p.name.startswith("ebpftop-") and "-alert" in p.name and p.name.endswith(".jsonl") for p in files)
    assert "flight recorder: removed " in results[0][1]  # the budget was reached: the oldest went
    full = results[1][1]
    assert "No space left on device; it tries again at each interval, monitoring goes on" in full, full
    print(f"\nbudget {budget} B: recordings of {[p.stat().st_size for p in files]} B, {len(times)} intervals; "
          f"the full one said {full.count('No space left on device')} times that it could not write")
    assert not wait_detached(prog_ids() - before)


def test_the_terminal_closed_or_a_signal_while_rotating_leaves_every_recording_replayable(shared_tmp):
    """Item 11: a recording that rotates at every interval (every 0.2 s),
    its terminal closed (tmux killed: SIGHUP) while it runs; and one in
    --json ended by SIGTERM.  Each exits, leaves every file replayable (a
    cut last line is skipped), no temporary file, nothing attached.  (A
    signal landing inside a rotation, 300 times over:
    tests/unit/test_security.py.)"""
    tui_dir, json_dir = shared_tmp / "tui", shared_tmp / "json"
    tui_dir.mkdir(mode=0o700)
    json_dir.mkdir(mode=0o700)
    rotating = ("--interval", "0.2", *WATCH_SHADOW, "--record-max-size", "1", "--record-keep", "3")
    before = prog_ids()
    socket = f"ebpftop-sec-rot-{os.getpid()}"
    subprocess.run(["tmux", "-L", socket, "-f", "/dev/null", "new-session", "-d", "-x", "120", "-y", "36",
                    f"cd {REPO} && exec {sys.executable} -m ebpftop {' '.join(rotating)} --record {tui_dir}/rec.jsonl.gz"],
                   check=True)
    pid = int(subprocess.run(["tmux", "-L", socket, "list-panes", "-F", "#{pane_pid}"], capture_output=True,
                             text=True, check=True).stdout)
    proc = ebpftop("--json", *rotating, "--record", str(json_dir / "rec.jsonl"))
    proc.stdout.readline()
    time.sleep(2.5)
    subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 128 + signal.SIGTERM and "Traceback" not in err, err
    deadline = time.monotonic() + 15
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not os.path.exists(f"/proc/{pid}"), "the TUI outlived its terminal"
    for d, name in ((tui_dir, "rec.jsonl{}.gz"), (json_dir, "rec.jsonl{}")):
        files = sorted(d.iterdir())
        rotated = {name.format(k) for k in ("", ".1", ".2", ".3")}
        assert {p.name for p in files} <= rotated and len(files) >= 3, files  # no temporary name left
        for p in files:
            if p.stat().st_size:
                read_recording(p)  # replays (or raises)
    assert not wait_detached(prog_ids() - before)
