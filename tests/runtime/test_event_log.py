"""The durable event log: a step's events are stored with its checkpoint, whoever listens live."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

import weavegraph as wg
from weavegraph.runtime.event_journal import BATCH_EVENTS, MEMORY_EVENTS

Opener = Callable[[Path], Awaitable[wg.Checkpointer]]


async def _sqlite(tmp: Path) -> wg.Checkpointer:
    return await wg.SQLiteCheckpointer.connect(f"sqlite://{tmp / 'log.db'}")


async def _memory(tmp: Path) -> wg.Checkpointer:
    return wg.InMemoryCheckpointer()


@pytest.fixture(params=["sqlite", "memory", "postgres"])
async def checkpointer(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    """Each backend, fresh: the run loop stores events the same way on all of them."""
    if request.param == "postgres":
        url: str = request.getfixturevalue("postgres_url")
        schema: str = request.getfixturevalue("postgres_schema")
        cp: wg.Checkpointer = await wg.PostgresCheckpointer.connect(url, schema=schema)
    else:
        opener: Opener = _sqlite if request.param == "sqlite" else _memory
        cp = await opener(tmp_path)
    try:
        yield cp
    finally:
        await cp.close()


def _counting_app(steps: int, per_step: int = 2) -> wg.App:
    async def count(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
        n = snapshot.extra.get("n", 0) + 1
        for i in range(per_step):
            ctx.emit("count", f"n={n} i={i}")
        return wg.NodePartial(extra={"n": n})

    def again(snapshot: wg.StateSnapshot) -> str:
        return "count" if snapshot.extra["n"] < steps else wg.END

    builder = wg.GraphBuilder().add_node("count", count).add_edge(wg.START, "count")
    return builder.add_conditional_edge("count", again, targets=["count", wg.END]).compile()


async def _all(cp: wg.Checkpointer, session_id: str) -> list[dict[str, Any]]:
    return await cp.load_events(session_id)


async def test_each_steps_events_are_stored_when_it_commits_without_any_bus(
    checkpointer: wg.Checkpointer,
) -> None:
    stored_at_step: dict[int, list[str]] = {}

    async def on_step(report: wg.StepReport) -> None:
        events = await checkpointer.load_events("counted")
        stored_at_step[report.step] = [e["message"] for e in events]

    async with wg.AppRunner(_counting_app(3), checkpointer) as runner:
        await runner.drive("counted", "go", on_step=on_step)
    assert stored_at_step == {
        1: ["n=1 i=0", "n=1 i=1"],
        2: ["n=1 i=0", "n=1 i=1", "n=2 i=0", "n=2 i=1"],
        # The last step's commit carries the run's stream end too.
        3: [
            *("n=1 i=0", "n=1 i=1", "n=2 i=0", "n=2 i=1", "n=3 i=0", "n=3 i=1"),
            "session=counted status=completed step=3",
        ],
    }
    events = await _all(checkpointer, "counted")
    assert [e["seq"] for e in events] == list(range(7))
    assert wg.Event.from_json_value(events[-1]).is_stream_end


async def test_seq_goes_on_after_the_stored_stream_end_in_a_new_runner(
    checkpointer: wg.Checkpointer,
) -> None:
    async def ask(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
        ctx.emit("asking", "before")
        answer = ctx.interrupt({"question": "go on?"})
        ctx.emit("asking", f"answer={answer}")
        return wg.NodePartial(extra={"answer": answer})

    builder = wg.GraphBuilder().add_node("ask", ask).add_edge(wg.START, "ask")
    app = builder.add_edge("ask", wg.END).compile()
    async with wg.AppRunner(app, checkpointer) as runner:
        await runner.create_session("asked", "hi")
        await runner.run_until_complete("asked")  # pauses: its stream ends interrupted
    first = await _all(checkpointer, "asked")
    assert "status=interrupted" in first[-1]["message"]
    async with wg.AppRunner(app, checkpointer) as runner:  # a new runner loads it from storage
        await runner.resume("asked", "yes")
        events = [event async for event in runner.events("asked")]
    assert [e.seq for e in events] == list(range(len(events)))  # never a seq twice, no gap
    assert [e.message for e in events if e.scope == "asking"] == [
        "before",
        "before",
        "answer=yes",
    ]
    assert "status=completed" in events[-1].message


async def test_a_node_emitting_100k_events_without_yielding_has_all_of_them_stored(
    tmp_path: Path,
) -> None:
    total = 100_000

    async def flood(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> None:
        for i in range(total):
            ctx.emit("flood", str(i))

    builder = wg.GraphBuilder().add_node("flood", flood).add_edge(wg.START, "flood")
    app = builder.add_edge("flood", wg.END).compile()
    bus = wg.EventBus(capacity=16)
    unread = bus.subscribe()  # a live reader that never reads: it loses nearly all of them
    cp = await _sqlite(tmp_path)
    try:
        async with wg.AppRunner(app, cp, event_bus=bus) as runner:
            await runner.create_session("flooded", "go")
            await runner.run_until_complete("flooded")
            seqs: list[int] = []
            messages: list[str] = []
            async for event in runner.events("flooded"):
                assert event.seq is not None
                seqs.append(event.seq)
                messages.append(event.message)
    finally:
        await cp.close()
    assert unread.dropped > total - 100
    assert seqs == list(range(total + 1))
    assert messages[:total] == [str(i) for i in range(total)]


async def test_a_step_beyond_the_memory_bound_keeps_its_events_in_order(
    checkpointer: wg.Checkpointer,
) -> None:
    per_step = MEMORY_EVENTS + BATCH_EVENTS + 17  # spilled to disk, stored in several batches
    async with wg.AppRunner(_counting_app(2, per_step), checkpointer) as runner:
        await runner.create_session("spilled", "go")
        await runner.run_until_complete("spilled")
    events = await _all(checkpointer, "spilled")
    assert [e["seq"] for e in events] == list(range(2 * per_step + 1))
    expected = [f"n={n} i={i}" for n in (1, 2) for i in range(per_step)]
    assert [e["message"] for e in events[:-1]] == expected


async def test_follow_streams_a_run_of_another_runner_as_its_steps_commit(tmp_path: Path) -> None:
    async def slow(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
        n = snapshot.extra.get("n", 0) + 1
        ctx.emit("slow", f"n={n}")
        await asyncio.sleep(0.05)
        return wg.NodePartial(extra={"n": n})

    def again(snapshot: wg.StateSnapshot) -> str:
        return "slow" if snapshot.extra["n"] < 5 else wg.END

    builder = wg.GraphBuilder().add_node("slow", slow).add_edge(wg.START, "slow")
    app = builder.add_conditional_edge("slow", again, targets=["slow", wg.END]).compile()
    url = f"sqlite://{tmp_path / 'shared.db'}"
    async with (
        wg.AppRunner(app, "sqlite", db_url=url) as runner,
        wg.AppRunner(app, "sqlite", db_url=url) as reader,
    ):
        await runner.create_session("followed", "go")
        seen: list[wg.Event] = []

        async def watch() -> None:
            async for event in reader.events("followed", follow=True):
                seen.append(event)

        watcher = asyncio.create_task(watch())
        await runner.run_until_complete("followed")
        await asyncio.wait_for(watcher, 10)
        stored = [event async for event in runner.events("followed")]
    assert seen == stored
    assert [e.message for e in seen if e.scope == "slow"] == [f"n={n}" for n in range(1, 6)]
    assert seen[-1].is_stream_end


async def test_follow_ends_a_run_that_died_without_a_stream_end_as_stopped(
    checkpointer: wg.Checkpointer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEAVEGRAPH_STALE_RUN_SECONDS", "0")
    async with wg.AppRunner(_counting_app(5), checkpointer) as runner:
        await runner.create_session("died", "go")
        await runner.run_step("died")  # mid-run: the stream has not ended (as if killed here)
        events = [event async for event in runner.events("died", follow=True)]
    assert [e.seq for e in events[:-1]] == [0, 1]
    end = events[-1]
    assert end.is_stream_end
    assert end.seq is None  # made up, not stored
    assert end.message == "session=died status=stopped step=1"


async def test_events_of_an_unknown_session_or_a_bad_after_are_refused(
    checkpointer: wg.Checkpointer,
) -> None:
    async with wg.AppRunner(_counting_app(1), checkpointer) as runner:
        with pytest.raises(wg.SessionNotFound):
            _ = [event async for event in runner.events("nobody")]
        await runner.create_session("known", "go")
        with pytest.raises(wg.SessionError, match="after is an event seq"):
            _ = [event async for event in runner.events("known", after=-5)]


@pytest.mark.slow
def test_memory_stays_bounded_for_200k_events_of_1kb(tmp_path: Path) -> None:
    import subprocess
    import sys

    flood = Path(__file__).parents[1] / "helpers" / "event_flood.py"
    done = subprocess.run(
        [sys.executable, str(flood), str(tmp_path / "flood.db"), "200000"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    _, before, peak, stored = done.stdout.split()
    assert int(stored) == 200_001  # every event, and the stream end
    # All of them held at once took ~1.5 GB; the bound keeps a few batches (generous margin).
    assert int(peak) - int(before) < 200 * 1024, (before, peak)


async def test_every_llm_chunk_is_stored_as_a_live_reader_saw_it(
    checkpointer: wg.Checkpointer,
) -> None:
    async def speak(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
        words = ["Super", "steps ", "merge."]
        for word in words:
            ctx.emit_llm_chunk(word, stream_id="s1")
        ctx.emit_llm_final("".join(words), stream_id="s1")
        return wg.NodePartial(messages=[wg.Message.assistant("".join(words))])

    builder = wg.GraphBuilder().add_node("speak", speak).add_edge(wg.START, "speak")
    app = builder.add_edge("speak", wg.END).compile()
    sink = wg.MemorySink()
    bus = wg.EventBus.with_sink(sink)
    async with wg.AppRunner(app, checkpointer, event_bus=bus) as runner:
        await runner.create_session("spoken", "hi")
        await runner.run_until_complete("spoken")
        stored = [event async for event in runner.events("spoken")]
    await bus.aclose()
    assert [(e.scope, e.message) for e in stored if e.type == "llm"] == [
        ("chunk", "Super"),
        ("chunk", "steps "),
        ("chunk", "merge."),
        ("final", "Supersteps merge."),
    ]
    assert stored == sink.snapshot()
