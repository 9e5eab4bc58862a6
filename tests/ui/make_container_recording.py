"""Record tests/ui/data/containers.jsonl: this machine for two intervals while
Docker containers named web, db and cache run named workloads (the
screenshots of the CONTAINER column and of the grouped view replay it).

Run as root with dockerd running.  The image is busybox (Debian's
busybox-static) and the workload, statically linked, under the names
webserver, db-writer and cache-warmer.  Review the result before committing
it: it holds this machine's process names and paths."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from ebpftop.sources.live import LiveSource
from tests.ui.make_recording import record

HERE = Path(__file__).parent
OUT = HERE / "data" / "containers.jsonl"
INTERVALS = 2
INTERVAL_S = 2.0
TAG = "ebpftop-recording:latest"
CONTAINERS = {
    "web": "while true; do /webserver tcp4; /webserver opens 40 /srv/index.html; sleep 0.5; done",
    "db": "while true; do /db-writer pipe 20 1000; /db-writer syscalls 100000; sleep 0.5; done",
    "cache": "while true; do /cache-warmer faults 5000; /cache-warmer opens 5 /etc/cache.conf; sleep 0.5; done",
}


def image(tmp: Path) -> None:
    binary = tmp / "workload"
    subprocess.run(["gcc", "-O2", "-static", "-pthread", "-o", str(binary), str(HERE.parent / "kernel" / "workload.c")],
                   check=True)
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        tar.add(shutil.which("busybox") or "/bin/busybox", arcname="bin/busybox")
        for applet in ("sh", "sleep", "true"):
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(link)
        for name in ("webserver", "db-writer", "cache-warmer"):
            tar.add(binary, arcname=name)
        for d in ("srv", "etc", "tmp"):
            info = tarfile.TarInfo(d)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777
            tar.addfile(info)
    subprocess.run(["docker", "import", "-", TAG], input=data.getvalue(), check=True, capture_output=True)


def main() -> int:
    tmp = Path(tempfile.mkdtemp(prefix="ebpftop-rec-"))
    source = LiveSource(interval_s=INTERVAL_S)
    try:
        image(tmp)
        print("status:", source.start(), file=sys.stderr)
        for name, script in CONTAINERS.items():
            subprocess.run(["docker", "run", "-d", "--rm", "--name", name, TAG, "sh", "-c", script], check=True,
                           capture_output=True)
        time.sleep(1)
        record(source, OUT, INTERVALS, INTERVAL_S)
    finally:
        for name in CONTAINERS:
            subprocess.run(["docker", "rm", "-f", name], capture_output=True)
        subprocess.run(["docker", "rmi", "-f", TAG], capture_output=True)
        source.close()
        shutil.rmtree(tmp)
    print(f"wrote {OUT}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
