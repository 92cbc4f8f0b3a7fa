"""Kill -9 at random moments, resume in a new process: nothing lost, nothing corrupted (SPEC §9).

The worker (``session_worker.py``) runs about 200 fan-out supersteps on a SQLite checkpointer and
prints progress lines; each process is SIGKILLed after a random number of them (seeded, so a
failure reproduces), then a last process runs the session to completion.
"""

from __future__ import annotations

import json
import random
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

WORKER = Path(__file__).with_name("session_worker.py")
KILLS = 3


def start_worker(db: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WORKER), str(db), "crashy"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=db.parent,
    )


def kill_after(db: Path, lines: int) -> None:
    """Start a worker and SIGKILL it once it has printed ``lines`` progress lines (or let it end)."""
    process = start_worker(db)
    assert process.stdout is not None
    seen = 0
    for line in process.stdout:
        seen += line.startswith("progress ")
        if seen >= lines:
            process.send_signal(signal.SIGKILL)
            break
    process.communicate(timeout=60)
    assert process.returncode in (0, -signal.SIGKILL), process.stderr


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_killed_runs_resume_to_the_uninterrupted_result(
    tmp_path: Path, seed: int, uninterrupted_state: dict[str, Any]
) -> None:
    rng = random.Random(seed)
    db = tmp_path / "crash.db"
    for _ in range(KILLS):
        kill_after(db, rng.randint(1, 60))
    last = start_worker(db)
    out, err = last.communicate(timeout=60)
    assert last.returncode == 0, err
    (final,) = [line for line in out.splitlines() if line.startswith("FINAL ")]
    assert json.loads(final.removeprefix("FINAL ")) == uninterrupted_state
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        steps = conn.execute("SELECT step FROM steps WHERE session_id = 'crashy' ORDER BY step")
        assert [step for (step,) in steps] == list(range(199))  # no gap, no duplicate
    conn.close()
