"""A run cancelled while its step's save is in flight: the save commits anyway (a writer thread,
a group commit), and the run's stream end is still stored after it. A step another writer stored
is never taken for such a save."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from event_collector import emitting_chain

import weavegraph as wg


class CommitsAfterCancel(wg.InMemoryCheckpointer):
    """Step ``slow_step`` is committed by a task of its own, as a group commit would: a caller
    cancelled meanwhile does not stop it."""

    def __init__(self, slow_step: int) -> None:
        super().__init__()
        self.slow_step = slow_step
        self.saving = asyncio.Event()

    async def save(self, checkpoint: wg.Checkpoint, **kwargs: Any) -> None:
        if checkpoint.step != self.slow_step:
            await super().save(checkpoint, **kwargs)
            return
        self.saving.set()
        commit = asyncio.ensure_future(self._late(checkpoint, kwargs))
        await asyncio.shield(commit)

    async def _late(self, checkpoint: wg.Checkpoint, kwargs: dict[str, Any]) -> None:
        await asyncio.sleep(0)  # lands before the cancelled run stores its last events
        await wg.InMemoryCheckpointer.save(self, checkpoint, **kwargs)


async def test_the_stream_end_is_stored_after_a_save_that_landed_anyway() -> None:
    checkpointer = CommitsAfterCancel(slow_step=2)
    async with wg.AppRunner(emitting_chain(), checkpointer) as runner:
        await runner.create_session("late", wg.VersionedState())
        run = asyncio.ensure_future(runner.run_until_complete("late"))
        await checkpointer.saving.wait()
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run
        await asyncio.sleep(0.1)  # the in-flight save lands
        latest = await checkpointer.load_latest("late")
        assert latest is not None
        assert latest.step == 2
        events = await checkpointer.load_events("late")
    last = events[-1]
    assert last["scope"] == "__weavegraph_stream_end__"
    assert "status=cancelled" in last["message"]
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(set(seqs))


def quiet_chain() -> wg.App:
    """START -> a -> b -> END; the nodes emit nothing (a step stores no events)."""

    async def node(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
        return wg.NodePartial(extra={ctx.node_id: True})

    builder = wg.GraphBuilder().add_node("a", node).add_node("b", node)
    return builder.add_edge(wg.START, "a").add_edge("a", "b").add_edge("b", wg.END).compile()


async def test_a_run_refused_by_another_writers_step_does_not_adopt_it(tmp_path: Any) -> None:
    """Two runners resume one session; the second commits step 1 first, so the first's step 1
    is refused. The refused run's closing events are not stored after the other writer's step
    (that step is not the refused run's save): the other run then completes, and the log holds
    one stream end, its own."""
    checkpointer = await wg.SQLiteCheckpointer.connect(f"sqlite://{tmp_path / 'two.db'}")
    app = quiet_chain()
    try:
        async with wg.AppRunner(app, checkpointer) as maker:
            await maker.create_session("s", wg.VersionedState())
        async with (
            wg.AppRunner(app, checkpointer) as loser,
            wg.AppRunner(app, checkpointer) as winner,
        ):
            await loser.create_session("s")
            await winner.create_session("s")
            await winner.run_step("s")
            with pytest.raises(wg.CheckpointConflict):
                await loser.run_until_complete("s")
            state = await winner.run_until_complete("s")
        assert state.extra == {"a": True, "b": True}
        events = await checkpointer.load_events("s")
    finally:
        await checkpointer.close()
    seqs = [event["seq"] for event in events]
    assert seqs == list(range(len(seqs)))
    ends = [e for e in events if e["scope"] == "__weavegraph_stream_end__"]
    assert len(ends) == 1
    assert "status=completed" in ends[0]["message"]
