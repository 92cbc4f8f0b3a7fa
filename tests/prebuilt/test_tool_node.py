"""tool_node runs the last assistant message's calls concurrently; failures become results."""

from __future__ import annotations

import asyncio
import threading

import weavegraph as wg


async def test_calls_run_concurrently_and_answer_in_call_order() -> None:
    started: list[str] = []
    both = asyncio.Event()

    async def slow(name: str) -> str:
        """Waits until both calls have started."""
        started.append(name)
        if len(started) == 2:
            both.set()
        await both.wait()
        return f"done {name}"

    thread_ids: list[int] = []

    def blocking(n: int) -> int:
        """A sync tool (runs in a worker thread)."""
        thread_ids.append(threading.get_ident())
        return n * 2

    calls = [
        wg.ToolCall("a", "slow", {"name": "first"}),
        wg.ToolCall("b", "slow", {"name": "second"}),
        wg.ToolCall("c", "blocking", {"n": 21}),
    ]
    state = wg.VersionedState.new_with_messages(
        [wg.Message.user("go"), wg.Message.assistant("", tool_calls=calls)]
    )
    app = (
        wg.GraphBuilder()
        .add_node("tools", wg.prebuilt.tool_node([slow, blocking]))
        .add_edge(wg.START, "tools")
        .add_edge("tools", wg.END)
        .compile()
    )
    final = await app.invoke(state)
    answers = final.messages[2:]
    assert [(m.role, m.tool_call_id, m.content) for m in answers] == [
        ("tool", "a", "done first"),
        ("tool", "b", "done second"),
        ("tool", "c", "42"),
    ]
    assert [m.name for m in answers] == ["slow", "slow", "blocking"]
    assert thread_ids
    assert thread_ids[0] != threading.get_ident()


async def test_exceptions_bad_arguments_and_unknown_tools_become_error_results() -> None:
    def explode(x: int) -> int:
        """Always fails."""
        raise RuntimeError(f"boom {x}")

    calls = [
        wg.ToolCall("1", "explode", {"x": 7}),
        wg.ToolCall("2", "explode", {"x": "not a number"}),
        wg.ToolCall("3", "teleport", {}),
    ]
    state = wg.VersionedState.new_with_messages([wg.Message.assistant("", tool_calls=calls)])
    node = wg.prebuilt.tool_node([explode])
    app = wg.GraphBuilder().add_node("t", node).add_edge(wg.START, "t").add_edge("t", wg.END)
    final = await app.compile().invoke(state)
    results = final.messages[1:]
    assert [m.tool_call_id for m in results] == ["1", "2", "3"]
    assert all(m.metadata["is_error"] for m in results)
    assert results[0].content == "Error: RuntimeError: boom 7"
    assert results[1].content.startswith("Error: invalid arguments for 'explode': x:")
    assert results[2].content == "Error: unknown tool 'teleport'; the tools are: explode"
    assert final.errors == (), "a tool's failure is the model's to handle, not the run's"


async def test_calls_already_answered_are_not_run_again() -> None:
    ran: list[str] = []

    def note(text: str) -> str:
        """Write a note."""
        ran.append(text)
        return "ok"

    calls = [wg.ToolCall("1", "note", {"text": "a"}), wg.ToolCall("2", "note", {"text": "b"})]
    state = wg.VersionedState.new_with_messages(
        [wg.Message.assistant("", tool_calls=calls), wg.Message.tool("ok", "1")]
    )
    app = wg.GraphBuilder().add_node("t", wg.prebuilt.tool_node([note]))
    final = await app.add_edge(wg.START, "t").add_edge("t", wg.END).compile().invoke(state)
    assert ran == ["b"]
    assert [m.tool_call_id for m in final.messages[1:]] == ["1", "2"]


def test_tools_condition_routes_on_the_last_message() -> None:
    asks = wg.Message.assistant("", tool_calls=[wg.ToolCall("1", "t", {})])
    assert (
        wg.prebuilt.tools_condition(wg.VersionedState.new_with_messages([asks]).snapshot())
        == "tools"
    )
    done = wg.VersionedState.new_with_messages([asks, wg.Message.assistant("answer")])
    assert wg.prebuilt.tools_condition(done.snapshot()) == wg.END
    assert (
        wg.prebuilt.tools_condition(wg.VersionedState.new_with_user_message("x").snapshot())
        == wg.END
    )
