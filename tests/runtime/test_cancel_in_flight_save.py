"""A run cancelled while its step's save is in flight: the save commits anyway (a writer thread,
a group commit), and the run's stream end is still stored after it."""

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
