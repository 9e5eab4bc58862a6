"""Test tiers: tests/unit and tests/ui need no privilege; tests/kernel needs
root, BCC and the kernel's tracepoints.  On a user's machine that lacks one,
the kernel tests skip and say which; in CI (CI=true) that is a failure."""

from __future__ import annotations

import os

import pytest


def require_kernel_support() -> None:
    from ebpftop.preflight import PreflightError, check_live

    try:
        check_live()
    except PreflightError as e:
        reason = f"kernel tests need live collection: {e}"
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (CI must run every kernel test)")
        pytest.skip(reason)
