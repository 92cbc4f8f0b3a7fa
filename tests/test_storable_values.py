"""Values are checked where they enter a run (emit, the barrier, state JSON, answers), with the key
named, so nothing that cannot be stored reaches a checkpoint or the event log."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

import weavegraph as wg
from weavegraph.events.model import Event
from weavegraph.state import MAX_JSON_DEPTH


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def one_node(node: Any) -> wg.App:
    return (
        wg.GraphBuilder()
        .add_node("w", node)
        .add_edge(wg.START, "w")
        .add_edge("w", wg.END)
        .compile()
    )


def writer(value: object) -> Any:
    async def node(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
        return wg.NodePartial(extra={"bad": {"inner": [value]}})

    return node


@pytest.mark.parametrize(
    ("value", "detail"),
    [
        ("x\ud800", "lone surrogate U+D800"),
        (1 << 64, "outside the signed 64-bit range"),
        (nested(MAX_JSON_DEPTH), f"nested more than {MAX_JSON_DEPTH} levels deep"),
        (nested(5_000), f"nested more than {MAX_JSON_DEPTH} levels deep"),
    ],
)
async def test_extra_that_cannot_be_stored_fails_the_node_naming_the_key(
    tmp_path: Path, value: object, detail: str
) -> None:
    saver = await wg.SQLiteCheckpointer.connect(f"sqlite://{tmp_path / 'x.db'}")
    try:
        with pytest.raises(wg.NonJsonValue) as raised:
            await one_node(writer(value)).invoke("go", session_id="s", checkpointer=saver)
        # Refused at the barrier (not at the save): the failure itself was checkpointed.
        checkpoint = await saver.load_latest("s")
    finally:
        await saver.close()
    assert (raised.value.key, raised.value.node) == ("bad", "w")
    assert detail in str(raised.value)
    assert checkpoint is not None
    assert [e.error_type for e in checkpoint.state.errors] == ["NonJsonValue"]


async def test_wrapping_a_stored_value_one_level_per_step_stops_at_the_limit() -> None:
    async def wrap(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
        return wg.NodePartial(extra={"chain": {"prev": snapshot.extra.get("chain")}})

    app = (
        wg.GraphBuilder()
        .add_node("wrap", wrap)
        .add_edge(wg.START, "wrap")
        .add_conditional_edge("wrap", lambda s: "wrap", targets=["wrap", wg.END])
        .with_max_steps(1000)
        .compile()
    )
    with pytest.raises(wg.NonJsonValue, match="nested more than") as raised:
        await app.invoke("go")
    assert raised.value.key == "chain"


async def test_emit_repairs_text_and_values_so_every_event_can_be_stored() -> None:
    async def node(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> None:
        ctx.emit("s\ud800", "half \ud83d\ude00 \udc00", big=1 << 70, deep=nested(5_000))
        ctx.emit_llm_chunk("\ud83d", stream_id="\ud800")

    sink = wg.MemorySink()
    await one_node(node).invoke_with_sinks("go", [sink])
    emitted = [e for e in sink.snapshot() if e.type in ("node", "llm")]
    assert [(e.scope, e.message) for e in emitted] == [
        ("s\ufffd", "half \U0001f600 \ufffd"),
        ("chunk", "\ufffd"),
    ]
    assert emitted[0].metadata["big"] == str(1 << 70)
    assert emitted[1].metadata["stream_id"] == "\ufffd"
    for event in sink.snapshot():
        assert Event.from_json_value(orjson.loads(event.to_json_string())) == event


def test_messages_and_errors_refuse_text_that_cannot_be_stored() -> None:
    with pytest.raises(ValueError, match=r"Message\.content cannot be stored: .*U\+D800"):
        wg.Message.user("x\ud800")
    with pytest.raises(ValueError, match=r"Message\.name cannot be stored"):
        wg.Message("user", "x", name="\udc00")
    with pytest.raises(ValueError, match=r"ErrorEvent\.message cannot be stored"):
        wg.ErrorEvent(message="\ud800")
    # Describing any exception never fails: its text is repaired.
    described = wg.ErrorEvent.from_exception(RuntimeError("bad \ud800"))
    assert described.message == "bad \ufffd"


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ({"extra": {"a": nested(600)}}, "extra['a'] is not a JSON value: nested more than"),
        ({"extra": {"a": 1 << 64}}, "extra['a'] is not a JSON value: an int of 65 bits"),
        ({"messages": [{"role": "user", "content": "x", "metadata": {"m": nested(600)}}]}, "[0]"),
        ({"versions": {"messages": "1", "extra": 1, "errors": 1}}, "versions['messages']"),
        ({"versions": {"messages": 1 << 64, "extra": 1, "errors": 1}}, "must be an int >= 1"),
    ],
)
def test_state_json_that_cannot_be_stored_is_a_state_error(value: Any, fragment: str) -> None:
    with pytest.raises(wg.StateError) as raised:
        wg.VersionedState.from_json_value(value)
    assert fragment in str(raised.value)


async def test_an_answer_that_cannot_be_stored_is_refused_before_the_session_moves() -> None:
    async def ask(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
        return wg.NodePartial(extra={"answer": ctx.interrupt("name?")})

    async with wg.AppRunner(one_node(ask), wg.CheckpointerType.InMemory) as runner:
        await runner.create_session("s", "go")
        await runner.run_until_complete("s")
        with pytest.raises(wg.StateError, match="the answer cannot be stored"):
            await runner.resume("s", {"n": 1 << 64})
        state = await runner.resume("s", "Ada")
    assert state.extra["answer"] == "Ada"


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ([], "not an object"),
        ({"type": "node", "scope": "s", "message": 3}, "message must be a string"),
        ({"type": "node", "scope": "s", "message": "m", "timestamp": "then"}, "not ISO 8601"),
        (
            {"type": "node", "scope": "s", "message": "m", "timestamp": "2030-01-01T00:00:00"}
            | {"metadata": {"x": nested(600)}},
            "metadata x[0]",
        ),
        (
            {"type": "node", "scope": "s", "message": "m", "timestamp": "2030-01-01T00:00:00"}
            | {"seq": -1},
            "seq must be an int >= 0",
        ),
    ],
)
def test_event_json_is_checked_when_decoded(value: Any, fragment: str) -> None:
    with pytest.raises(ValueError, match="malformed event JSON") as raised:
        Event.from_json_value(value)
    assert fragment in str(raised.value)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=12,
)
_EVENTISH = st.fixed_dictionaries(
    {},
    optional={
        "type": _JSON,
        "scope": _JSON,
        "message": _JSON,
        "timestamp": _JSON | st.datetimes().map(lambda d: d.isoformat()),
        "metadata": _JSON,
        "seq": _JSON,
        "session_id": _JSON,
    },
)


@given(_EVENTISH)
def test_decoding_any_event_json_gives_an_event_or_a_clear_error(value: dict[str, Any]) -> None:
    try:
        event = Event.from_json_value(value)
    except ValueError as exc:
        problem = str(exc)
    else:
        orjson.dumps(event.to_json_value())
        return
    assert problem.startswith("malformed event JSON")
