"""Messages that carry tool calls and tool results: frozen, validated, JSON round-trip."""

from __future__ import annotations

import pytest

import weavegraph as wg


def test_tool_calls_are_frozen_and_compare_by_value() -> None:
    call = wg.ToolCall("c1", "search", {"query": "x", "tags": ["a"]})
    message = wg.Message.assistant("", tool_calls=[call])
    assert message.tool_calls == (call,)
    assert message == wg.Message.assistant(
        "", tool_calls=(wg.ToolCall("c1", "search", {"query": "x", "tags": ["a"]}),)
    )
    assert hash(message) == hash(wg.Message.from_json_value(message.to_json_value()))
    with pytest.raises(TypeError):
        call.arguments["query"] = "y"  # type: ignore[index]
    with pytest.raises(AttributeError):
        message.tool_calls = ()  # type: ignore[misc]


def test_tool_results_carry_the_call_id() -> None:
    result = wg.Message.tool("3 hits", "c1", name="search")
    assert (result.role, result.tool_call_id, result.name) == ("tool", "c1", "search")
    assert result.to_json_value() == {
        "role": "tool",
        "content": "3 hits",
        "name": "search",
        "tool_call_id": "c1",
    }


def test_json_round_trip_and_old_messages_still_load() -> None:
    message = wg.Message.assistant("ok", tool_calls=[wg.ToolCall("c1", "f", {"n": 1})])
    value = message.to_json_value()
    assert value["tool_calls"] == [{"id": "c1", "name": "f", "arguments": {"n": 1}}]
    assert wg.Message.from_json_value(value) == message
    old = wg.Message.from_json_value({"role": "assistant", "content": "hi"})
    assert (old.tool_calls, old.tool_call_id) == ((), None)
    assert "tool_calls" not in old.to_json_value()
    state = wg.VersionedState.new_with_messages([message, wg.Message.tool("1", "c1")])
    assert wg.VersionedState.from_json_value(state.to_json_value()) == state


@pytest.mark.parametrize(
    "bad",
    [
        lambda: wg.ToolCall("", "f", {}),
        lambda: wg.ToolCall("c", "f", ["not", "an", "object"]),  # type: ignore[arg-type]
        lambda: wg.ToolCall("c", "f", {"x": {1, 2}}),
        lambda: wg.Message.assistant("", tool_calls=["c1"]),  # type: ignore[list-item]
        lambda: wg.Message("tool", "x", tool_call_id=""),
    ],
)
def test_bad_tool_calls_are_refused(bad: object) -> None:
    with pytest.raises(TypeError):
        bad()  # type: ignore[operator]
