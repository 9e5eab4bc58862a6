"""Issue 23, the unprivileged tier: one escaping rule for every output,
one rule for every file written as root, writing that fails without
stopping the monitor, untrusted input bounded while it is read, and the
command line's numbers.  The same attacks, run as another user against root,
are in tests/kernel/test_files_as_root.py."""

from __future__ import annotations

import gzip
import json
import os
import stat
import subprocess
import sys
import textwrap
import threading
import time
import zlib
from pathlib import Path

import pytest

from ebpftop import cli, headless, safefile, text
from ebpftop.filters import Filter
from ebpftop.recording import Recorder, RecordingError, dumps, read_recording
from ebpftop.sets.file_opens import Alert
from ebpftop.sets.syscalls import SyscallRow
from ebpftop.sources.replay import ReplaySource
from tests.unit.snapshots import T0, replace, sample_snapshot

REPO = Path(__file__).resolve().parents[2]
# What a process may call itself (prctl PR_SET_NAME), or a path it opens:
# terminal title and clipboard (OSC 0, OSC 52), a screen clear (CSI), a
# bell, a forged second line, a carriage return over the line, a bidi
# override, and C1's one-byte CSI.
HOSTILE = ("\x1b]0;PWNED\x1b\\", "\x1b]52;c;cHdu\x1b\\", "\x1b[2J", "a\x07b", "x\n../x opened", "x\rfake",
           "\u202eevil", "c1\x9b31m")
RAW = ("\x1b", "\x07", "\r", "\u202e", "\x9b")


def _raw_in(s: str) -> list[str]:
    return [ch for ch in RAW if ch in s]


def _alerting(names=HOSTILE, t: float = T0) -> list:
    """Snapshots each holding one alert of a hostile process name and path."""
    return [replace(sample_snapshot(t=t + 5 * i), alerts=(Alert(t + 5 * i, 66, 1, 65534, name, f"/etc/{name}", -13),))
            for i, name in enumerate(names)]


# -- one escaping rule -------------------------------------------------------

def test_json_stderr_never_carries_a_raw_escape_nor_a_forged_line(tmp_path, capsys):
    """--json with --flight-recorder: the recorder's notice names the
    alerting process; on stderr it was raw (an OSC 52 wrote root's
    clipboard, a newline forged a second line)."""
    from ebpftop.sources.flight import FlightRecorderSource, prepare_dir

    quiet_between = [s for snap in _alerting() for s in (snap, replace(snap, time=snap.time + 2.5, alerts=()))]
    source = FlightRecorderSource(ReplaySource(quiet_between), prepare_dir(str(tmp_path / "fl")), [], after_s=1.0)
    assert headless.run(source, Filter(), None, paced=False) == 0
    source.close()
    out, err = capsys.readouterr()
    assert err and not _raw_in(err) and not _raw_in(out)
    lines = err.splitlines()
    assert all(line.startswith("ebpftop: ") for line in lines), lines  # no line forged by a name's newline
    assert "\\x1b]0;PWNED\\x1b\\\\" in err and "x\\x0a../x opened" in err and "\\u202eevil" in err
    for line in out.splitlines():  # JSON escapes every control character itself
        assert json.loads(line)["notices"] is not None


