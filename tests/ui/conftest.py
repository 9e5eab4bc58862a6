from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

# Clock times in the panes are local: pin the zone so snapshots are stable.
os.environ["TZ"] = "UTC"
time.tzset()

RECORDING = Path(__file__).parent / "data" / "recording.jsonl"


@pytest.fixture
def recording() -> Path:
    return RECORDING
