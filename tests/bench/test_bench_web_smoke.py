"""bench/bench_web.py keeps working (output shape only, never time)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[2] / "bench" / "bench_web.py"


@pytest.mark.slow
def test_post_to_first_event_script_reports_its_numbers() -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--runs", "2"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert re.search(r"over 2 runs: median [\d.]+ ms, p90 [\d.]+ ms", result.stdout), result.stdout
