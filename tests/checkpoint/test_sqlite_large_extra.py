"""A large ``extra`` value left untouched: each step writes what it changed, not the whole extra."""

from __future__ import annotations

import itertools
import sqlite3
import statistics
from pathlib import Path

import pytest

import weavegraph as wg
from weavegraph.checkpoint import _codec as codec
from weavegraph.checkpoint.sqlite import SQLiteCheckpointer

BIG = 10 * 1024 * 1024
STEPS = 40
PROC_IO = Path("/proc/self/io")


def bytes_written() -> int:
    """Bytes this process has passed to write() so far (every thread: WAL, checkpoints)."""
    for line in PROC_IO.read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    raise AssertionError("no wchar in /proc/self/io")


def counting_app(marks: list[int]) -> wg.App:
    async def step(snapshot: wg.StateSnapshot, ctx: object) -> wg.NodePartial:
        marks.append(bytes_written())
        return wg.NodePartial(extra={"count": snapshot.extra["count"] + 1})

    def again(snapshot: wg.StateSnapshot) -> str:
        return "step" if snapshot.extra["count"] < STEPS else wg.END

    builder = wg.GraphBuilder()
    builder.add_node("step", step)
    builder.add_edge(wg.START, "step")
    builder.add_conditional_edge("step", again, targets=["step", wg.END])
    builder.with_max_steps(STEPS + 10)
    return builder.compile()


def big_state() -> wg.VersionedState:
    builder = wg.VersionedState.builder().with_extra("big", "x" * BIG)
    return builder.with_extra("count", 0).build()


@pytest.mark.skipif(not PROC_IO.exists(), reason="needs /proc/self/io (Linux)")
async def test_a_step_writes_what_it_changed_not_the_untouched_10_mb(tmp_path: Path) -> None:
    db = tmp_path / "big.db"
    marks: list[int] = []
    async with await SQLiteCheckpointer.connect(f"sqlite://{db}") as cp:
        async with wg.AppRunner(counting_app(marks), cp) as runner:
            await runner.create_session("big", big_state())
            final = await runner.run_until_complete("big")
            middle = await runner.state_at("big", STEPS // 2)
        latest = await cp.load_latest("big")
    per_step = [b - a for a, b in itertools.pairwise(marks[2:])]
    # Was 18-21 MB per step (the whole extra rewritten and copied back from the WAL).
    assert statistics.median(per_step) < 64 * 1024, per_step
    assert max(per_step) < BIG / 4, per_step
    assert final.extra["count"] == STEPS
    assert latest is not None
    assert latest.state.extra == final.extra
    assert middle.extra["count"] == STEPS // 2
    assert len(middle.extra["big"]) == BIG


async def test_the_head_survives_hand_deleted_steps_and_vacuum(tmp_path: Path) -> None:
    db = tmp_path / "big.db"
    async with (
        await SQLiteCheckpointer.connect(f"sqlite://{db}") as cp,
        wg.AppRunner(counting_app([]), cp) as runner,
    ):
        await runner.create_session("big", big_state())
        final = await runner.run_until_complete("big")
    plain = sqlite3.connect(db)
    plain.execute("DELETE FROM steps")  # the guide's delete, taken to the extreme
    plain.commit()
    plain.close()
    async with await SQLiteCheckpointer.connect(f"sqlite://{db}") as cp:
        await cp.vacuum()  # collects the extra_log rows nothing reaches: not the head's
        latest = await cp.load_latest("big")
    assert latest is not None
    assert latest.state.extra == final.extra


async def test_a_head_written_by_version_3_loads_and_moves_on(tmp_path: Path) -> None:
    """Schema versions before 4 kept a large head extra whole in session_extra."""
    db = tmp_path / "v2.db"
    async with (
        await SQLiteCheckpointer.connect(f"sqlite://{db}") as cp,
        wg.AppRunner(counting_app([]), cp) as runner,
    ):
        await runner.create_session("big", big_state())
        await runner.run_step("big")
    plain = sqlite3.connect(db)
    (blob,) = plain.execute("SELECT head FROM sessions").fetchone()
    head = codec.loads(blob)
    head.pop("extra_ref")
    head.pop("extra_delta")
    stored = {"big": "y" * 5000, "count": 1}  # what version 3 would have put there
    plain.execute("UPDATE sessions SET head = ?", (codec.dumps(head),))
    plain.execute("INSERT INTO session_extra VALUES ('big', ?)", (codec.dumps(stored),))
    plain.commit()
    async with await SQLiteCheckpointer.connect(f"sqlite://{db}") as cp:
        latest = await cp.load_latest("big")
        assert latest is not None
        assert latest.state.extra == stored
        async with wg.AppRunner(counting_app([]), cp) as runner:
            final = await runner.run_until_complete("big")
        assert final.extra["big"] == "y" * 5000
    assert plain.execute("SELECT COUNT(*) FROM session_extra").fetchone() == (0,)
    plain.close()
