"""Record the real-kernel recording that the UI tests and screenshots replay.

Run as root (make recording): it traces this machine for three intervals
while named workloads run (tests/kernel/workload.c under several names), so
every pane has real rows.  Review the result before committing it: it holds
this machine's process names and paths."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from ebpftop.recording import Recorder
from ebpftop.sources.live import LiveSource

HERE = Path(__file__).parent
OUT = HERE / "data" / "recording.jsonl"
INTERVALS = 3
INTERVAL_S = 2.0


def record(source, out: Path, intervals: int, interval_s: float) -> None:
    """Write `intervals` polls of a started source to out, from empty maps."""
    recorder = Recorder(out)
    try:
        source.poll()  # start from empty maps
        for _ in range(intervals):
            time.sleep(interval_s)
            recorder.write(source.poll())
    finally:
        recorder.close()


def main() -> int:
    tmp = Path(tempfile.mkdtemp(prefix="ebpftop-rec-"))
    binary = tmp / "workload"
    subprocess.run(["gcc", "-O2", "-pthread", "-o", str(binary), str(HERE.parent / "kernel" / "workload.c")], check=True)
    data = tmp / "data.bin"
    data.write_text("x")

    def named(name: str) -> Path:
        p = tmp / name
        shutil.copy(binary, p)
        return p

    jobs = [
        (named("webserver"), ["tcp4"]),
        (named("webserver"), ["tcp6"]),
        (named("dns-client"), ["udp4", "40", "64"]),  # its reader child is "dns-clientr"
        (named("statsd"), ["udp6", "300", "1200"]),
        (named("db-writer"), ["pipe", "30", "2000"]),
        (named("db-writer"), ["syscalls", "200000"]),
        (named("db-writer"), ["writes", "20", "2000"]),
        (named("backup-job"), ["opens", "500", str(data)]),
        (named("backup-job"), ["opens", "40", str(tmp / "missing.conf")]),
        (named("cache-warmer"), ["faults", "20000"]),
        (named("backup-job"), ["opens", "1", "/etc/shadow"]),  # a watched file: an alert
    ]
    stop = threading.Event()

    def run_jobs():
        while not stop.is_set():
            for path, args in jobs:
                subprocess.run([str(path), *args], stdout=subprocess.DEVNULL, check=False)
            stop.wait(0.3)

    source = LiveSource(interval_s=INTERVAL_S, probe_cost=True)
    print("status:", source.start(), file=sys.stderr)
    worker = threading.Thread(target=run_jobs)
    worker.start()
    try:
        record(source, OUT, INTERVALS, INTERVAL_S)
    finally:
        stop.set()
        worker.join()
        source.close()
        shutil.rmtree(tmp)
    print(f"wrote {OUT}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
