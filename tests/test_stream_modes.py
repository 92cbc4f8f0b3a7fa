"""Stream modes (app.stream / runner.stream) and the runtime context (ctx.context)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

import weavegraph as wg


async def research(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
    return wg.NodePartial(extra={"facts": ["a"]})


def sync_writer(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
    assert threading.current_thread() is not threading.main_thread()
    for token in ("one ", "two"):
        ctx.emit_llm_chunk(token, stream_id="s1")
    ctx.emit_llm_final("one two", stream_id="s1")
    return wg.NodePartial(messages=[wg.Message.assistant("one two")])


async def quiet(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> None:
    ctx.emit("note", "hello")


def app() -> wg.App:
    builder = wg.GraphBuilder().add_node("research", research).add_node("write", sync_writer)
    builder.add_node("quiet", quiet)
    builder.add_edge(wg.START, "research").add_edge(wg.START, "quiet")
    builder.add_edge("research", "write").add_edge("write", wg.END).add_edge("quiet", wg.END)
    return builder.compile()


async def test_every_mode_in_order() -> None:
    stream = app().stream("hi", modes=("updates", "values", "messages", "events"))
    chunks: list[tuple[str, Any]] = [item async for item in stream]
    modes = [mode for mode, _ in chunks]
    updates = [chunk for mode, chunk in chunks if mode == "updates"]
    assert updates == [
        {"research": {"extra": {"facts": ["a"]}}, "quiet": None},
        {"write": {"messages": [{"role": "assistant", "content": "one two"}]}},
    ]
    values = [chunk for mode, chunk in chunks if mode == "values"]
    assert len(values) == 2  # after each step, not the initial state
    assert values[0]["extra"] == {"facts": ["a"]}
    assert values[1]["messages"][-1]["content"] == "one two"
    messages = [chunk for mode, chunk in chunks if mode == "messages"]
    assert [text for text, _ in messages] == ["one ", "two"]  # chunks only, not the final
    assert messages[0][1]["node_id"] == "write"
    assert messages[0][1]["stream_id"] == "s1"
    events = [chunk for mode, chunk in chunks if mode == "events"]
    assert events[-1].is_stream_end
    assert "status=completed" in events[-1].message
    # the tokens of step 2 come before step 2's update, which comes before its values
    assert modes.index("messages") < [i for i, m in enumerate(modes) if m == "updates"][1]
    assert stream.outcome.messages[-1].content == "one two"


async def test_one_mode_yields_chunks_alone() -> None:
    tokens = [text async for text, _meta in app().stream("hi", modes="messages")]
    assert tokens == ["one ", "two"]
    states = [value async for value in app().stream("hi", modes=["values"])]
    assert [len(s["messages"]) for s in states] == [1, 2]


async def test_outcome_raises_the_run_error_and_bad_modes_are_refused() -> None:
    async def boom(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> None:
        raise ValueError("nope")

    failing = wg.GraphBuilder().add_node("boom", boom)
    failing = failing.add_edge(wg.START, "boom").add_edge("boom", wg.END).compile()
    stream = failing.stream("hi", modes="updates")
    with pytest.raises(RuntimeError, match="not ended"):
        _ = stream.outcome
    assert [chunk async for chunk in stream] == []
    with pytest.raises(wg.NodeRunError, match="nope"):
        _ = stream.outcome
    with pytest.raises(wg.ConfigError, match="unknown stream mode 'tokens'"):
        failing.stream("hi", modes=("tokens",))


async def test_leaving_the_block_cancels_an_unfinished_run() -> None:
    async def forever(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
        return wg.NodePartial(extra={"n": snapshot.extra.get("n", 0) + 1})

    builder = wg.GraphBuilder().add_node("loop", forever).add_edge(wg.START, "loop")
    looping = builder.add_conditional_edge("loop", lambda s: "loop", targets=["loop", wg.END])
    async with looping.compile().stream("hi", modes="updates") as stream:
        async for _update in stream:
            break
    with pytest.raises(BaseException):  # noqa: B017, PT011  (cancelled)
        _ = stream.outcome


async def test_runner_stream_drives_a_session_and_checkpoints_it(tmp_path: Path) -> None:
    async with wg.AppRunner(app(), "sqlite", db_url=f"sqlite://{tmp_path / 's.db'}") as runner:
        await runner.create_session("s", "hi")
        stream = runner.stream("s", modes=("updates", "messages"))
        chunks = [chunk async for chunk in stream]
        assert ("messages", ("one ", {"node_id": "write", "step": 2, "stream_id": "s1"})) in chunks
        assert stream.outcome.messages[-1].content == "one two"
        assert (await runner.session_info("s")).status == "completed"
        assert [info.step for info in await runner.history("s")] == [0, 1, 2]


async def test_nodes_and_routers_read_the_runtime_context() -> None:
    seen: list[Any] = []

    async def node(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
        seen.append(ctx.context)
        return wg.NodePartial(extra={"user": ctx.context["user"]})

    def sync_node(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> None:
        seen.append(ctx.context)

    builder = wg.GraphBuilder().add_node("a", node).add_node("b", sync_node)
    graph = builder.add_edge(wg.START, "a").add_edge("a", "b").add_edge("b", wg.END).compile()
    deps = {"user": "ada", "client": object()}  # not JSON: never checkpointed
    final = await graph.invoke(wg.VersionedState(), context=deps)
    assert final.extra["user"] == "ada"
    assert seen == [deps, deps]
    assert seen[0] is deps
    assert (await graph.invoke(wg.VersionedState(), context={"user": "bob"})).extra["user"] == "bob"
    async with wg.AppRunner(graph, "memory", context=deps) as runner:
        await runner.create_session("s", wg.VersionedState())
        assert (await runner.run_until_complete("s")).extra["user"] == "ada"
    stream = graph.stream(wg.VersionedState(), modes="values", context={"user": "cy"})
    assert [v["extra"]["user"] async for v in stream][-1] == "cy"
