"""Running an App with events: channel, sinks, live streaming, cancellation, isolation (SPEC §2.4)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from pathlib import Path
from typing import Any

import jsonschema
import pytest

import weavegraph as wg
from weavegraph.events import (
    Event,
    EventBus,
    JsonLinesSink,
    MemorySink,
    RunStatus,
    event_schema,
    parse_stream_end,
)


def chain(*nodes: tuple[str, Any]) -> wg.App:
    builder = wg.GraphBuilder()
    previous = wg.START
    for name, fn in nodes:
        builder.add_node(name, fn)
        builder.add_edge(previous, name)
        previous = name
    builder.add_edge(previous, wg.END)
    return builder.compile()


def emitter(count: int, scope: str = "tick") -> Any:
    async def node(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
        for i in range(count):
            ctx.emit(scope, str(i), i=i)
        return wg.NodePartial(extra={ctx.node_id: count})

    return node


def end_of(events: list[Event]) -> tuple[RunStatus, int]:
    end = parse_stream_end(events[-1])
    assert end is not None, "the last event must be the stream end"
    assert sum(e.is_stream_end for e in events) == 1
    return end.status, end.step


async def test_invoke_with_channel_returns_the_state_and_every_event() -> None:
    app = chain(("a", emitter(3)), ("b", emitter(2)))
    state, events = await app.invoke_with_channel("hi", session_id="chan-1")
    assert state.extra["a"] == 3
    collected = await events.collect()
    assert [e.message for e in collected[:-1]] == ["0", "1", "2", "0", "1"]
    assert end_of(collected) == (RunStatus.COMPLETED, 2)
    assert [e.seq for e in collected] == list(range(collected[0].seq or 0, len(collected)))
    assert {e.session_id for e in collected} == {"chan-1"}
    assert [e async for e in events] == []  # ended


async def test_invoke_with_sinks_delivers_everything_and_isolates_a_failing_sink(
    tmp_path: Path,
) -> None:
    class Broken:
        name = "broken"

        def handle(self, event: Event) -> None:
            raise OSError("disk full")

    memory = MemorySink()
    path = tmp_path / "run.jsonl"
    app = chain(("a", emitter(10)))
    state = await app.invoke_with_sinks("go", [Broken(), memory, JsonLinesSink(path)])
    assert state.extra["a"] == 10
    assert len(memory.snapshot()) == 11
    assert len(path.read_text().splitlines()) == 11
    assert end_of(memory.snapshot())[0] == RunStatus.COMPLETED


async def test_events_arrive_live_long_before_the_run_ends() -> None:
    release = asyncio.Event()

    async def waits(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> None:
        ctx.emit("progress", "started")
        await release.wait()  # only the test, having seen the event, lets the run finish
        ctx.emit("progress", "finished")

    handle, events = chain(("w", waits)).invoke_streaming("go")
    first = await anext(events)
    assert first.message == "started"
    assert not handle.done()
    release.set()
    rest = await events.collect()
    assert [e.message for e in rest[:-1]] == ["finished"]
    assert end_of(rest)[0] == RunStatus.COMPLETED
    final = await handle
    assert final.versions["messages"] == 1
    assert handle.result() is final


async def test_result_is_synchronous_like_a_tasks() -> None:
    release = asyncio.Event()

    async def waits(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> None:
        await release.wait()

    async def boom(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> None:
        raise RuntimeError("boom")

    handle, events = chain(("w", waits)).invoke_streaming("go")
    with pytest.raises(asyncio.InvalidStateError, match="await handle"):
        handle.result()
    release.set()
    final = await handle
    assert handle.result() is final
    await events.collect()
    failing, failed_events = chain(("boom", boom)).invoke_streaming("go")
    await failing.wait()
    with pytest.raises(wg.NodeRunError):
        failing.result()
    await failed_events.collect()
    with pytest.raises(wg.NodeRunError):
        await failing


async def test_each_nodes_own_events_keep_their_order_in_a_concurrent_step() -> None:
    async def chatty(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> None:
        for i in range(50):
            ctx.emit("tick", str(i))
            await asyncio.sleep(0)

    def sync_chatty(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> None:
        for i in range(50):
            ctx.emit("tick", str(i))  # from a worker thread

    builder = wg.GraphBuilder()
    for name, fn in [("a", chatty), ("b", chatty), ("c", sync_chatty)]:
        builder.add_node(name, fn).add_edge(wg.START, name).add_edge(name, wg.END)
    _state, stream = await builder.compile().invoke_with_channel("go")
    events = await stream.collect()
    per_node: dict[str, list[str]] = {}
    for event in events[:-1]:
        per_node.setdefault(event.metadata["node_id"], []).append(event.message)
    expected = [str(i) for i in range(50)]
    assert per_node == {"a": expected, "b": expected, "c": expected}
    seqs = [e.seq for e in events]
    assert seqs == list(range(seqs[0] or 0, (seqs[0] or 0) + len(events)))


async def test_cancelling_a_streaming_run_ends_the_stream_with_status_cancelled() -> None:
    async def forever(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> None:
        ctx.emit("progress", "waiting")
        await asyncio.Event().wait()

    handle, events = chain(("f", forever)).invoke_streaming("go")
    assert (await anext(events)).message == "waiting"
    handle.cancel()
    rest = await events.collect()
    assert end_of(rest) == (RunStatus.CANCELLED, 0)
    with pytest.raises(asyncio.CancelledError):
        await handle
    assert handle.cancelled()


async def test_a_run_cancelled_before_it_starts_still_ends_its_stream() -> None:
    handle, events = chain(("a", emitter(1))).invoke_streaming("go", session_id="early")
    handle.cancel()
    collected = await events.collect()
    assert end_of(collected)[0] == RunStatus.CANCELLED
    assert collected[-1].session_id == "early"


async def test_a_run_cancelled_before_it_starts_still_closes_its_sinks() -> None:
    class Closing(MemorySink):
        dispatch = "thread"  # a worker thread that must not outlive the run

        def __init__(self) -> None:
            super().__init__("closing")
            self.closed = False

        def close(self) -> None:
            self.closed = True

    sink = Closing()
    handle, events = chain(("a", emitter(1))).invoke_streaming("go", sinks=[sink])
    handle.cancel()
    await events.collect()
    await handle.wait()
    assert sink.closed
    assert [e.is_stream_end for e in sink.snapshot()] == [True]


async def test_leaving_the_async_with_block_cancels_an_unfinished_run() -> None:
    async def forever(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> None:
        ctx.emit("progress", "waiting")
        await asyncio.Event().wait()

    async with chain(("f", forever)).invoke_streaming("go") as (handle, events):
        async for event in events:
            assert event.message == "waiting"
            break
    assert handle.cancelled()


async def test_a_failing_node_ends_the_stream_with_status_error() -> None:
    async def boom(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> None:
        ctx.emit("progress", "about to fail")
        raise RuntimeError("boom")

    handle, events = chain(("boom", boom)).invoke_streaming("go")
    collected = await events.collect()
    assert end_of(collected) == (RunStatus.ERROR, 1)
    with pytest.raises(wg.NodeRunError):
        await handle


async def test_a_node_borrowing_the_stream_end_scope_fails_and_the_stream_ends_once() -> None:
    from weavegraph.events import STREAM_END_SCOPE

    async def sly(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
        ctx.emit_diagnostic(STREAM_END_SCOPE, "session=x status=completed step=9")
        return wg.NodePartial(extra={"sly": True})

    app = chain(("sly", sly), ("after", emitter(3)))
    handle, live = app.invoke_streaming("go")
    events = await live.collect()
    assert [e.scope for e in events].count(STREAM_END_SCOPE) == 1
    assert end_of(events) == (RunStatus.ERROR, 1)
    with pytest.raises(wg.NodeRunError) as raised:
        await handle
    assert isinstance(raised.value.__cause__, ValueError)


async def test_a_failed_run_whose_stream_was_read_is_not_reported_as_never_retrieved() -> None:
    import gc

    async def boom(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> None:
        raise RuntimeError("boom")

    loop = asyncio.get_running_loop()
    reported: list[str] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: reported.append(context["message"]))
    try:
        handle, events = chain(("boom", boom)).invoke_streaming("go")
        assert end_of(await events.collect())[0] == RunStatus.ERROR
        await handle.wait()
        awaited, awaited_events = chain(("boom", boom)).invoke_streaming("go")
        await awaited_events.collect()
        with pytest.raises(wg.NodeRunError):  # reading the stream hides nothing from await
            await awaited
        del handle, events, awaited, awaited_events
        gc.collect()
    finally:
        loop.set_exception_handler(previous)
    assert reported == []


async def test_concurrent_runs_never_see_each_others_events() -> None:
    app = chain(("a", emitter(20)), ("b", emitter(20)))
    runs = [app.invoke_streaming("go", session_id=f"iso-{i}") for i in range(3)]
    streams = await asyncio.gather(*(events.collect() for _, events in runs))
    for i, events in enumerate(streams):
        assert {e.session_id for e in events} == {f"iso-{i}"}
        assert len(events) == 41
        assert end_of(events)[0] == RunStatus.COMPLETED
    await asyncio.gather(*(handle for handle, _ in runs))


async def test_a_stuck_sink_does_not_hold_up_a_run_of_5000_events() -> None:
    class Stuck:
        """Stuck in its first ``handle`` until ``gate`` opens (bounded: a regression fails)."""

        name = "stuck"

        def __init__(self) -> None:
            self.gate = threading.Event()
            self.handled = 0
            self.gave_up = False

        def handle(self, event: Event) -> None:
            if not self.gave_up and not self.gate.wait(30):
                self.gave_up = True
            self.handled += 1

    stuck, memory = Stuck(), MemorySink()
    bus = EventBus.with_sinks([stuck, memory], capacity=64)
    state = await chain(("a", emitter(5000))).invoke("go", event_bus=bus)
    # The whole run happened while the sink could not finish handling a single event.
    assert stuck.handled == 0
    assert state.extra["a"] == 5000
    assert len(memory.snapshot()) == 5001  # the other sink is unaffected
    stuck.gate.set()
    await bus.drain()
    assert not stuck.gave_up
    dropped = bus.metrics().dropped
    assert dropped > 0
    assert stuck.handled + dropped == 5001
    assert bus.sink_health()[0].dropped == dropped
    await bus.aclose()


async def test_a_sink_raising_on_every_event_shows_in_health_while_the_run_succeeds() -> None:
    class Raising:
        name = "raising"

        async def handle(self, event: Event) -> None:
            raise ValueError(f"bad event {event.seq}")

    memory = MemorySink()
    bus = EventBus.with_sinks([Raising(), memory])
    state = await chain(("a", emitter(7))).invoke("go", event_bus=bus)
    await bus.drain()
    assert state.extra["a"] == 7
    raising, healthy = bus.sink_health()
    assert (raising.sink, raising.error_count) == ("raising", 8)
    assert raising.last_error == f"ValueError: bad event {memory.snapshot()[-1].seq}"
    assert healthy.error_count == 0
    assert len(memory.snapshot()) == 8
    await bus.aclose()


async def test_node_emit_helpers_never_fail_without_listeners() -> None:
    def sync_node(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
        ctx.emit("s", "m", k=1)
        ctx.emit_diagnostic("d", "m")
        ctx.emit_llm_chunk("tok", stream_id="x")
        ctx.emit_llm_final("done")
        ctx.emit_llm_error("oops")
        return wg.NodePartial(extra={"ok": True})

    state = await chain(("s", sync_node)).invoke("go")
    assert state.extra["ok"] is True


async def test_every_event_a_run_can_emit_validates_against_the_schema() -> None:
    def llm(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> None:
        ctx.emit("s", "m", nested={"a": [1, 2]})
        ctx.emit_diagnostic("d", "m")
        ctx.emit_llm_chunk("tok", stream_id="x", model="m")
        ctx.emit_llm_final("done", stream_id="x")
        ctx.emit_llm_error("oops")

    async def boom(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> None:
        raise RuntimeError("boom")

    async def asks(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> None:
        ctx.interrupt({"question": "go on?"})

    validator = jsonschema.Draft202012Validator(
        event_schema(), format_checker=jsonschema.FormatChecker()
    )
    seen: list[Event] = []
    for app in (chain(("llm", llm)), chain(("llm", llm), ("boom", boom)), chain(("asks", asks))):
        memory = MemorySink()
        bus = EventBus.with_sink(memory, lifecycle=True)
        with contextlib.suppress(wg.NodeRunError, wg.Interrupted):
            await app.invoke("go", event_bus=bus, checkpointer=wg.InMemoryCheckpointer())
        seen += memory.snapshot()
        assert seen[-1].is_stream_end
    for event in seen:
        validator.validate(event.to_json_value())
        assert isinstance(event.seq, int)
    kinds = {(e.type, e.scope) for e in seen}
    assert {("llm", "chunk"), ("llm", "final"), ("llm", "error"), ("node", "s")} <= kinds
    assert {("lifecycle", "node_start"), ("lifecycle", "checkpoint_saved")} <= kinds
    statuses = {parse_stream_end(e).status for e in seen if e.is_stream_end}  # type: ignore[union-attr]
    assert statuses == {RunStatus.COMPLETED, RunStatus.ERROR, RunStatus.INTERRUPTED}


async def test_await_handle_after_the_block_gives_the_state_of_a_completed_run() -> None:
    """Leaving the block while the finished run still closes its bus must not cancel it."""

    class SlowSink:
        name = "slow"
        dispatch = "loop"

        async def handle(self, event: Event) -> None:
            await asyncio.sleep(0.01)  # the bus takes a while to close behind the run

    app = chain(("tick", emitter(5)))
    async with app.invoke_streaming("go", sinks=[SlowSink()]) as (handle, events):
        collected = await events.collect()
    assert end_of(collected)[0] == RunStatus.COMPLETED
    final = await handle
    assert final.extra["tick"] == 5
    assert not handle.cancelled()
