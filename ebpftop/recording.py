"""Recordings: one snapshot per line, the same JSON objects as --json prints
(unfiltered, so a replay can be filtered any way)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO

from ebpftop.model import Snapshot


class RecordingError(Exception):
    """A recording that cannot be read; the message names the file and line."""


class Recorder:
    def __init__(self, path: str | Path):
        self._file: IO[str] = open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed in close()

    def write(self, snapshot: Snapshot) -> None:
        self._file.write(json.dumps(snapshot.to_dict(), separators=(",", ":")) + "\n")
        self._file.flush()  # a crash or Ctrl-C keeps every interval recorded so far

    def close(self) -> None:
        self._file.close()


def read_recording(path: str | Path) -> list[Snapshot]:
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.readlines()
    except OSError as e:
        raise RecordingError(f"cannot read recording {path}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise RecordingError(f"recording {path} is not UTF-8 text") from None
    snapshots = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            snapshots.append(Snapshot.from_dict(json.loads(line)))
        except json.JSONDecodeError as e:
            what = "truncated" if n == len(lines) and not line.endswith("\n") else "not valid JSON"
            raise RecordingError(f"recording {path} line {n}: {what} ({e.msg})") from None
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise RecordingError(f"recording {path} line {n}: not an ebpftop snapshot ({type(e).__name__}: {e})") from None
    if not snapshots:
        raise RecordingError(f"recording {path} holds no snapshot")
    return snapshots
