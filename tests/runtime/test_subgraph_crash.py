"""Kill -9 in the middle of a subgraph, run again in a new process: the child resumes from its
last committed step (its earlier nodes do not run again) and the session completes."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

WORKER = Path(__file__).parents[1] / "helpers" / "subgraph_worker.py"

pytestmark = pytest.mark.slow


def worker(db: Path, log: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WORKER), str(db), str(log), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=db.parent,
    )


def test_a_child_killed_mid_run_resumes_from_its_last_step(tmp_path: Path) -> None:
    db, log = tmp_path / "nested.db", tmp_path / "runs.log"
    first = worker(db, log, "--hang", "b")
    assert first.stdout is not None
    for line in first.stdout:
        if line.strip() == "hanging":
            first.send_signal(signal.SIGKILL)
            break
    first.communicate(timeout=60)
    assert first.returncode == -signal.SIGKILL, first.stderr
    second = worker(db, log)
    out, err = second.communicate(timeout=60)
    assert second.returncode == 0, err
    (final,) = [line for line in out.splitlines() if line.startswith("FINAL ")]
    assert json.loads(final.removeprefix("FINAL ")) == {"trail": ["a", "b", "c", "after"]}
    # a ran once: the child went on from its committed step; b ran again (it never finished).
    assert log.read_text(encoding="utf-8").split() == ["a", "b", "b", "c", "after"]
    with sqlite3.connect(db) as conn:
        ids = [sid for (sid,) in conn.execute("SELECT id FROM sessions ORDER BY id")]
    conn.close()
    assert ids == ["nested", "nested/research"]
