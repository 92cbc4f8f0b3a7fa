"""After the seed's hand-written 30-day DELETE, every surviving step should still load.

A step's ``extra`` is stored whole or as a delta over a session-owned snapshot, never over another
step, so the rows that remain do not depend on the deleted ones.
"""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from weavegraph.checkpoint.base import Checkpoint
from weavegraph.checkpoint.sqlite import SQLiteCheckpointer
from weavegraph.testing.conformance import make_checkpoint


def _steps(sid: str, count: int, old: int) -> list[Checkpoint]:
    """``count`` steps whose extra changes at every step; the first ``old`` are 40 days old."""
    now = datetime.now(UTC)
    saved: list[Checkpoint] = []
    for step in range(count):
        checkpoint = make_checkpoint(sid, step, extra={"fixed": "x" * 50, f"k{step % 3}": step})
        age = timedelta(days=40) if step < old else timedelta(hours=1)
        saved.append(replace(checkpoint, created_at=now - age + timedelta(seconds=step)))
    return saved


async def test_surviving_steps_load_after_the_seed_30_day_delete(tmp_path: Path) -> None:
    db = tmp_path / "workflow.db"
    steps = _steps("s", 12, old=6)
    async with await SQLiteCheckpointer.connect(f"sqlite://{db}") as cp:
        for checkpoint in steps:
            await cp.save(checkpoint)
    plain = sqlite3.connect(db)
    plain.execute("DELETE FROM steps WHERE created_at < datetime('now', '-30 days')")
    plain.commit()
    plain.close()
    async with await SQLiteCheckpointer.connect(f"sqlite://{db}") as cp:
        listed = [info.step for info in await cp.history("s")]
        assert listed == list(range(6, 12))  # the 40-day-old steps went, the rest stayed
        for step in listed:
            loaded = await cp.load("s", step)
            assert loaded is not None, f"step {step} is listed but cannot be loaded"
            assert loaded.state.extra == steps[step].state.extra
