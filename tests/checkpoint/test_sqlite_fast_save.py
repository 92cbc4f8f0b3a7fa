"""The SQLite save fast paths: inline saves, their fallback when another process holds the write
lock, the cached session row (trusted only while no other connection wrote), extra in the head."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from weavegraph.checkpoint.base import Checkpoint
from weavegraph.checkpoint.sqlite import SQLiteCheckpointer
from weavegraph.errors import CheckpointConflict
from weavegraph.state import Message
from weavegraph.testing.conformance import make_checkpoint


def chain(sid: str, steps: int, *, extra_size: int = 10) -> list[Checkpoint]:
    messages: tuple[Message, ...] = ()
    out: list[Checkpoint] = []
    for step in range(steps):
        messages = (*messages, Message.assistant(f"{sid} {step}"))
        out.append(make_checkpoint(sid, step, messages=messages, extra={"k": "x" * extra_size}))
    return out


async def test_a_save_waits_for_another_connection_holding_the_write_lock(tmp_path: Path) -> None:
    db = tmp_path / "locked.db"
    async with await SQLiteCheckpointer.connect(f"sqlite://{db}") as cp:
        await cp.save(make_checkpoint("s", 0))
        other = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
        other.execute("BEGIN IMMEDIATE")  # as another process mid-write would
        saving = asyncio.ensure_future(cp.save(make_checkpoint("s", 1)))
        # The inline attempt found the lock taken without waiting on the loop: the save is now
        # queued on the worker thread, and the loop still runs other work meanwhile.
        await asyncio.sleep(0)
        assert not saving.done()
        other.execute("COMMIT")
        await saving
        other.close()
        latest = await cp.load_latest("s")
        assert latest is not None
        assert latest.step == 1


async def test_writes_by_another_connection_invalidate_the_cached_session_row(
    tmp_path: Path,
) -> None:
    db = tmp_path / "shared.db"
    async with await SQLiteCheckpointer.connect(f"sqlite://{db}") as cp:
        first = chain("s", 3)
        for checkpoint in first[:2]:
            await cp.save(checkpoint)
        plain = sqlite3.connect(db)
        plain.execute("DELETE FROM sessions WHERE id = 's'")  # cascades to its steps and log
        plain.commit()
        plain.close()
        await cp.save(first[2])
        latest = await cp.load_latest("s")
        assert latest is not None
        assert latest == first[2]
        assert [info.step for info in await cp.history("s")] == [2]


async def test_large_and_small_extra_round_trip_through_the_head(tmp_path: Path) -> None:
    db = tmp_path / "extra.db"
    sizes = [10, 10_000, 10_000, 20, 20_000, 30]
    checkpoints = [
        make_checkpoint("s", step, extra={"k": "x" * size}) for step, size in enumerate(sizes)
    ]
    async with await SQLiteCheckpointer.connect(f"sqlite://{db}") as cp:
        for checkpoint in checkpoints:
            await cp.save(checkpoint)
            assert await cp.load_latest("s") == checkpoint
        for checkpoint in checkpoints:
            assert await cp.load("s", checkpoint.step) == checkpoint
    async with await SQLiteCheckpointer.connect(f"sqlite://{db}") as cp:
        assert await cp.load_latest("s") == checkpoints[-1]


async def test_a_resaved_step_keeps_later_steps_loadable(tmp_path: Path) -> None:
    db = tmp_path / "resave.db"
    saved = chain("s", 4)
    async with await SQLiteCheckpointer.connect(f"sqlite://{db}") as cp:
        for checkpoint in saved:
            await cp.save(checkpoint)
        await cp.save(saved[1])
        for checkpoint in saved:
            assert await cp.load("s", checkpoint.step) == checkpoint
        assert await cp.load_latest("s") == saved[-1]


async def test_an_absent_session_is_reported_while_another_connection_writes(
    tmp_path: Path,
) -> None:
    """load_latest probes inline; a writer elsewhere neither blocks it nor makes it guess."""
    db = tmp_path / "probe.db"
    async with await SQLiteCheckpointer.connect(f"sqlite://{db}") as cp:
        saved = make_checkpoint("present", 0)
        await cp.save(saved)
        other = sqlite3.connect(db, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        assert await cp.load_latest("absent") is None
        assert await cp.load_latest("present") == saved
        other.execute("COMMIT")
        other.close()


async def test_saves_appending_many_messages_round_trip(tmp_path: Path) -> None:
    """Large appends are written by the worker thread, small ones inline: both read back."""
    db = tmp_path / "big.db"
    messages = tuple(Message.assistant(f"m{i}") for i in range(100))
    sizes = [1, 2, 80, 81, 100]
    saved = [
        make_checkpoint("s", step, messages=messages[:size]) for step, size in enumerate(sizes)
    ]
    async with await SQLiteCheckpointer.connect(f"sqlite://{db}") as cp:
        for checkpoint in saved:
            await cp.save(checkpoint)
        for checkpoint in saved:
            assert await cp.load("s", checkpoint.step) == checkpoint


async def test_saves_queued_while_the_connection_is_busy_commit_together_and_fail_alone(
    tmp_path: Path,
) -> None:
    db = tmp_path / "queued.db"
    async with await SQLiteCheckpointer.connect(f"sqlite://{db}") as cp:
        for sid in ("a", "b", "c"):
            await cp.save(make_checkpoint(sid, 0), builds_on=-1)
        other = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
        other.execute("BEGIN IMMEDIATE")  # the connection's saves now go to its worker thread
        saves = [
            asyncio.ensure_future(cp.save(make_checkpoint("a", 1), builds_on=0)),
            asyncio.ensure_future(cp.save(make_checkpoint("b", 2), builds_on=1)),  # stale
            asyncio.ensure_future(cp.save(make_checkpoint("c", 1), builds_on=0)),
        ]
        await asyncio.sleep(0.05)
        assert not any(save.done() for save in saves)
        other.execute("COMMIT")
        other.close()
        outcomes = await asyncio.gather(*saves, return_exceptions=True)
        assert outcomes[0] is None
        assert outcomes[2] is None
        assert isinstance(outcomes[1], CheckpointConflict)
        steps = {sid: (await cp.load_latest(sid)) for sid in ("a", "b", "c")}
        assert {sid: c.step for sid, c in steps.items() if c is not None} == {
            "a": 1,
            "b": 0,
            "c": 1,
        }
        # The queue drained: the next save is made on the calling thread again, and "b" goes on.
        await cp.save(make_checkpoint("b", 1), builds_on=0)
        assert [info.step for info in await cp.history("b")] == [0, 1]


async def test_a_queued_save_whose_caller_was_cancelled_is_dropped_and_the_queue_goes_on(
    tmp_path: Path,
) -> None:
    db = tmp_path / "cancelled.db"
    async with await SQLiteCheckpointer.connect(f"sqlite://{db}") as cp:
        await cp.save(make_checkpoint("a", 0), builds_on=-1)
        await cp.save(make_checkpoint("b", 0), builds_on=-1)
        other = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
        other.execute("BEGIN IMMEDIATE")
        first = asyncio.ensure_future(cp.save(make_checkpoint("a", 1), builds_on=0))
        await asyncio.sleep(0.05)  # the worker took it and waits for the write lock
        dropped = asyncio.ensure_future(cp.save(make_checkpoint("b", 1), builds_on=0))
        await asyncio.sleep(0.05)
        dropped.cancel()
        other.execute("COMMIT")
        other.close()
        await asyncio.wait_for(first, 5)
        assert dropped.cancelled()
        b = await cp.load_latest("b")
        assert b is not None
        assert b.step == 0  # never written: its caller had given up before the worker took it
        # The worker went on: the next saves are made (they hung before).
        await asyncio.wait_for(cp.save(make_checkpoint("b", 1), builds_on=0), 5)
        await asyncio.wait_for(cp.save(make_checkpoint("a", 2), builds_on=1), 5)
        assert [info.step for info in await cp.history("b")] == [0, 1]
