"""--flight-recorder end to end: ebpftop headless, a workload with known
counts, then an open of a watched file; the recording it writes holds the
intervals before the alert (with those counts) and the ones after, and
replays."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from ebpftop.recording import read_recording
from tests.conftest import require_kernel_support
from tests.kernel.test_lifecycle import REPO, prog_ids, wait_detached


@pytest.fixture(autouse=True)
def _kernel():
    require_kernel_support()


def test_a_watched_open_writes_the_minutes_before_it_and_the_recording_replays(workload, tmp_path):
    watched = tmp_path / "secret.key"
    watched.write_text("k")
    path = tmp_path / "ordinary.conf"  # opened 23 times before the alert
    flights = tmp_path / "flights"
    before = prog_ids()
    proc = subprocess.Popen(
        [sys.executable, "-m", "ebpftop", "--json", "--interval", "1", "--count", "7", "--panes", "file_opens",
         "--no-default-watch", "--watch", str(watched), "--flight-recorder", str(flights), "--flight-after", "2s"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = json.loads(proc.stdout.readline())  # attached and one interval in
        assert first["status"]["file_opens"] == "ok"
        workload.run("opens", 23, path)
        time.sleep(1.2)  # the alert comes an interval later
        workload.run("opens", 1, watched)
        lines = [first] + [json.loads(line) for line in proc.stdout]
        err = proc.stderr.read()
        assert proc.wait(timeout=30) == 0, err
    finally:
        proc.kill()
    assert wait_detached(prog_ids() - before) == set()
    files = sorted(flights.iterdir())
    assert len(files) == 1 and files[0].name.startswith("ebpftop-") and files[0].name.endswith("-alert.jsonl"), files
    assert oct(files[0].stat().st_mode & 0o777) == "0o600"
    notices = [n for line in lines for n in line["notices"]]
    assert notices[0].startswith(f"flight recorder: alert: {workload.comm} opened {watched}")
    assert str(files[0]) in notices[0] and notices[-1] == f"flight recording {files[0]} complete"
    assert f"ebpftop: flight recorder: alert: {workload.comm}" in err
    recorded = read_recording(files[0])
    alert_at = next(i for i, s in enumerate(recorded) if any(a.path == str(watched) for a in s.alerts))
    before_alert = recorded[:alert_at]
    assert sum(r.count for s in before_alert for r in s.file_opens if r.path == str(path)) == 23
    after = recorded[alert_at + 1:]
    assert 2 <= len(after) <= 3  # the next 2 s, at one interval a second
    assert [s.time for s in recorded] == sorted(s.time for s in recorded)
    replay = subprocess.run([sys.executable, "-m", "ebpftop", "--replay", str(files[0]), "--json"], cwd=REPO,
                            capture_output=True, text=True, timeout=60)
    assert replay.returncode == 0, replay.stderr
    assert len(replay.stdout.splitlines()) == len(recorded)
