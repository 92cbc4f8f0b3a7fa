"""Checkpointers written for the first release (``save(checkpoint)`` only) are refused when they
are handed over, with the missing parameters and the docs section named, not mid-run with
"unexpected keyword argument 'builds_on'"."""

from __future__ import annotations

from typing import Any

import pytest

import weavegraph as wg
from weavegraph.status import RunStatus


class FirstReleaseStore(wg.InMemoryCheckpointer):
    """A user's subclass from the first release: its ``save`` takes the checkpoint only."""

    def __init__(self) -> None:
        super().__init__()
        self.saved = 0

    async def save(self, checkpoint: wg.Checkpoint) -> None:  # type: ignore[override]  # the old signature under test
        self.saved += 1
        await super().save(checkpoint)


class ForwardingStore(wg.InMemoryCheckpointer):
    """A subclass that passes every keyword on: accepted."""

    async def save(self, checkpoint: wg.Checkpoint, **options: Any) -> None:
        await super().save(checkpoint, **options)


def app(calls: list[str]) -> wg.App:
    def node(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
        calls.append(ctx.node_id)
        return wg.NodePartial(extra={"ran": True})

    return (
        wg.GraphBuilder()
        .add_node("a", node)
        .add_edge(wg.START, "a")
        .add_edge("a", wg.END)
        .compile()
    )


def test_an_old_save_is_refused_when_the_runner_is_made() -> None:
    with pytest.raises(wg.ConfigError) as refused:
        wg.AppRunner(app([]), FirstReleaseStore())  # pyright: ignore[reportArgumentType]  # the point
    message = str(refused.value)
    assert "FirstReleaseStore cannot store runs" in message
    assert "its save() has no 'events' and 'builds_on' keyword parameter" in message
    assert "docs/OPERATIONS.md#fenced-saves" in message


async def test_an_old_save_is_refused_before_invoke_runs_anything() -> None:
    calls: list[str] = []
    store = FirstReleaseStore()
    with pytest.raises(wg.ConfigError, match="'builds_on'"):
        await app(calls).invoke("go", checkpointer=store)  # pyright: ignore[reportArgumentType]
    assert calls == []
    assert store.saved == 0


def test_a_store_without_the_event_methods_is_told_which() -> None:
    class Bare:
        async def save(
            self, checkpoint: wg.Checkpoint, *, events: Any = (), builds_on: Any = None
        ) -> None:
            del checkpoint, events, builds_on

    with pytest.raises(wg.ConfigError) as refused:
        wg.AppRunner(app([]), Bare())  # pyright: ignore[reportArgumentType]
    assert "it has no append_events() method; it has no load_events() method" in str(refused.value)


async def test_a_save_taking_any_keyword_runs() -> None:
    calls: list[str] = []
    store = ForwardingStore()
    async with wg.AppRunner(app(calls), store) as runner:
        result = await runner.drive("s", "go")
    assert result.status is RunStatus.COMPLETED
    assert calls == ["a"]
    events = await store.load_events("s")
    assert [event["seq"] for event in events] == list(range(len(events)))
    assert events[-1]["scope"] == "__weavegraph_stream_end__"
