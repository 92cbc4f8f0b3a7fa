"""When a run gives the event loop a turn between supersteps."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

import weavegraph as wg
from weavegraph.runtime import pacing as _pacing
from weavegraph.runtime.pacing import LoopTurns


async def test_a_turn_is_due_once_the_loop_ran_since_the_last_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_pacing, "LOOP_TURN_EVERY", 3600.0)  # time never decides here
    turns = LoopTurns()
    assert not turns.due()  # nothing suspended: the loop has not run
    await asyncio.sleep(0)  # a step that suspends lets the loop poll (signals, other tasks)
    assert turns.due()
    await turns.take()
    assert not turns.due()


async def test_a_turn_is_due_after_the_interval_even_if_nothing_suspended(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_pacing, "LOOP_TURN_EVERY", 0.0)
    assert LoopTurns().due()


async def test_other_tasks_run_during_a_run_whose_steps_never_suspend(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_pacing, "LOOP_TURN_EVERY", 0.0)  # a turn at every boundary
    seen: list[int] = []

    async def count(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
        return wg.NodePartial(extra={"n": int(snapshot.extra.get("n", 0)) + 1})

    def again(snapshot: wg.StateSnapshot) -> str:
        return "count" if int(snapshot.extra["n"]) < 5 else wg.END

    app = (
        wg.GraphBuilder()
        .add_node("count", count)
        .add_edge(wg.START, "count")
        .add_conditional_edge("count", again, targets=["count", wg.END])
        .compile()
    )

    async def watcher() -> None:
        while True:
            seen.append(1)
            await asyncio.sleep(0)

    task = asyncio.create_task(watcher())
    await asyncio.sleep(0)
    before = len(seen)
    await app.invoke(wg.VersionedState())
    during = len(seen) - before
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert during >= 4  # at least one turn per step boundary
