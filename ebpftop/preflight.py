"""What live collection needs, checked before anything starts: each missing
piece is one line naming it and its fix."""

from __future__ import annotations

import os
import platform


class PreflightError(Exception):
    pass


def _bcc_installed() -> bool:
    """Whether BCC's Python bindings can be imported, without importing them
    (only ebpftop/sources/live.py does)."""
    import importlib.util

    try:
        return importlib.util.find_spec("bcc") is not None
    except ValueError:  # in sys.modules already, without a spec
        return True


def check_live() -> None:
    if os.geteuid() != 0:
        raise PreflightError("live collection needs root (CAP_BPF, CAP_PERFMON): run it with sudo, or use --replay FILE")
    if not _bcc_installed():
        raise PreflightError(
            "BCC's Python bindings are missing: apt install python3-bpfcc (or run 'make setup'); "
            "the PyPI package named bcc is unrelated"
        )
    build = f"/lib/modules/{platform.release()}/build"
    if not os.path.isdir(build):
        raise PreflightError(
            f"kernel headers missing at {build}: apt install linux-headers-{platform.release()} (or run 'make setup')"
        )
    from ebpftop.sources.program import bpf_dir, tracefs_root

    try:
        bpf_dir()
    except FileNotFoundError as e:
        raise PreflightError(f"{e}: reinstall ebpftop (make setup)") from None
    tracefs = tracefs_root()
    if tracefs is None:
        raise PreflightError("tracefs is not mounted: mount -t tracefs nodev /sys/kernel/tracing")
    from ebpftop import capabilities

    try:
        capabilities.detect_here(tracefs)
    except capabilities.UnsupportedError as e:
        raise PreflightError(str(e)) from None
