"""Writes screenshots/<pane>.svg from the committed real-kernel recordings
(make screenshots; it also makes PNGs when rsvg-convert is there).  Most come
from tests/ui/data/showcase.jsonl.gz: a minute and a half of a machine at
work, every probe set on (a compile loop, a web server under a curl loop,
O_DIRECT disk I/O on a loop device, a watched file opened now and then,
short bursts on CPU), so that timelines and trends have something to show."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

os.environ["TZ"] = "UTC"
time.tzset()

from tests.ui.harness import HERE, KEY, feed, replay_app  # noqa: E402

SHOTS = {
    "tcp": [KEY["network"], "t", "t", "t"],  # new connections (the recording predates TCP traffic)
    "udp": [KEY["network"], "u"],
    "syscalls": [KEY["syscalls"]],
    "read_latency": [KEY["latency"]],
    "file_opens": [KEY["file_opens"]],
    "page_faults": [KEY["page_faults"]],
    "filtered": [KEY["latency"], "slash", *"db-", "enter"],
    "write_latency": [KEY["latency"], "w"],
    "latency_wide": [KEY["latency"]],
    "processes": [KEY["processes"]],
    "probes": [KEY["probes"]],
    "alerts": [KEY["alerts"]],
    "help": ["question_mark"],
    # every interval of the recording taken in, then one back: the rewound status line and timeline
    "rewind": [KEY["syscalls"], "left_square_bracket"],
    "latency_heatmap": [KEY["latency"], "h"],
}
ALL_POLLS = {"rewind", "latency_heatmap"}  # these take all three of the recording's intervals
WIDE = {"latency_wide"}  # drawn on a terminal wider than SIDE_BY_SIDE_WIDTH
# From the hand-built snapshot of the UI tests (the recording predates TCP traffic).
SAMPLE_SHOTS = {
    "tcp_traffic": [KEY["network"]],
    "tcp_by_process": [KEY["network"], "t"],
    "tcp_closed": [KEY["network"], "t", "t"],
}

# From tests/unit/snapshots.py's degraded_snapshot(): an interval that --max-cpu shed load in.
DEGRADED_SHOTS = {"max_cpu": [KEY["latency"]]}

# From tests/ui/data/cpu.jsonl: three intervals of a compile, zstd compressing (built with frame
# pointers) and python3 -m http.server under load, recorded with --probe-sets cpu,profile.
CPU_SHOTS = {
    "cpu": [],
    "cpu_run_queue": ["t"],
    "cpu_hot_functions": ["t", "t"],
    "cpu_flame_graph": ["t", "t", "t"],
}

# From tests/ui/data/disk.jsonl: ext4 made on a loop device, dd O_DIRECT, tar of /usr/share/doc into
# it and sync, then an OOM kill in a 32 MiB memory cgroup and a socket filter dropping a connection's
# segments, recorded with --probe-sets disk,drops,tcp_traffic,oom,processes --slow-io 5.  The disk
# shots show its second interval (the busy one), the others its third.
DISK_SHOTS = {
    "disk": [KEY["disk"]],
    "disk_devices": [KEY["disk"], "t"],
    "disk_slow": [KEY["disk"], "t", "t"],
}
DISK_LATER_SHOTS = {
    "drops": [KEY["network"], "d"],
    "oom_kill": [KEY["processes"], "slash", *"oomhog", "enter"],
}

# From tests/ui/data/containers.jsonl: real Docker containers (make_container_recording.py).
CONTAINER_SHOTS = {
    "containers": [KEY["syscalls"]],
    "containers_grouped": [KEY["syscalls"], "g"],
}


def sample_app():
    from ebpftop.app import EbpftopApp
    from tests.ui.harness import ListSource
    from tests.unit.snapshots import T0, replace, sample_snapshot

    earlier = sample_snapshot(T0 - 5)  # another closed connection, an interval before
    earlier = replace(earlier, tcp_closed=tuple(c._replace(sport=50980, tx_total=1_200, rx_total=52_000)
                                                for c in earlier.tcp_closed))
    return EbpftopApp(ListSource([earlier, sample_snapshot()]), auto_poll=False, clock=lambda: 0.0)


def degraded_app():
    from ebpftop.app import EbpftopApp
    from tests.ui.harness import ListSource
    from tests.unit.snapshots import degraded_snapshot, sample_snapshot

    return EbpftopApp(ListSource([sample_snapshot(), degraded_snapshot()]), auto_poll=False, clock=lambda: 0.0)


SHOWCASE = HERE / "data" / "showcase.jsonl.gz"
SHOWCASE_SHOTS = {
    "cpu": [], "cpu_run_queue": ["t"], "cpu_hot_functions": ["t", "t"], "cpu_flame_graph": ["t", "t", "t"],
    "disk": [KEY["disk"]], "disk_devices": [KEY["disk"], "t"], "disk_slow": [KEY["disk"], "t", "t"],
    "tcp_traffic": [KEY["network"]], "tcp_by_process": [KEY["network"], "t"], "tcp_closed": [KEY["network"], "t", "t"],
    "tcp": [KEY["network"], "t", "t", "t"], "udp": [KEY["network"], "u"], "syscalls": [KEY["syscalls"]],
    "read_latency": [KEY["latency"]], "write_latency": [KEY["latency"], "w"], "latency_wide": [KEY["latency"]],
    "latency_heatmap": [KEY["latency"], "h"], "file_opens": [KEY["file_opens"]], "page_faults": [KEY["page_faults"]],
    "processes": [KEY["processes"]], "probes": [KEY["probes"]], "alerts": [KEY["alerts"]],
    "filtered": [KEY["cpu"], "slash", *"python", "enter"], "help": ["question_mark"],
    "rewind": [KEY["syscalls"], *["left_square_bracket"] * 6],
}
SHOWCASE_POLLS = 18  # every interval of it


async def shoot(name: str, keys: list[str], out: Path) -> None:
    if SHOWCASE.exists() and name in SHOWCASE_SHOTS:
        app = replay_app(SHOWCASE)
        size = (170, 40) if name in WIDE else (150, 36)
        async with app.run_test(size=size) as pilot:
            await feed(app, pilot, polls=SHOWCASE_POLLS)
            await pilot.press(*SHOWCASE_SHOTS[name])
            await pilot.pause()
            app.save_screenshot(str(out / f"{name}.svg"))
        return
    if name in CONTAINER_SHOTS:
        app = replay_app(HERE / "data" / "containers.jsonl")
    elif name in CPU_SHOTS:
        app = replay_app(HERE / "data" / "cpu.jsonl")
    elif name in DISK_SHOTS.keys() | DISK_LATER_SHOTS.keys():
        app = replay_app(HERE / "data" / "disk.jsonl")
    elif name in DEGRADED_SHOTS:
        app = degraded_app()
    else:
        app = sample_app() if name in SAMPLE_SHOTS else replay_app()
    size = (170, 32) if name in WIDE else (150, 24) if name in SAMPLE_SHOTS | DEGRADED_SHOTS.keys() else \
        (150, 34) if name in CPU_SHOTS.keys() | DISK_SHOTS.keys() | DISK_LATER_SHOTS.keys() else (120, 32)
    async with app.run_test(size=size) as pilot:
        await feed(app, pilot, polls=3 if name in ALL_POLLS | CPU_SHOTS.keys() | DISK_LATER_SHOTS.keys() else 2)
        await pilot.press(*keys)
        await pilot.pause()
        app.save_screenshot(str(out / f"{name}.svg"))


def main(out_dir: str) -> int:
    out = Path(out_dir)
    out.mkdir(exist_ok=True)
    for name, keys in {**CPU_SHOTS, **DISK_SHOTS, **DISK_LATER_SHOTS, **SHOTS, **SAMPLE_SHOTS, **CONTAINER_SHOTS, **DEGRADED_SHOTS}.items():
        asyncio.run(shoot(name, keys, out))
        print(f"wrote {out / name}.svg")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1] if len(sys.argv) > 1 else "screenshots"))
