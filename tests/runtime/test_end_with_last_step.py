"""A run's closing events ride with its last step: one commit stores the step and the stream end,
which live listeners get once it is committed (``Session.save_last``, ``loop.close_stream``)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from event_collector import Collector, emitting_chain
from save_hooks import SaveHooks

import weavegraph as wg
from weavegraph.checkpoint import Checkpoint
from weavegraph.events.model import STREAM_END_SCOPE, Event
from weavegraph.status import RunStatus


class Recording(SaveHooks, wg.InMemoryCheckpointer):
    """Records what each save and append carries; the save of ``fail_step`` fails once, the save
    of ``hold_step`` waits for ``proceed``."""

    def __init__(self, *, fail_step: int | None = None, hold_step: int | None = None) -> None:
        super().__init__()
        self.saves: list[tuple[int, list[str]]] = []
        self.appends: list[list[str]] = []
        self.fail_step = fail_step
        self.hold_step = hold_step
        self.saving = asyncio.Event()
        self.proceed = asyncio.Event()

    async def before_save(
        self, checkpoint: Checkpoint, events: Sequence[Mapping[str, Any]]
    ) -> None:
        self.saves.append((checkpoint.step, [event["scope"] for event in events]))
        if checkpoint.step == self.fail_step:
            self.fail_step = None
            raise OSError("disk full")
        if checkpoint.step == self.hold_step:
            self.saving.set()
            await self.proceed.wait()

    async def before_append(self, session_id: str, events: Sequence[Mapping[str, Any]]) -> None:
        self.appends.append([event["scope"] for event in events])


def ends(events: Sequence[Mapping[str, Any]] | Sequence[Event]) -> list[str]:
    """The stream-end messages among ``events`` (stored mappings or live events)."""
    found: list[str] = []
    for event in events:
        scope = event["scope"] if isinstance(event, Mapping) else event.scope
        message = event["message"] if isinstance(event, Mapping) else event.message
        if scope == STREAM_END_SCOPE:
            found.append(str(message))
    return found


async def test_the_last_step_and_the_stream_end_are_one_commit() -> None:
    checkpointer = Recording()
    bus = Collector()
    await emitting_chain().invoke("go", session_id="one", checkpointer=checkpointer, event_bus=bus)
    assert checkpointer.appends == []  # no commit of its own for the closing events
    assert checkpointer.saves[-1] == (3, ["work", STREAM_END_SCOPE])
    stored = await checkpointer.load_events("one")
    assert [(e["seq"], e["scope"]) for e in stored] == [(e.seq, e.scope) for e in bus.events]
    assert [e["seq"] for e in stored] == [0, 1, 2, 3]
    assert ends(stored) == ["session=one status=completed step=3"]


async def test_a_failed_last_save_ends_the_stream_once_with_the_error() -> None:
    checkpointer = Recording(fail_step=3)
    bus = Collector()
    with pytest.raises(wg.CheckpointError):
        await emitting_chain().invoke(
            "go", session_id="fail", checkpointer=checkpointer, event_bus=bus
        )
    live = ends(bus.events)
    assert len(live) == 1
    assert "status=error" in live[0]
    assert bus.events[-1].is_stream_end
    stored = await checkpointer.load_events("fail")
    assert [e["scope"] for e in stored] == ["work", "work", STREAM_END_SCOPE]
    assert [e["seq"] for e in stored] == [0, 1, 2]  # the failed step's seqs are numbered again
    assert "status=error" in ends(stored)[0]
    latest = await checkpointer.load_latest("fail")
    assert latest is not None
    assert latest.step == 2


async def test_a_run_cancelled_during_its_last_commit_ends_with_what_was_stored() -> None:
    checkpointer = Recording(hold_step=3)
    bus = Collector()
    run = asyncio.ensure_future(
        emitting_chain().invoke("go", session_id="late", checkpointer=checkpointer, event_bus=bus)
    )
    await checkpointer.saving.wait()
    run.cancel()
    await asyncio.sleep(0.01)
    assert not run.done()  # the commit carrying the stream end is waited for
    checkpointer.proceed.set()
    with pytest.raises(asyncio.CancelledError):
        await run
    stored = await checkpointer.load_events("late")
    assert ends(stored) == ["session=late status=completed step=3"]
    assert ends(bus.events) == ["session=late status=completed step=3"]
    assert checkpointer.appends == []


async def test_a_paused_run_stores_its_closing_events_after_the_step() -> None:
    """Only a step that completes the run carries them: a pause ends the stream after it."""

    async def ask(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
        return wg.NodePartial(extra={"answer": ctx.interrupt("go on?")})

    builder = wg.GraphBuilder().add_node("ask", ask).add_edge(wg.START, "ask")
    app = builder.add_edge("ask", wg.END).compile()
    checkpointer = Recording()
    async with wg.AppRunner(app, checkpointer) as runner:
        assert (await runner.drive("p", "hi")).status is RunStatus.INTERRUPTED
        assert checkpointer.appends == [[STREAM_END_SCOPE]]
        assert (await runner.drive("p", answer="yes")).status is RunStatus.COMPLETED
    assert checkpointer.appends == [[STREAM_END_SCOPE]]  # the completing step carried its end
    stored = await checkpointer.load_events("p")
    assert [end.split()[1] for end in ends(stored)] == ["status=interrupted", "status=completed"]


async def test_with_lifecycle_events_the_stream_end_follows_the_last_steps_commit() -> None:
    """Lifecycle events (``checkpoint_saved`` after each commit, ``run_end``) come after the last
    step: the closing events are stored after it, the stream end still last."""
    checkpointer = Recording()
    bus = Collector(lifecycle=True)
    await emitting_chain().invoke("go", session_id="loud", checkpointer=checkpointer, event_bus=bus)
    assert checkpointer.appends
    assert checkpointer.appends[-1][-1] == STREAM_END_SCOPE
    assert STREAM_END_SCOPE not in checkpointer.saves[-1][1]
    stored = await checkpointer.load_events("loud")
    assert stored[-1]["scope"] == STREAM_END_SCOPE
    assert [e["seq"] for e in stored] == list(range(len(stored)))