def test_a_replay_error_names_a_hostile_file_name_escaped(tmp_path, capsys):
    """Errors name the file (and quote what they found): a recording's name
    is chosen by whoever wrote it, and reaches the replaying user's terminal."""
    rec = tmp_path / "\x1b]52;c;cHdu\x1b\\.jsonl"
    rec.write_text('{"time": 1}\n')
    assert cli.main(["--replay", str(rec), "--json"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "line 1: not an ebpftop snapshot" in err and not _raw_in(err)


def test_syslog_lines_are_escaped_whole():
    from ebpftop.watch import syslog_message

    for snap in _alerting():
        line = syslog_message(snap.alerts[0])
        assert not _raw_in(line) and "\n" not in line and "comm=" in line


def test_prometheus_label_values_are_escaped():
    import threading

    from prometheus_client import CollectorRegistry, generate_latest

    from ebpftop import exporter
    from ebpftop.metrics import MetricsState

    state = MetricsState(max_labels=100)
    state.add(replace(sample_snapshot(), syscalls=tuple(SyscallRow(n, 7, ((66, 7),)) for n in HOSTILE)))
    registry = CollectorRegistry()
    registry.register(exporter.SnapshotCollector(state, threading.Lock()))
    page = generate_latest(registry).decode()
    assert not _raw_in(page)
    assert all(line.startswith(("#", "ebpftop_")) for line in page.splitlines() if line)


def test_to_stderr_is_one_line_whatever_it_is_given(capsys):
    for name in HOSTILE:
        text.to_stderr(f"flight recorder: alert: {name} opened /etc/shadow")
    err = capsys.readouterr().err
    assert len(err.splitlines()) == len(HOSTILE) and not _raw_in(err)


# -- one rule for every file written as root ---------------------------------

def test_a_directory_others_can_write_is_refused_with_what_to_do(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)  # as /tmp
    with pytest.raises(RecordingError) as e:
        Recorder(shared / "x.jsonl")
    message = str(e.value)
    assert f"refusing the directory {shared}: it is writable by others (mode 1777)" in message
    assert "choose a directory only root (or you) can write" in message and "\n" not in message
    assert list(shared.iterdir()) == []
    group = tmp_path / "group"
    group.mkdir()
    group.chmod(0o770)
    with pytest.raises(RecordingError, match="writable by its group"):
        Recorder(group / "x.jsonl")


def test_a_directory_of_another_user_or_below_one_is_refused(tmp_path, monkeypatch):
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o700)
    if os.geteuid() == 0:
        os.chown(theirs, 12345, 12345)
    else:  # as if the tests' own files were another user's: only root's count then
        monkeypatch.setattr(safefile, "trusted_uids", lambda: frozenset({0}))
    # as root: theirs itself; as another user, the first directory above it that is theirs
    with pytest.raises(RecordingError, match=f"refusing the directory {theirs}: .*it belongs to .*uid [0-9]+"):
        Recorder(theirs / "x.jsonl")
    monkeypatch.undo()
    loose = tmp_path / "loose"
    (loose / "private").mkdir(parents=True)
    loose.chmod(0o777)  # not sticky: whoever can write it can rename private/ away and put their own
    (loose / "private").chmod(0o700)
    with pytest.raises(RecordingError, match=f"{loose}, above it: it is writable by others"):
        Recorder(loose / "private" / "x.jsonl")
    loose.chmod(0o1777)  # sticky: no one renames what is not theirs
    Recorder(loose / "private" / "x.jsonl").close()


def test_the_flight_recorders_directory_is_made_0700_and_checked(tmp_path):
    from ebpftop.sources.flight import prepare_dir

    d = prepare_dir(str(tmp_path / "a" / "b"))
    d.close()
    assert stat.S_IMODE((tmp_path / "a" / "b").stat().st_mode) == 0o700
    (tmp_path / "open").mkdir(mode=0o777)
    (tmp_path / "open").chmod(0o777)
    with pytest.raises(RecordingError, match="--flight-recorder .*refusing the directory"):
        prepare_dir(str(tmp_path / "open"))


def test_record_replaces_an_existing_file_never_writing_into_it(tmp_path):
    """--record FILE where FILE exists: a new file takes its place (a
    rename), so another's FILE (or a hard link to theirs) is never opened,
    truncated nor written; the new one is 0600."""
    rec = tmp_path / "rec.jsonl"
    rec.write_text("someone else's\n")
    rec.chmod(0o666)
    (tmp_path / "their-link").hardlink_to(rec)  # the same inode, under a name the recorder never touches
    r = Recorder(rec)
    r.write(sample_snapshot())
    r.close()
    assert (tmp_path / "their-link").read_text() == "someone else's\n"
    assert stat.S_IMODE(rec.stat().st_mode) == 0o600 and len(read_recording(rec)) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rec.jsonl", "their-link"]  # no temporary left


def test_record_refuses_a_link_a_directory_or_a_device_at_file(tmp_path):
    (tmp_path / "victim").write_text("keep")
    (tmp_path / "link").symlink_to(tmp_path / "victim")
    (tmp_path / "dir").mkdir()
    for name, why in (("link", "symbolic link"), ("dir", "not a regular file")):
        with pytest.raises(RecordingError, match=why):
            Recorder(tmp_path / name)
    with pytest.raises(RecordingError, match="not a regular file"):
        Recorder(os.devnull)  # /dev is root's: the rule alone would allow it
    assert (tmp_path / "victim").read_text() == "keep" and os.path.exists(os.devnull)


def test_the_log_is_dev_null_or_a_regular_file_of_ours(tmp_path, monkeypatch):
    os.close(safefile.open_log(os.devnull))
    log = tmp_path / "log"
    fd = safefile.open_log(str(log))
    os.write(fd, b"one\n")
    os.close(fd)
    fd = safefile.open_log(str(log))  # appended to
    os.write(fd, b"two\n")
    os.close(fd)
    assert log.read_text() == "one\ntwo\n" and stat.S_IMODE(log.stat().st_mode) == 0o600
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(safefile.UnsafePathError, match="cannot write it"):
        safefile.open_log(str(tmp_path / "fifo"))  # no reader: ENXIO, never a wait
    threading.Thread(target=lambda: open(tmp_path / "fifo", "rb").close(), daemon=True).start()
    time.sleep(0.05)
    with pytest.raises(safefile.UnsafePathError, match="not a regular file"):
        safefile.open_log(str(tmp_path / "fifo"))
    monkeypatch.setattr(safefile, "trusted_uids", lambda: frozenset({12345}))
    with pytest.raises(safefile.UnsafePathError, match="refusing the directory"):
        safefile.open_log(str(log))


# -- writing can fail; monitoring cannot ---------------------------------------

_FAILING_DISK = textwrap.dedent("""
    # A file size limit (RLIMIT_FSIZE) makes every write past it fail, as a full
    # disk does; then the limit is lifted, as space is freed.
    import json, resource, signal, sys
    from tests.unit.snapshots import replace
    from ebpftop.recording import Recorder
    from ebpftop.sources.recorded import RecordedSource
    from ebpftop.sources.replay import ReplaySource
    from tests.unit.snapshots import sample_snapshot

    path, limit = sys.argv[1], int(sys.argv[2])
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a kill
    snaps = [sample_snapshot(t=1_764_000_000.0 + 5 * i) for i in range(12)]
    source = RecordedSource(ReplaySource(snaps), Recorder(path))
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    out = []
    for i in range(12):
        if i == 3:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
        if i == 8:
            resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        snap = source.poll()
        out.append({"time": snap.time, "notices": list(snap.notices)})
    source.close()
    print(json.dumps(out))
""")


@pytest.mark.parametrize("name", ["rec.jsonl", "rec.jsonl.gz"])
def test_a_recording_that_cannot_be_written_says_so_once_and_monitoring_goes_on(tmp_path, name):
    """The disk fills after 3 intervals and is freed after 8: every interval
    is still returned (shown, printed), the failure said once, the
    recovery with how many were missed; the recording replays, with the
    intervals that could be written, none cut in the middle."""
    path = tmp_path / name
    from ebpftop.recording import LineFile

    probe = LineFile(os.open(tmp_path / "probe", os.O_WRONLY | os.O_CREAT, 0o600), compressed=name.endswith(".gz"))
    for i in range(3):
        probe.write_line((dumps(sample_snapshot(t=1_764_000_000.0 + 5 * i)) + "\n").encode())
    size_of_three = probe.size
    probe.close()
    os.unlink(tmp_path / "probe")
    proc = subprocess.run([sys.executable, "-c", _FAILING_DISK, str(path), str(size_of_three + 10)], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    polled = json.loads(proc.stdout)
    assert [p["time"] for p in polled] == [1_764_000_000.0 + 5 * i for i in range(12)]
    notices = [(i, n) for i, p in enumerate(polled) for n in p["notices"]]
    assert len(notices) == 2, notices
    (failed_at, failed), (back_at, back) = notices
    assert f"cannot write {path}: File too large: intervals are not recorded" in failed and "monitoring goes on" in failed
    assert back_at == 8 and back == f"recording to {path} again; {8 - failed_at} intervals could not be recorded"
    recorded = [s.time for s in read_recording(path)]
    assert recorded == [1_764_000_000.0 + 5 * i for i in list(range(failed_at)) + list(range(8, 12))]


def test_rotation_goes_around_a_directory_planted_at_a_rotated_name(tmp_path):
    """Finding 8: a directory FILE.1 was carried along to FILE.5, then
    ebpftop exited.  Now it is left alone, said, and recording goes on."""
    path = tmp_path / "rec.jsonl"
    (tmp_path / "rec.jsonl.1").mkdir()
    (tmp_path / "rec.jsonl.1" / "theirs").write_text("x")
    r = Recorder(path, max_bytes=1, keep=3)  # a new file at every interval
    results, notices = [], []
    for i in range(6):
        results.append(r.write(sample_snapshot(t=T0 + 5 * i)))
        notices += r.take_notices()
    r.close()
    assert results == [True] * 6
    assert notices and all("rec.jsonl.1 (a directory is there): what is there is left alone" in n for n in notices)
    assert (tmp_path / "rec.jsonl.1" / "theirs").read_text() == "x"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rec.jsonl", "rec.jsonl.1"]


_SIGNALS_IN_ROTATION = textwrap.dedent("""
    # SIGTERM unwinds ebpftop as SystemExit (cli._raise_exit) wherever the main
    # thread is: here a timer sends it at random moments of a recording that
    # rotates at every interval, 300 times.
    import os, random, signal, sys
    from ebpftop.recording import Recorder
    from tests.unit.snapshots import sample_snapshot

    def stop(signum, frame):
        raise SystemExit(143)

    signal.signal(signal.SIGALRM, stop)
    snap = sample_snapshot()
    base = sys.argv[1]
    stopped_in_rotation = 0
    for run in range(300):
        path = os.path.join(base, f"run{run}", "rec.jsonl" + ("" if run % 2 else ".gz"))
        os.mkdir(os.path.dirname(path), 0o700)
        r = Recorder(path, max_bytes=1, keep=3)
        signal.setitimer(signal.ITIMER_REAL, random.uniform(0.0001, 0.004))
        try:
            while True:
                r.write(snap)
        except SystemExit:
            pass
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            r.close()
""")


def test_a_signal_in_the_middle_of_rotations_leaves_every_file_replayable(tmp_path):
    proc = subprocess.run([sys.executable, "-c", _SIGNALS_IN_ROTATION, str(tmp_path)], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(files) > 300
    assert not [p for p in files if p.name.endswith(".tmp")]  # no temporary name left behind
    for p in files:
        if p.stat().st_size:
            assert all(s.time == T0 for s in read_recording(p)), p


# -- the flight recorder's names and disk -------------------------------------

def _flights(tmp_path, snaps, **kw):
    from ebpftop.sources.flight import FlightRecorderSource, prepare_dir

    d = tmp_path / "fl"
    source = FlightRecorderSource(ReplaySource(snaps), prepare_dir(str(d)), [], **kw)
    out = [source.poll() for _ in snaps]
    source.close()
    return d, out


def test_recordings_made_within_one_second_each_get_their_own_file(tmp_path):
    """Finding 7: names had one-second resolution and were opened with
    O_TRUNC: 12 recordings announced, 6 files."""
    snaps = _alerting(["cat"] * 12)
    snaps = [replace(s, time=T0 + 0.05 * i, interval_s=0.05, alerts=s.alerts if i % 2 == 0 else ())
             for i, s in enumerate(snaps)]
    d, out = _flights(tmp_path, snaps, after_s=0.01)
    started = [n for s in out for n in s.notices if n.startswith("flight recorder: alert")]
    assert len(started) == 6
    files = sorted(p.name for p in d.iterdir())
    assert len(files) == 6 and all(f"-{os.getpid()}-" in f for f in files), files
    assert all(stat.S_IMODE((d / f).stat().st_mode) == 0o600 for f in files)


def test_an_entry_at_the_next_recordings_name_is_gone_around_never_followed(tmp_path):
    """Finding 4: links planted at the next names stopped ebpftop at the
    first alert.  In a directory only root writes nothing can be planted;
    should something be there all the same, the next name is taken."""
    from ebpftop.sources.flight import FlightRecorderSource

    (snap,) = _alerting(["cat"])
    d = tmp_path / "fl"
    d.mkdir(mode=0o700)
    victim = tmp_path / "victim"
    victim.write_text("keep")
    cause = f"alert: cat opened {snap.alerts[0].path}"
    (d / FlightRecorderSource._name(snap, cause, 1, 1)).symlink_to(victim)
    (d / FlightRecorderSource._name(snap, cause, 2, 1)).mkdir()
    _, out = _flights(tmp_path, [snap])
    assert victim.read_text() == "keep"
    (written,) = [p for p in d.iterdir() if p.is_file() and not p.is_symlink()]
    assert written.name == FlightRecorderSource._name(snap, cause, 3, 1) and len(read_recording(written)) == 1
    assert str(written) in out[0].notices[0]


def test_a_burst_of_alerts_writes_each_interval_once_within_the_budget(tmp_path):
    """Finding 3: every alert wrote the whole kept window again, without
    bound.  An alert every other interval for 60 intervals, 1 s after each:
    every interval is in exactly one recording, until the budget removes
    the oldest; the total stays within it; only this run's files go."""
    (tmp_path / "fl").mkdir(mode=0o700)
    foreign = tmp_path / "fl" / "ebpftop-20260101-000000.000-1-1-alert.jsonl"
    foreign.write_text("an earlier run's, or someone's: never removed\n")
    one = len(dumps(sample_snapshot())) + 1
    budget = 12 * one
    snaps = [replace(s, alerts=s.alerts if i % 2 == 0 else ()) for i, s in enumerate(_alerting(["cat"] * 60))]
    d, out = _flights(tmp_path, snaps, after_s=1.0, max_bytes=budget)
    assert [s.time for s in out] == [s.time for s in snaps]  # every interval came through
    ours = sorted((p for p in d.iterdir() if p != foreign), key=lambda p: p.stat().st_mtime_ns)
    assert sum(p.stat().st_size for p in ours) <= budget
    times = [s.time for p in ours for s in read_recording(p)]
    assert len(times) == len(set(times))  # no interval written twice
    assert times == [s.time for s in snaps][-len(times):]  # the newest, the oldest removed first
    removed = [n for s in out for n in s.notices if n.startswith("flight recorder: removed")]
    assert removed and foreign.read_text().startswith("an earlier run's")


def test_a_recording_larger_than_a_quarter_of_the_budget_goes_on_in_a_new_file(tmp_path):
    one = len(dumps(sample_snapshot())) + 1
    snaps = _alerting(["cat"] * 20)  # an alert at every interval: one recording, ever extended
    d, out = _flights(tmp_path, snaps, after_s=1.0, max_bytes=12 * one)
    files = sorted(d.iterdir())
    assert sum(p.stat().st_size for p in files) <= 12 * one
    assert all(p.stat().st_size <= 3 * one for p in files)
    assert any(p.name.endswith("-part2.jsonl") for p in files) or any("-part" in p.name for p in files)
    notices = [n for s in out for n in s.notices]
    assert any("reached a quarter of --flight-max-size" in n for n in notices)


_FLIGHT_FAILING_DISK = textwrap.dedent("""
    # Every write fails (RLIMIT_FSIZE 1 byte: EFBIG, as ENOSPC on a full disk)
    # for the first three intervals of an alert, then works again.
    import json, resource, signal, sys
    from ebpftop.sources.flight import FlightRecorderSource, prepare_dir
    from ebpftop.sources.replay import ReplaySource
    from tests.unit.test_security import _alerting

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    source = FlightRecorderSource(ReplaySource(_alerting(["cat"] * 6)), prepare_dir(sys.argv[1]), [], after_s=60.0)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1, hard))
    out = [source.poll() for _ in range(3)]
    resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    out += [source.poll() for _ in range(3)]
    source.close()
    print(json.dumps([[s.time, list(s.notices)] for s in out]))
""")


def test_flight_writes_that_fail_are_written_when_it_works_again(tmp_path):
    """The intervals stay kept and go to the recording once it can write
    again; said once each way; every interval came through meanwhile."""
    d = tmp_path / "fl"
    proc = subprocess.run([sys.executable, "-c", _FLIGHT_FAILING_DISK, str(d)], cwd=REPO, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    polled = json.loads(proc.stdout)
    expected = [s.time for s in _alerting(["cat"] * 6)]
    assert [t for t, _ in polled] == expected
    notices = [n for _, ns in polled for n in ns]
    assert sum("cannot write" in n and "File too large" in n for n in notices) == 1, notices
    assert sum(n.startswith("flight recorder: writing to") and n.endswith(" again") for n in notices) == 1
    (only,) = d.iterdir()
    assert [s.time for s in read_recording(only)] == expected


# -- untrusted input bounded while it is read ----------------------------------

_PEAK = textwrap.dedent("""
    # VmHWM, not getrusage's ru_maxrss: that one keeps the high-water mark of
    # the process that forked it (pytest's) across exec
    import sys
    from ebpftop import cli
    rc = cli.main(sys.argv[1:])
    hwm = next(line for line in open("/proc/self/status") if line.startswith("VmHWM:"))
    print(int(hwm.split()[1]) // 1024, rc, file=sys.stderr)
""")


def _replay_peak_mib(*argv, stdin=None) -> tuple[int, int, str]:
    """(peak RSS in MiB, exit status, the error line) of a replay in its own process."""
    proc = subprocess.run([sys.executable, "-c", _PEAK, *argv], cwd=REPO, capture_output=True, text=True,
                          timeout=120, stdin=stdin)
    *lines, last = proc.stderr.splitlines()
    peak, rc = map(int, last.split())
    return peak, rc, "\n".join(lines)


@pytest.fixture(scope="module")
def bombs(tmp_path_factory):
    """A gzip file of one 300 MiB line (300 KiB compressed), and one of 50
    MiB of newlines."""
    d = tmp_path_factory.mktemp("bombs")
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    with open(d / "line.gz", "wb") as f:
        for _ in range(300):
            f.write(z.compress(b"a" * (1 << 20)))
        f.write(z.flush())
    (d / "newlines.gz").write_bytes(gzip.compress(b"\n" * (50 << 20), 9))
    return d


def test_a_gzip_bomb_of_one_line_stops_at_the_line_limit_in_bounded_memory(bombs):
    peak, rc, err = _replay_peak_mib("--replay", str(bombs / "line.gz"), "--json")
    assert rc == 2 and err == f"ebpftop: error: recording {bombs / 'line.gz'} line 1: longer than 64 MiB", err
    assert peak < 160, peak  # the line limit and a piece: before, the whole line and a copy (> 600)


def test_a_file_of_newlines_is_refused_at_once(bombs):
    t = time.monotonic()
    peak, rc, err = _replay_peak_mib("--replay", str(bombs / "newlines.gz"), "--json")
    assert rc == 2 and "more than 1,000 blank lines: not an ebpftop recording" in err and err.count("\n") == 0
    assert peak < 100 and time.monotonic() - t < 20, peak


def _at_most_2_gib():
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))


def test_devices_are_refused_and_stdin_and_fifos_are_read(tmp_path):
    """--replay /dev/zero took 21 GB in 60 s, silently (here capped at 2 GiB
    of address space, in case); a FIFO with no writer waited forever, silently."""
    proc = subprocess.run([sys.executable, "-m", "ebpftop", "--replay", "/dev/zero", "--json"], cwd=REPO,
                          capture_output=True, text=True, timeout=60, preexec_fn=_at_most_2_gib)
    assert proc.returncode == 2
    assert proc.stderr == "ebpftop: error: recording /dev/zero: not a regular file (a FIFO, or - for stdin, are read too)\n"
    rec = tmp_path / "rec.jsonl"
    rec.write_text(dumps(sample_snapshot()) + "\n" + dumps(sample_snapshot(t=T0 + 5)) + "\n")
    with open(rec, "rb") as f:
        proc = subprocess.run([sys.executable, "-m", "ebpftop", "--replay", "-", "--json"], stdin=f, cwd=REPO,
                              capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and len(proc.stdout.splitlines()) == 2, proc.stderr
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    proc = subprocess.Popen([sys.executable, "-m", "ebpftop", "--replay", str(fifo), "--json"], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stderr.readline() == f"ebpftop: recording {fifo} is a FIFO: waiting for a writer\n"
    with open(fifo, "wb") as w:
        w.write(rec.read_bytes())
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0 and len(out.splitlines()) == 2


def test_replay_from_stdin_needs_json(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--replay", "-"])
    assert "--replay - (stdin) needs --json" in capsys.readouterr().err


def test_a_recording_past_the_row_budget_replays_its_first_part_and_says_so(tmp_path):
    from ebpftop.history import snapshot_rows
    from ebpftop.sources.replay import load

    rec = tmp_path / "rec.jsonl"
    rec.write_text("".join(dumps(sample_snapshot(t=T0 + 5 * i)) + "\n" for i in range(40)))
    rows = snapshot_rows(sample_snapshot())
    before, played = load(rec, max_rows=10 * rows)
    assert before == [] and [s.time for s in played] == [T0 + 5 * i for i in range(10)]
    assert "the rest is left out, more than the" in played[0].notices[0]
    before, played = load(rec, at="-10s", max_rows=10 * rows)  # from the end: the last rows kept
    assert [s.time for s in before + played] == [T0 + 5 * i for i in range(30, 40)] and len(played) == 3
    assert "the 30 intervals before" in played[0].notices[0]
    when = sample_snapshot(t=T0 + 5 * 20)
    import datetime as dt

    clock = dt.datetime.fromtimestamp(when.time).strftime("%H:%M:%S")
    before, played = load(rec, at=clock, max_rows=10 * rows)  # the played part first, then what fits before
    assert played[0].time == when.time and len(played) == 10 and before == []
    before, played = load(rec, at=clock, max_rows=30 * rows)
    assert [s.time for s in before] == [T0 + 5 * i for i in range(10, 20)] and len(played) == 20


# -- item 10: no value the command line takes is infinite or absurd ------------

@pytest.mark.parametrize("argv, message", [
    (["--flight-recorder", "/x", "--trigger", "read_p99>1e309"], "1e309 is out of range"),
    (["--flight-recorder", "/x", "--trigger", "read_p99>1e308s"], "1e308s is out of range"),
    (["--flight-recorder", "/x", "--trigger", "lost>1e20"], "1e20 is out of range"),
    (["--history", "9" * 400], "longer than a year"),
    (["--flight-recorder", "/x", "--flight-after", "9999999h"], "longer than a year"),
    (["--interval", "1e309"], "must be a positive number of seconds, at most 86400"),
    (["--interval", "inf"], "must be a positive number of seconds"),
    (["--speed", "1e300"], "at most 10000"),
    (["--record", "x", "--record-max-size", "9" * 400], "not a size"),
    (["--record", "x", "--record-max-size", "99999999999G"], "larger than a file can be"),
    (["--flight-recorder", "/x", "--flight-max-size", "0"], "not a size"),
    (["--record", "x", "--record-keep", "9" * 40], "must be from 1 to 1,000"),
    (["--pid", "9" * 30], "must be from 1 to 4,194,304"),
    (["--json", "--count", "9" * 5000], "not a whole number"),
    (["--flight-max-size", "1M"], "--flight-max-size needs --flight-recorder"),
])
def test_infinite_or_absurd_numbers_are_one_argparse_error(argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(argv)
    err = capsys.readouterr().err
    assert e.value.code == 2 and message in err and "Traceback" not in err, err


# -- item 11: memory bounded by rows, pids counted --------------------------------

def test_the_row_budget_counts_a_syscall_rows_pids():
    """A fork storm: one row of 10,000 pids an interval.  Counted as one row
    it let 600 intervals take 616 MiB against a budget of about 110
    (tests/bench/history_memory.py --fork-storm)."""
    from ebpftop.history import MAX_KEPT_ROWS, History
    from ebpftop.sets import syscalls

    h = History()
    for s in range(100):
        storm = syscalls.syscall_rows([("true", 100_000 + s * 10_000 + i, 40, 3) for i in range(10_000)])
        h.add(replace(sample_snapshot(t=T0 + s), syscalls=storm))
    pids = sum(len(r.by_pid) for snap, _ in h.snapshots for r in snap.syscalls)
    assert pids <= MAX_KEPT_ROWS and len(h.snapshots) < 100


def test_a_fifo_whose_writer_is_done_before_the_reader_waits_is_read_whole(tmp_path, monkeypatch):
    """The reader's first (non-blocking) open lets a writer in at once: a
    writer that writes everything and closes before the reader waits must
    not leave it waiting for ever (a second open of the FIFO did)."""
    import threading

    from ebpftop import recording

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    data = b"line one\nline two\n"

    def writer_done_meanwhile(_text):
        with open(fifo, "wb") as w:  # our reader end is open: this does not wait
            w.write(data)

    monkeypatch.setattr(recording, "to_stderr", writer_done_meanwhile)
    got = []

    def read():
        fd = recording._open_input(str(fifo))
        got.append(recording._read_exactly(fd, 1 << 16))
        os.close(fd)

    t = threading.Thread(target=read, daemon=True)
    t.start()
    t.join(timeout=10)
    assert not t.is_alive() and got == [data]
