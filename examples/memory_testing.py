"""In-memory testing: capture events with MemorySink and assert on them (no database, no sleep).

Run: python examples/memory_testing.py   (or copy the test into your pytest suite)
"""

from __future__ import annotations

import asyncio

import weavegraph as wg


async def classify(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
    text = snapshot.messages[-1].content
    label = "question" if text.endswith("?") else "statement"
    ctx.emit("classify", label)
    return wg.NodePartial(extra={"label": label})


async def answer(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
    ctx.emit("answer", "answering")
    return wg.NodePartial(messages=(wg.Message.assistant("42"),))


def route(snapshot: wg.StateSnapshot) -> str:
    return "answer" if snapshot.extra["label"] == "question" else wg.END


def build() -> wg.App:
    builder = wg.GraphBuilder()
    builder.add_node("classify", classify)
    builder.add_node("answer", answer)
    builder.add_edge(wg.START, "classify")
    builder.add_conditional_edge("classify", route, targets=["answer", wg.END])
    builder.add_edge("answer", wg.END)
    return builder.compile()


async def test_questions_are_answered() -> None:
    sink = wg.MemorySink()
    bus = wg.EventBus.with_sink(sink)
    # A shorthand for AppRunner(app, CheckpointerType.InMemory, event_bus=bus).
    async with wg.AppRunner.with_bus(build(), bus) as runner:
        await runner.create_session("t1", wg.VersionedState.new_with_user_message("Why?"))
        final = await runner.run_until_complete("t1")
    await bus.aclose()
    node_events = [(e.scope, e.message) for e in sink.snapshot() if e.type == "node"]
    assert node_events == [("classify", "question"), ("answer", "answering")]
    assert sink.snapshot()[-1].is_stream_end
    assert final.messages[-1].content == "42"


async def test_statements_are_not() -> None:
    sink = wg.MemorySink()
    final = await build().invoke_with_sinks(wg.VersionedState.new_with_user_message("Hi."), [sink])
    assert [e.scope for e in sink.snapshot() if e.type == "node"] == ["classify"]
    assert len(final.messages) == 1


async def main() -> None:
    await test_questions_are_answered()
    await test_statements_are_not()
    print("2 tests passed")


if __name__ == "__main__":
    asyncio.run(main())
