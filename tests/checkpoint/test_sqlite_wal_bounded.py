"""The WAL of a busy SQLite checkpointer stays bounded: it starts over instead of growing forever."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from weavegraph.checkpoint.base import Checkpoint
from weavegraph.checkpoint.sqlite import SQLiteCheckpointer
from weavegraph.state import Message, VersionedState

MB = 1024 * 1024


async def test_wal_stays_bounded_under_a_steady_stream_of_commits(tmp_path: Path) -> None:
    path = tmp_path / "busy.db"
    cp = await SQLiteCheckpointer.connect(f"sqlite://{path}")
    state = VersionedState(messages=(Message.user("start"),))
    largest_wal = 0
    try:
        # No awaits between saves but the saves themselves: the WAL thread's checkpoints never
        # catch up on their own, which is what used to let the WAL grow by every commit (~30 MB).
        for step in range(1, 1201):
            message = Message.assistant(f"{step:06d}" + "x" * 1018)
            state = VersionedState(messages=(*state.messages, message))
            checkpoint = Checkpoint(
                session_id="busy",
                step=step,
                state=state,
                frontier=("grow",),
                ran_nodes=("grow",),
                updated_channels=("messages",),
            )
            await cp.save(checkpoint)
            if step % 50 == 0:
                wal_size = os.path.getsize(f"{path}-wal")  # noqa: ASYNC240 (one stat, in a test)
                largest_wal = max(largest_wal, wal_size)
        await cp.checkpoint_wal()
        stats = await cp.stats()
        latest = await cp.load_latest("busy")
    finally:
        await cp.close()
    assert largest_wal < 16 * MB, f"the WAL grew to {largest_wal / MB:.1f} MB"
    assert stats.bytes < 2 * 1201 * 1024  # folded and truncated: about the payload
    assert latest is not None
    assert len(latest.state.messages) == 1201
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
