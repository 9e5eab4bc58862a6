"""Command line: argparse -> options -> the app, or headless JSON."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from ebpftop import __version__, filters, sets
from ebpftop.text import to_stderr

EPILOG = """\
examples:
  sudo ebpftop                          the live monitor (keys: ? for help)
  sudo ebpftop --comm nginx             start filtered on process names containing "nginx"
  sudo ebpftop --json --count 2         two intervals as JSON lines, then exit
  sudo ebpftop --json --port 53         only TCP connections and UDP flows on port 53 (other tabs as usual)
  sudo ebpftop --container web          only what runs in the container named web (g groups by container)
  sudo ebpftop --record today.jsonl     watch live, and record every interval
  ebpftop --replay today.jsonl          replay a recording (no root needed)
  sudo ebpftop --prometheus 9435        serve metrics on http://127.0.0.1:9435/metrics
"""


# The largest values the command line takes: beyond them a value is a typo or
# an attempt to make something never happen (an infinite --history, a
# --trigger threshold of 1e309 that no figure can reach).
MAX_INTERVAL_S = 86400.0  # as the largest interval a recording may hold
MAX_SPEED = 10000.0
MAX_DURATION_S = 366 * 86400.0
MAX_SIZE = (1 << 63) - 1  # what a file's size can be


def _bounded_float(text: str, what: str, most: float) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < v <= most:  # NaN and infinity fail this too
        raise argparse.ArgumentTypeError(f"must be a positive number {what}, at most {most:g}, not {text}")
    return v


def _interval(text: str) -> float:
    return _bounded_float(text, "of seconds", MAX_INTERVAL_S)


def _speed(text: str) -> float:
    return _bounded_float(text, "(2 plays twice as fast)", MAX_SPEED)


def _percent_of_a_cpu(text: str) -> float:
    import os

    cpus = os.cpu_count() or 1
    try:
        v = float(text.rstrip("%"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < v <= 100 * cpus:
        raise argparse.ArgumentTypeError(f"must be a share of one CPU in percent, above 0 and at most "
                                         f"{100 * cpus} ({cpus} CPUs here), not {text}")
    return v


def _whole(most: int):
    """A whole number from 1 to most."""

    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text[:40]!r}") from None
        if not 0 < v <= most:
            raise argparse.ArgumentTypeError(f"must be from 1 to {most:,}, not {text[:40]}")
        return v

    return parse


def _profile_hz(text: str) -> int:
    from ebpftop.sets.profile import MAX_HZ

    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text[:40]!r}") from None
    if not 0 <= v <= MAX_HZ:
        raise argparse.ArgumentTypeError(f"must be from 0 (no profile) to {MAX_HZ} samples a second, not {text[:40]}")
    return v


def _slow_io_ms(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of milliseconds: {text[:40]!r}") from None
    if not 0 <= v <= 3_600_000:  # also refuses nan and inf
        raise argparse.ArgumentTypeError(f"must be from 0 (every I/O) to 3600000 ms, not {text[:40]}")
    return v


_count = _whole(1 << 62)
_pid = _whole(1 << 22)  # PID_MAX_LIMIT
_files_to_keep = _whole(1000)
_label_values = _whole(1_000_000)


def _port(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 < v < 65536:
        raise argparse.ArgumentTypeError(f"must be 1-65535, not {v}")
    return v


def _comm(text: str) -> str:
    if not text:
        raise argparse.ArgumentTypeError("must not be empty")
    if len(text.encode()) > 15:
        raise argparse.ArgumentTypeError(f"longer than a process name can be (15 bytes): {text!r}")
    return text


def _container(text: str) -> str:
    text = text.strip()
    if not text or any(ord(ch) < 32 or ch == "\x7f" for ch in text):
        raise argparse.ArgumentTypeError(f"not a container name: {text!r}")
    return text


def _duration(text: str) -> float:
    """'90s', '5m', '1h', '1.5h' (a bare number is seconds) -> seconds."""
    import re

    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(s|m|min|h)?\s*", text)
    if not m or float(m.group(1)) <= 0:
        raise argparse.ArgumentTypeError(f"not a duration: {text[:40]!r} (90s, 5m, 1h)")
    seconds = float(m.group(1)) * {"s": 1, "m": 60, "min": 60, "h": 3600}[m.group(2) or "s"]
    if not seconds <= MAX_DURATION_S:
        raise argparse.ArgumentTypeError(f"longer than a year: {text[:40]}")
    return seconds


def _size(text: str) -> int:
    """'100M', '1G', '512K', or bytes -> bytes."""
    import re

    m = re.fullmatch(r"\s*([0-9]{1,30})\s*([KMG]i?B?)?\s*", text, re.IGNORECASE)
    if not m or int(m.group(1)) <= 0:
        raise argparse.ArgumentTypeError(f"not a size: {text[:40]!r} (100M, 1G)")
    unit = (m.group(2) or "")[:1].upper()
    n = int(m.group(1)) << {"": 0, "K": 10, "M": 20, "G": 30}[unit]
    if n > MAX_SIZE:
        raise argparse.ArgumentTypeError(f"larger than a file can be: {text}")
    return n


def _trigger(text: str):
    from ebpftop import triggers

    try:
        return triggers.parse(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e).removeprefix(f"--trigger {text!r}: ")) from None


def _listen(text: str) -> tuple[str, int]:
    from ebpftop.exporter import parse_listen

    try:
        return parse_listen(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _probe_sets(text: str) -> tuple[str, ...]:
    try:
        return sets.parse_list(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ebpftop",
        description="A top-like monitor of what the Linux kernel sees, from eBPF tracepoints: "
        "on-CPU time and where it goes, run-queue latency and a CPU profile with stacks, "
        "TCP connections and traffic, UDP flows, syscalls, read() and write() latency, file opens, "
        "page faults, processes, watched-file alerts and the probes' own cost.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("-i", "--interval", type=_interval, default=5.0, metavar="S",
                   help="seconds between polls of the kernel maps (default 5)")
    p.add_argument("-c", "--comm", type=_comm, metavar="NAME",
                   help="only processes whose name contains NAME (case-insensitive)")
    p.add_argument("-p", "--pid", type=_pid, metavar="PID", help="only this process id")
    p.add_argument("-P", "--port", type=_port, metavar="PORT", help="only TCP connections and UDP flows with this local or remote port")
    p.add_argument("-C", "--container", type=_container, metavar="NAME",
                   help="only this container: its name, pod/name, pod, the start of its id (4+ characters), "
                        "a systemd unit, or 'host' for what runs in none")
    p.add_argument("--json", action="store_true", help="headless: print one JSON object per interval")
    p.add_argument("-n", "--count", type=_count, metavar="N", help="with --json: exit after N intervals")
    p.add_argument("--record", metavar="FILE",
                   help="also write every interval to FILE (JSON lines), in a directory only root (or you) can write")
    p.add_argument("--record-max-size", type=_size, metavar="SIZE",
                   help="with --record: start a new file when it reaches SIZE (100M, 1G), keeping the last "
                        "--record-keep (FILE.1, FILE.2, ...; FILE.1.gz for FILE.gz, which is gzip-compressed)")
    p.add_argument("--record-keep", type=_files_to_keep, default=5, metavar="N",
                   help="with --record-max-size: how many full files to keep besides the current one (default 5)")
    p.add_argument("--replay", metavar="FILE",
                   help="play a recording instead of tracing (no root needed; a .gz one too; - reads stdin, with --json)")
    p.add_argument("--speed", type=_speed, default=1.0, metavar="X",
                   help="replay speed: 2 plays twice as fast (default 1)")
    p.add_argument("--history", type=_duration, default=3600.0, metavar="DURATION",
                   help="how far back the TUI can rewind ([ ] { }) and the flight recorder keeps (default 1h; "
                        "at most 400,000 rows either way)")
    p.add_argument("--flight-recorder", metavar="DIR",
                   help="when an alert fires or a --trigger is crossed, write the kept --history and the next "
                        "--flight-after to a new recording in DIR, a directory only root (or you) can write "
                        "(replay it with --replay)")
    p.add_argument("--trigger", type=_trigger, action="append", default=[], metavar="EXPR",
                   help="with --flight-recorder: also record when this is true of an interval, e.g. "
                        "'read_p99>10ms', 'file_open_errors>100', 'syscalls_per_s>1e6'; repeatable")
    p.add_argument("--flight-after", type=_duration, default=60.0, metavar="DURATION",
                   help="with --flight-recorder: how long to go on recording after the cause (default 1m)")
    p.add_argument("--flight-max-size", type=_size, metavar="SIZE",
                   help="with --flight-recorder: at most SIZE (100M, 1G) for this run's recordings, the oldest removed "
                        "first (default: the smaller of 256M and a tenth of the free space at the start)")
    p.add_argument("--at", metavar="TIME",
                   help="with --replay: start at this time of day (10:32, 10:32:05) or this long before the end "
                        "(-5m, -90s, -1h); in the TUI the intervals before it are kept to rewind into ([)")
    p.add_argument("--prometheus", type=_listen, metavar="[ADDR:]PORT",
                   help="headless: serve Prometheus metrics on /metrics (ADDR defaults to 127.0.0.1)")
    p.add_argument("--openmetrics", nargs="?", const="", metavar="INSTANCE",
                   help="with --replay: write the recording on stdout as the Prometheus metrics it would have served "
                        "at each interval, in OpenMetrics (for promtool tsdb create-blocks-from openmetrics), "
                        "labelled instance=INSTANCE (default: the recording's file name) and job=ebpftop")
    p.add_argument("--web-config", metavar="FILE",
                   help="with --prometheus: TLS and basic auth, from a file in the format Prometheus's exporters read "
                        "(tls_server_config: cert_file, key_file, client_ca_file, client_auth_type, min_version; "
                        "basic_auth_users: name -> bcrypt hash)")
    p.add_argument("--max-label-values", type=_label_values, default=100, metavar="N",
                   help="with --prometheus: at most N process names (or ports) per metric; the rest count as 'other'")
    p.add_argument("--probe-cost", action="store_true",
                   help="measure ebpftop's own BPF programs from the start (kernel run-time statistics; "
                        "in the TUI, c toggles it)")
    p.add_argument("--max-cpu", type=_percent_of_a_cpu, metavar="PCT",
                   help="an overhead budget, in percent of one CPU: over it, ebpftop samples the latency probes "
                        "(counts become estimates), then detaches the costliest probe sets, and restores them "
                        "when the load falls (turns on the kernel's run-time statistics; off by default)")
    p.add_argument("--watch", action="append", default=[], metavar="PATH",
                   help="also alert on every open of PATH (DIR/* for the files in DIR); repeatable. "
                        "Defaults: /etc/shadow, /etc/gshadow, /etc/sudoers, /etc/sudoers.d/*, /root/.ssh/*, "
                        "every user's ~/.ssh/*, and the lines of $XDG_CONFIG_HOME/ebpftop/watch")
    p.add_argument("--no-default-watch", action="store_true", help="watch only what --watch and the config file name")
    p.add_argument("--syslog", action="store_true", help="also write each alert (authpriv.warning) and each signal or renice sent (authpriv.notice) to syslog")
    p.add_argument("--profile-hz", type=_profile_hz, default=sets.profile.DEFAULT_HZ, metavar="HZ",
                   help=f"the CPU profile's samples a second per CPU, with stacks (default {sets.profile.DEFAULT_HZ}; 0: no profile)")
    p.add_argument("--folded", metavar="FILE",
                   help="write the CPU profile's stacks, summed since the start for what the filter matches, to FILE "
                        "in folded form (flamegraph.pl, speedscope), rewritten at each interval; also of a --replay")
    p.add_argument("--slow-io", type=_slow_io_ms, default=sets.disk.DEFAULT_SLOW_MS, metavar="MS",
                   help=f"list each disk I/O that takes at least MS milliseconds (default {sets.disk.DEFAULT_SLOW_MS:g}; "
                        "0: every one; the Disk tab's < and > change it while running)")
    p.add_argument("--probe-sets", "--panes", dest="probe_sets", type=_probe_sets, default=sets.NAMES, metavar="LIST",
                   help=f"comma-separated probe sets to load (default all: {','.join(sets.NAMES)}); "
                        "--panes is its older name")
    p.add_argument("--config", metavar="FILE",
                   help="read the options from FILE instead of /etc/ebpftop/config.toml and "
                        "~/.config/ebpftop/config.toml (TOML; keys are the long options' names)")
    p.add_argument("--no-config", action="store_true", help="read no config file")
    p.add_argument("--version", action="version", version=f"ebpftop {__version__}")
    return p


def _config_files(argv: list[str]) -> tuple[list[Path], bool]:
    """The config files to read, as the command line chooses, and whether
    they must be readable (one named by --config)."""
    from ebpftop import config

    if any(a in ("-h", "--help", "--version", "--no-config") for a in argv):
        return [], False
    for i, a in enumerate(argv):
        if a == "--config" and i + 1 < len(argv) or a.startswith("--config="):
            path = Path(argv[i + 1] if a == "--config" else a.split("=", 1)[1])
            if not path.exists():
                raise config.ConfigError(f"cannot read config file {path}: No such file or directory")
            return [path], True
    return [config.SYSTEM_PATH, config.user_path()], False


def _folded_file(path: str | None):
    if not path:
        return None
    from ebpftop.sources.folded import FoldedFile

    return FoldedFile(path)


def _raise_exit(signum, _frame):
    # SIGTERM/SIGHUP unwind like Ctrl-C, so every finally: detaches the probes.
    raise SystemExit(128 + signum)


def _end_lingering_threads(rc: int) -> None:
    """The probes are detached and the recording closed: if a thread of
    Textual's outlives the app (its input thread, after the terminal went
    away mid-start-up), it must not keep the process alive, spinning."""
    import os
    import threading

    lingering = [t for t in threading.enumerate()
                 if t is not threading.current_thread() and not t.daemon and t.is_alive()]
    for t in lingering:
        t.join(timeout=1.0)
    if any(t.is_alive() for t in lingering):
        sys.stdout.flush()
        os._exit(rc)


def _joined_at(argv: list[str]) -> list[str]:
    """'--at -5m' as '--at=-5m': argparse takes a value starting with '-' for an option."""
    out = list(argv)
    for i in range(len(out) - 1):
        if out[i] == "--at" and out[i + 1].startswith("-"):
            out[i:i + 2] = [f"--at={out[i + 1]}"]
            break
    return out


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except KeyboardInterrupt:  # Ctrl-C while still starting (imports, checks): no traceback
        return 130


def _main(argv: list[str] | None) -> int:
    from ebpftop import config

    parser = build_parser()
    argv = _joined_at(sys.argv[1:] if argv is None else argv)
    try:
        files, required = _config_files(argv)
        from_files = config.to_argv(parser, files, argv, required)
    except config.ConfigError as e:
        to_stderr(f"error: {e}")
        return 2
    args = parser.parse_args(from_files + argv)
    if args.count is not None and not args.json:
        parser.error("--count needs --json")
    if args.at is not None and not args.replay:
        parser.error("--at needs --replay")
    if args.record_max_size and not args.record:
        parser.error("--record-max-size needs --record")
    if args.trigger and not args.flight_recorder:
        parser.error("--trigger needs --flight-recorder")
    if args.flight_recorder and args.replay:
        parser.error("--flight-recorder records live tracing, not a replay")
    if args.max_cpu is not None and args.replay:
        parser.error("--max-cpu budgets live tracing, not a replay")
    if args.replay and args.record:
        parser.error("--record and --replay cannot be combined")
    if args.openmetrics is not None and (not args.replay or args.json or args.prometheus):
        parser.error("--openmetrics writes a --replay's recording (and cannot be combined with --json or --prometheus)")
    if args.prometheus and (args.json or args.replay or args.record):
        parser.error("--prometheus cannot be combined with --json, --record or --replay")
    if args.web_config is not None and not args.prometheus:
        if any(w.startswith("--web-config=") for w in from_files):
            args.web_config = None  # a config file's setting for the exporter: the other modes serve nothing
        else:
            parser.error("--web-config needs --prometheus")
    if args.flight_max_size and not args.flight_recorder:
        parser.error("--flight-max-size needs --flight-recorder")
    if args.replay == "-" and not args.json:
        parser.error("--replay - (stdin) needs --json: the TUI reads its keys from the terminal")
    if args.profile_hz == 0:
        args.probe_sets = tuple(p for p in args.probe_sets if p != "profile")
        if not args.probe_sets:
            parser.error("--profile-hz 0 leaves no probe set to load")
    if args.folded and "profile" not in args.probe_sets and not args.replay:
        parser.error("--folded needs the profile (--profile-hz 0 or --probe-sets without profile turn it off)")
    web = None
    if args.web_config is not None:  # read and checked before anything is attached ('' too: never served unprotected)
        from ebpftop.webconfig import WebConfigError, load

        try:
            web = load(args.web_config)
        except WebConfigError as e:
            to_stderr(f"error: --web-config {e}")
            return 2
    flt = filters.Filter(comm=args.comm or "", pid=args.pid, port=args.port, container=args.container)
    backlog: list = []  # --at: the recording's intervals before that moment (the TUI rewinds into them)

    from ebpftop.recording import Recorder, RecordingError

    # Start-up: a bad recording, directory or file is one line, exit status 2,
    # before any file is made (the log first: refused, it must not leave a
    # recording begun).
    log_fd = None
    if not (args.json or args.prometheus or args.openmetrics is not None):
        from ebpftop.terminal import LogError, open_log

        try:
            log_fd = open_log()
        except LogError as e:
            to_stderr(f"error: {e}")
            return 2
    try:
        folded = None  # --folded FILE: made once the checks that may refuse the start have passed, before --record FILE
        if args.replay:
            from ebpftop.sources.replay import ReplaySource, load

            try:
                backlog, played = load(args.replay, args.at)
            except ValueError as e:  # --at outside the recording
                to_stderr(f"error: {e}")
                return 2
            label = "stdin" if args.replay == "-" else Path(args.replay).name
            if args.openmetrics is not None:
                from ebpftop import exporter

                for chunk in exporter.openmetrics(backlog + played, args.openmetrics or label, args.max_label_values):
                    sys.stdout.write(chunk)
                return 0
            folded = _folded_file(args.folded)
            source = ReplaySource(played, label=label, speed=args.speed)
        else:
            from ebpftop.preflight import PreflightError, check_live

            try:
                check_live()
            except PreflightError as e:
                to_stderr(f"error: {e}")
                return 2
            from ebpftop import watch
            from ebpftop.sources.live import LiveSource

            try:
                watched = watch.build(args.watch, defaults=not args.no_default_watch)
            except watch.WatchError as e:
                to_stderr(f"error: {e}")
                return 2
            flight_dir = None
            if args.flight_recorder:
                from ebpftop.sources.flight import prepare_dir

                flight_dir = prepare_dir(args.flight_recorder)
            folded = _folded_file(args.folded)
            if args.syslog:
                import syslog

                # named ebpftop (and its pid) however it was started: python -m
                # ebpftop would otherwise log as "__main__.py"
                syslog.openlog("ebpftop", syslog.LOG_PID)
            recorder = Recorder(args.record, max_bytes=args.record_max_size, keep=args.record_keep) if args.record else None
            source = LiveSource(interval_s=args.interval, probe_sets=args.probe_sets, probe_cost=args.probe_cost,
                                watch=watched, syslog=args.syslog, max_cpu=args.max_cpu,
                                options={"profile_hz": args.profile_hz, "slow_io_ms": args.slow_io})
            if flight_dir is not None:
                from ebpftop.sources.flight import FlightRecorderSource

                source = FlightRecorderSource(source, flight_dir, args.trigger, window_s=args.history,
                                              after_s=args.flight_after, max_bytes=args.flight_max_size)
            if recorder is not None:
                from ebpftop.sources.recorded import RecordedSource

                source = RecordedSource(source, recorder)
        if folded is not None:
            from ebpftop.sources.folded import FoldedSource

            source = FoldedSource(source, folded, flt)
    except RecordingError as e:
        to_stderr(f"error: {e}")
        return 2

    # A shell starts background jobs with SIGINT ignored, and Python then keeps
    # it ignored: restore Ctrl-C / kill -INT so they always stop ebpftop.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _raise_exit)
    signal.signal(signal.SIGHUP, _raise_exit)
    tui = False
    rc = 1  # the exit status, should an exception end the TUI
    try:
        if args.prometheus:
            from ebpftop import exporter

            return exporter.run(source, args.prometheus, args.max_label_values, web)
        if args.json:
            from ebpftop import headless

            return headless.run(source, flt, args.count, paced=not args.replay)
        from ebpftop.terminal import terminal_for_textual

        with terminal_for_textual(log_fd):
            if source.kind == "live":
                # Live: compile the probes on the other core while Textual loads
                # (the app's own start() then waits for this one).  Only inside
                # terminal_for_textual: the compile swaps fd 2 for a moment.
                import threading

                threading.Thread(target=source.start, name="ebpftop-start", daemon=True).start()
            from ebpftop.app import run_app

            tui = True
            rc = run_app(source, flt, backlog, history_s=args.history, syslog=args.syslog)
            return rc
    except KeyboardInterrupt:
        rc = 130
        return rc
    except SystemExit as e:
        rc = e.code if isinstance(e.code, int) else 1
        raise
    finally:
        source.close()  # detaches the probes; closes the recording
        if tui:
            _end_lingering_threads(rc)
