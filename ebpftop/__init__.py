"""ebpftop: a top-like terminal monitor of what the Linux kernel sees, built on BCC."""

__version__ = "0.1.0"
