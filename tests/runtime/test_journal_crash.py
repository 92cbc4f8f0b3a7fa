"""Kill -9 in the middle of a step of 30 Send tasks: the resumed run re-runs only the tasks
whose results were not saved, and ends as an uninterrupted run would."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import weavegraph as wg

WORKER = Path(__file__).with_name("send_worker.py")
TASKS = 30


def _start(db: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WORKER), str(db)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=db.parent,
    )


@pytest.mark.slow
async def test_finished_tasks_are_not_run_again_after_kill_9(tmp_path: Path) -> None:
    db = tmp_path / "map.db"
    first = _start(db)
    assert first.stdout is not None
    started = 0
    for line in first.stdout:
        started += line.startswith("ran ")
        if started >= 12:
            first.send_signal(signal.SIGKILL)
            break
    first.communicate(timeout=60)
    assert first.returncode == -signal.SIGKILL

    checkpointer = await wg.SQLiteCheckpointer.connect(f"sqlite://{db}")
    try:
        assert (await checkpointer.load_latest("job")) is not None
        saved = set(await checkpointer.load_task_results("job", 0))
    finally:
        await checkpointer.close()
    assert 0 < len(saved) < TASKS

    second = _start(db)
    out, err = second.communicate(timeout=60)
    assert second.returncode == 0, err
    rerun = {int(line.split()[1]) for line in out.splitlines() if line.startswith("ran ")}
    assert rerun == set(range(TASKS)) - saved
    (final,) = [line for line in out.splitlines() if line.startswith("FINAL ")]
    assert json.loads(final.removeprefix("FINAL ")) == list(range(TASKS))
