"""Graceful stop of a real process: SIGTERM/SIGINT mid-run stops at a step boundary, checkpointed.

The worker (``session_worker.py``) runs an AppRunner with ``stop_on_signals=True``; a second
process resumes the session, and the result must equal an uninterrupted run.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

WORKER = Path(__file__).with_name("session_worker.py")


def start_worker(db: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WORKER), str(db), "s", *extra],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=db.parent,
    )


def final_state(stdout: str) -> dict[str, Any]:
    (line,) = [line for line in stdout.splitlines() if line.startswith("FINAL ")]
    return json.loads(line.removeprefix("FINAL "))


def ends(stdout: str) -> list[str]:
    return [line.removeprefix("END ") for line in stdout.splitlines() if line.startswith("END ")]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_a_signal_mid_run_stops_at_a_step_boundary_and_a_new_process_resumes(
    tmp_path: Path, sig: signal.Signals, uninterrupted_state: dict[str, Any]
) -> None:
    db = tmp_path / "shutdown.db"
    first = start_worker(db, "--wait-at", "10")
    assert first.stdin is not None
    assert first.stdout is not None
    for line in first.stdout:
        if line.strip() == "waiting":  # the split of round 10 (step 28) is running
            break
    first.send_signal(sig)
    first.stdin.write("go\n")  # let step 28 finish: the stop lands on the boundary after it
    first.stdin.flush()
    out, err = first.communicate(timeout=60)
    assert first.returncode == 0, err
    assert ends(out) == ["session=s status=stopped step=28"]
    assert "FINAL" not in out

    second = start_worker(db)
    out, err = second.communicate(timeout=60)
    assert second.returncode == 0, err
    assert ends(out) == ["session=s status=completed step=198"]
    assert out.splitlines()[0] == "progress 10 merge"  # continues after the stop, nothing redone
    assert final_state(out) == uninterrupted_state
