"""NodeContext: identity, event emission, clock, interrupt signal."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

import pytest
from event_collector import Collector

from weavegraph.context import EventStamper, Interrupt, NodeContext, as_clock, task_context
from weavegraph.events.model import STREAM_END_SCOPE, Event, NullEmitter

WHEN = datetime(2031, 2, 3, tzinfo=UTC)


def make_ctx(emitter: Collector | NullEmitter, **kwargs: Any) -> NodeContext:
    stamper = EventStamper(emitter, "sess", lambda: WHEN, next_seq=10)
    return NodeContext(node_id="n", step=4, session_id="sess", stamper=stamper, **kwargs)


def test_identity_and_clock() -> None:
    ctx = make_ctx(NullEmitter())
    assert (ctx.node_id, ctx.step, ctx.session_id) == ("n", 4, "sess")
    assert ctx.now() == WHEN
    assert "n" in repr(ctx)


def test_emit_adds_node_id_step_seq_and_session() -> None:
    sink = Collector()
    ctx = make_ctx(sink)
    ctx.emit("progress", "half way", percent=50)
    ctx.emit_diagnostic("diag", "note")
    (node, diag) = sink.events
    assert (node.type, node.scope, node.message) == ("node", "progress", "half way")
    assert dict(node.metadata) == {"percent": 50, "node_id": "n", "step": 4}
    assert (node.seq, diag.seq) == (10, 11)
    assert node.session_id == "sess"
    assert node.timestamp == WHEN
    assert diag.type == "diagnostic"


def test_llm_events_and_the_final_scope() -> None:
    sink = Collector()
    ctx = make_ctx(sink)
    ctx.emit_llm_chunk("Hel", stream_id="s1")
    ctx.emit_llm_final("Hello", stream_id="s1", tokens=2)
    ctx.emit_llm_error("rate limited")
    scopes = [(e.type, e.scope, e.message) for e in sink.events]
    assert scopes == [
        ("llm", "chunk", "Hel"),
        ("llm", "final", "Hello"),
        ("llm", "error", "rate limited"),
    ]
    assert sink.events[1].metadata["stream_id"] == "s1"
    assert sink.events[1].metadata["tokens"] == 2
    assert all(e.scope != STREAM_END_SCOPE for e in sink.events)


@pytest.mark.parametrize("how", ["emit", "emit_diagnostic"])
def test_the_reserved_stream_end_scope_is_refused(how: str) -> None:
    sink = Collector()
    ctx = make_ctx(sink)
    with pytest.raises(ValueError, match=STREAM_END_SCOPE):
        getattr(ctx, how)(STREAM_END_SCOPE, "session=x status=completed step=9")
    assert sink.events == []


def test_emitting_without_listeners_or_with_a_broken_emitter_never_fails() -> None:
    make_ctx(NullEmitter()).emit("x", "nobody listens")

    class Broken(Collector):
        def publish(self, event: Event) -> None:
            self.events.append(event)
            if len(self.events) == 1:
                raise RuntimeError("down")

    broken = Broken()
    ctx = make_ctx(broken)
    ctx.emit("x", "lost")
    ctx.emit("x", "still fine")
    # The failure was really raised (and swallowed); the next event went out, numbered on.
    assert [(e.message, e.seq) for e in broken.events] == [("lost", 10), ("still fine", 11)]


def test_held_events_are_numbered_at_once_and_delivered_or_dropped_later() -> None:
    class Broken(Collector):
        def publish(self, event: Event) -> None:
            self.events.append(event)
            if event.message == "a":
                raise RuntimeError("down")

    sink = Broken()
    stamper = EventStamper(sink, "sess", lambda: WHEN, next_seq=0)
    stamper.hold()
    stamper.publish("custom", "x", "a", {})
    stamper.publish("custom", "x", "b", {})
    assert sink.events == []
    assert stamper.next_seq == 2
    stamper.deliver_held()  # the first one's failure is swallowed, the next still goes out
    assert [(e.message, e.seq) for e in sink.events] == [("a", 0), ("b", 1)]
    assert not stamper.holding
    stamper.hold()
    stamper.publish("custom", "x", "never", {})
    stamper.drop_held()
    stamper.publish("custom", "x", "c", {})
    assert [e.message for e in sink.events] == ["a", "b", "c"]


def test_seq_stays_gap_free_when_threads_emit_concurrently() -> None:
    sink = Collector()
    ctx = make_ctx(sink)

    def burst() -> None:
        for i in range(200):
            ctx.emit("t", str(i))

    threads = [threading.Thread(target=burst) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [e.seq for e in sink.events] == list(range(10, 810))


def test_interrupt_raises_the_signal_until_resumed() -> None:
    with pytest.raises(Interrupt) as raised:
        make_ctx(NullEmitter()).interrupt({"question": "ok?"})
    assert raised.value.node == "n"
    assert raised.value.value == {"question": "ok?"}
    assert make_ctx(NullEmitter(), resume="yes").interrupt({"question": "ok?"}) == "yes"
    with pytest.raises(TypeError, match="JSON"):
        make_ctx(NullEmitter()).interrupt({"bad": {1}})


def test_clock_forms() -> None:
    class Fake:
        def now(self) -> datetime:
            return WHEN

    assert as_clock(Fake())() == WHEN
    assert as_clock(lambda: WHEN)() == WHEN
    assert as_clock(None)().tzinfo is not None
    with pytest.raises(TypeError):
        as_clock(42)


def test_metadata_is_frozen_json_and_non_json_values_become_strings() -> None:
    import json
    from pathlib import Path

    import jsonschema

    import weavegraph.events.model as model

    schema = json.loads((Path(model.__file__).parent / "event.schema.json").read_text())
    sink = Collector()
    ctx = make_ctx(sink)
    shared = {"items": [1, 2]}
    ctx.emit("s", "m", shared=shared, tags={"a"}, obj=object, nan=float("nan"), nested={1: (2,)})
    ctx.emit_llm_chunk("c", stream_id=7, where=Path("/tmp"))  # type: ignore[arg-type]
    ctx.emit_llm_final("f", extra=[{"k": {3j}}])
    shared["items"].append(3)  # the node changing its dict later is not seen by the event
    (node, chunk, final) = sink.events
    assert node.metadata["shared"] == {"items": [1, 2]}
    with pytest.raises(TypeError):
        node.metadata["shared"]["items"].append(4)
    assert node.metadata["tags"] == "{'a'}"
    assert node.metadata["obj"] == str(object)
    assert node.metadata["nan"] == "nan"
    assert node.metadata["nested"] == {"1": [2]}
    assert (chunk.metadata["stream_id"], chunk.metadata["where"]) == ("7", "/tmp")
    assert final.metadata["extra"] == [{"k": str({3j})}]
    for event in sink.events:
        value = event.to_json_value()
        json.dumps(value)  # plain json, without the lenient default=str of to_json_string
        jsonschema.validate(value, schema)


def test_the_runtime_fast_constructor_builds_what_the_keyword_constructor_builds() -> None:
    stamper = EventStamper(NullEmitter(), "sess", lambda: WHEN)
    context = object()
    slow = NodeContext(node_id="n", step=4, session_id="sess", stamper=stamper, context=context)
    fast = task_context("n", 4, "sess", stamper, context, None)
    for name in NodeContext.__slots__:  # every slot set, to the same value
        assert getattr(fast, name) is getattr(slow, name), name
