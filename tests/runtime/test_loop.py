"""The run loop and its executor: concurrency bound, timeouts, retries, failures, events."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from event_collector import Collector
from hypothesis import given, settings
from hypothesis import strategies as st
from save_hooks import SaveHooks

import weavegraph as wg
from weavegraph import reducers
from weavegraph.checkpoint import Checkpoint
from weavegraph.events.model import STREAM_END_SCOPE, Event
from weavegraph.runtime import loop
from weavegraph.runtime.plan import Cursor
from weavegraph.runtime.session import Session


class FailingSave(SaveHooks, wg.InMemoryCheckpointer):
    """A real in-memory checkpointer whose saves start failing after ``ok`` successes."""

    def __init__(self, ok: int) -> None:
        super().__init__()
        self.ok = ok

    async def before_save(
        self, checkpoint: Checkpoint, events: Sequence[Mapping[str, Any]]
    ) -> None:
        if self.ok <= 0:
            raise OSError("disk full")
        self.ok -= 1


def writer(key: str, value: Any) -> Any:
    async def node(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
        return wg.NodePartial(extra={key: value})

    return node


def fan_out(*branches: str, **nodes: Any) -> wg.GraphBuilder:
    builder = wg.GraphBuilder()
    for name in branches:
        builder.add_node(name, nodes.get(name, writer(name, 1)))
        builder.add_edge(wg.START, name)
        builder.add_edge(name, wg.END)
    return builder


async def test_at_most_max_concurrency_nodes_run_at_once() -> None:
    running = 0
    peak = 0

    async def busy(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        for _ in range(3):
            await asyncio.sleep(0)
        running -= 1

    names = [f"n{i}" for i in range(7)]
    app = fan_out(*names, **dict.fromkeys(names, busy)).with_max_concurrency(3).compile()
    await app.invoke("go")
    assert peak == 3


async def test_slow_node_times_out_and_fails_the_run() -> None:
    async def slow(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> None:
        await asyncio.Event().wait()

    app = (
        wg.GraphBuilder()
        .add_node("slow", slow, timeout=0.01)
        .add_edge(wg.START, "slow")
        .add_edge("slow", wg.END)
        .compile()
    )
    with pytest.raises(wg.NodeRunError) as raised:
        await app.invoke("go")
    assert isinstance(raised.value.__cause__, TimeoutError)
    assert "timed out" in str(raised.value)


async def test_retry_policy_retries_until_success() -> None:
    attempts: list[int] = []

    async def flaky(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
        attempts.append(len(attempts) + 1)
        if len(attempts) < 3:
            raise ConnectionError("try again")
        return wg.NodePartial(extra={"attempts": len(attempts)})

    policy = wg.RetryPolicy(max_attempts=3, initial_delay=0)
    app = (
        wg.GraphBuilder()
        .add_node("flaky", flaky, retry=policy)
        .add_edge(wg.START, "flaky")
        .add_edge("flaky", wg.END)
        .compile()
    )
    state = await app.invoke("go")
    assert state.extra["attempts"] == 3


async def test_retry_gives_up_on_exceptions_it_does_not_cover() -> None:
    calls = 0

    async def broken(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> None:
        nonlocal calls
        calls += 1
        raise KeyError("nope")

    policy = wg.RetryPolicy(max_attempts=5, initial_delay=0, retry_on=(ConnectionError,))
    app = (
        wg.GraphBuilder()
        .add_node("broken", broken, retry=policy)
        .add_edge(wg.START, "broken")
        .add_edge("broken", wg.END)
        .compile()
    )
    with pytest.raises(wg.NodeRunError):
        await app.invoke("go")
    assert calls == 1


async def test_node_failure_merges_nothing_records_error_and_keeps_frontier() -> None:
    async def boom(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> None:
        raise ValueError("kaput")

    app = fan_out("ok", "boom", boom=boom).compile()
    saver = wg.InMemoryCheckpointer()
    bus = Collector()
    with pytest.raises(wg.NodeRunError) as raised:
        await app.invoke("go", session_id="s1", checkpointer=saver, event_bus=bus)
    err = raised.value
    assert (err.node, err.step) == ("boom", 1)
    assert isinstance(err.__cause__, ValueError)
    checkpoint = await saver.load_latest("s1")
    assert checkpoint is not None
    assert checkpoint.frontier == ("ok", "boom")
    assert "ok" not in checkpoint.state.extra  # the sibling's partial was not merged
    (event,) = checkpoint.state.errors
    assert (event.scope, event.node_id, event.step) == ("node", "boom", 1)
    assert event.error_type == "ValueError"
    assert event.traceback is not None
    assert "kaput" in event.traceback
    assert bus.events[-1].message == "session=s1 status=error step=1"


async def test_resuming_after_a_failure_retries_the_step() -> None:
    failing = True

    async def sometimes(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
        if failing:
            raise RuntimeError("not yet")
        return wg.NodePartial(extra={"done": True})

    app = fan_out("x", x=sometimes).compile()
    saver = wg.InMemoryCheckpointer()
    with pytest.raises(wg.NodeRunError):
        await app.invoke("go", session_id="s2", checkpointer=saver)
    failing = False
    checkpoint = await saver.load_latest("s2")
    assert checkpoint is not None
    executor = Session(
        app.spec,
        session_id="s2",
        state=checkpoint.state,
        cursor=Cursor.from_json_value(checkpoint.cursor),
        clock=lambda: datetime(2030, 1, 1, tzinfo=UTC),
        checkpointer=saver,
    )
    await loop.execute(executor, begin_run=False)
    assert executor.state.extra["done"] is True
    assert executor.cursor.step == 2


async def test_router_exception_is_a_routing_error() -> None:
    def bad_router(snapshot: wg.StateSnapshot) -> str:
        raise LookupError("no idea")

    app = (
        wg.GraphBuilder()
        .add_node("a", writer("a", 1))
        .add_node("b", writer("b", 1))
        .add_edge(wg.START, "a")
        .add_conditional_edge("a", bad_router, targets=["b"])
        .add_edge("b", wg.END)
        .compile()
    )
    saver = wg.InMemoryCheckpointer()
    with pytest.raises(wg.RoutingError) as raised:
        await app.invoke("go", session_id="r1", checkpointer=saver)
    assert isinstance(raised.value.__cause__, LookupError)
    checkpoint = await saver.load_latest("r1")
    assert checkpoint is not None
    assert checkpoint.frontier == ("a",)
    assert "a" not in checkpoint.state.extra
    assert checkpoint.state.errors[-1].scope == "router"


async def test_unknown_routed_id_is_a_routing_error() -> None:
    app = (
        wg.GraphBuilder()
        .add_node("a", writer("a", 1))
        .add_edge(wg.START, "a")
        .add_conditional_edge("a", lambda s: "nowhere")
        .add_edge("a", wg.END)
        .compile()
    )
    with pytest.raises(wg.RoutingError, match="nowhere"):
        await app.invoke("go")


async def test_a_router_leaving_its_declared_targets_is_a_routing_error() -> None:
    app = (
        wg.GraphBuilder()
        .add_node("a", writer("a", 1))
        .add_node("b", writer("b", 1))
        .add_node("c", writer("c", 1))
        .add_edge(wg.START, "a")
        .add_conditional_edge("a", lambda s: ["b", "c"], targets=["b", wg.END])
        .add_edge("a", "c")
        .add_edge("b", wg.END)
        .add_edge("c", wg.END)
        .compile()
    )
    saver = wg.InMemoryCheckpointer()
    with pytest.raises(wg.RoutingError) as raised:
        await app.invoke("go", session_id="t1", checkpointer=saver)
    text = str(raised.value)
    assert "'a'" in text
    assert "'c'" in text
    assert "['b', 'End']" in text
    assert raised.value.node == "a"
    checkpoint = await saver.load_latest("t1")
    assert checkpoint is not None
    assert checkpoint.frontier == ("a",)
    ending = (
        wg.GraphBuilder()
        .add_node("a", writer("a", 1))
        .add_node("b", writer("b", 1))
        .add_edge(wg.START, "a")
        .add_conditional_edge("a", lambda s: wg.END, targets=["b"])
        .add_edge("b", wg.END)
        .compile()
    )
    assert (await ending.invoke("go")).extra == {"a": 1}  # END is always a valid route


def _explode(current: Any, update: Any) -> Any:
    raise ZeroDivisionError("reducer bug")


@pytest.mark.parametrize(
    ("how", "where"),
    [
        (lambda b: b.with_extra_reducer("w", _explode), "extra['w']"),
        (lambda b: b.with_reducer(wg.ChannelType.EXTRA, _explode), "the 'extra' channel"),
        (lambda b: b.with_reducer(wg.ChannelType.MESSAGES, _explode), "the 'messages' channel"),
    ],
)
async def test_a_raising_reducer_fails_the_step_naming_where_and_the_node(
    how: Any, where: str
) -> None:
    async def w(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
        return wg.NodePartial(extra={"w": 1}, messages=[wg.Message.assistant("hi")])

    app = how(fan_out("w", w=w)).compile()
    saver = wg.InMemoryCheckpointer()
    bus = Collector()
    with pytest.raises(wg.ReducerError) as raised:
        await app.invoke("go", session_id="red", checkpointer=saver, event_bus=bus)
    assert isinstance(raised.value, wg.StateError)
    assert isinstance(raised.value.__cause__, ZeroDivisionError)
    assert where in str(raised.value)
    assert "'w'" in str(raised.value)
    assert raised.value.node == "w"
    checkpoint = await saver.load_latest("red")
    assert checkpoint is not None
    assert checkpoint.step == 1
    assert checkpoint.frontier == ("w",)  # unchanged: resuming retries the step
    assert "w" not in checkpoint.state.extra
    assert [(e.node_id, e.step) for e in checkpoint.state.errors] == [("w", 1)]
    assert bus.events[-1].is_stream_end
    assert "status=error step=1" in bus.events[-1].message


async def test_a_raising_errors_reducer_still_records_the_failure() -> None:
    async def w(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
        return wg.NodePartial(errors=[wg.ErrorEvent(message="soft")])

    app = fan_out("w", w=w).with_reducer(wg.ChannelType.ERRORS, _explode).compile()
    saver = wg.InMemoryCheckpointer()
    with pytest.raises(wg.ReducerError, match="'errors' channel"):
        await app.invoke("go", session_id="rederr", checkpointer=saver)
    checkpoint = await saver.load_latest("rederr")
    assert checkpoint is not None
    assert [e.error_type for e in checkpoint.state.errors] == ["ReducerError"]


async def test_non_json_extra_fails_the_run_naming_key_and_node() -> None:
    app = fan_out("w", w=writer("when", datetime(2030, 1, 1))).compile()
    with pytest.raises(wg.NonJsonValue) as raised:
        await app.invoke("go")
    assert raised.value.key == "when"
    assert raised.value.node == "w"


async def test_step_limit_raises_after_checkpointing() -> None:
    async def tick(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
        return wg.NodePartial(extra={"n": int(snapshot.extra.get("n", 0)) + 1})

    app = (
        wg.GraphBuilder()
        .add_node("tick", tick)
        .add_edge(wg.START, "tick")
        .add_conditional_edge("tick", lambda s: "tick", targets=["tick", wg.END])
        .with_max_steps(5)
        .compile()
    )
    saver = wg.InMemoryCheckpointer()
    with pytest.raises(wg.StepLimitExceeded) as raised:
        await app.invoke("go", session_id="loop", checkpointer=saver)
    assert raised.value.step == 5
    checkpoint = await saver.load_latest("loop")
    assert checkpoint is not None
    assert (checkpoint.step, checkpoint.state.extra["n"]) == (5, 5)
    with pytest.raises(wg.StepLimitExceeded):
        await app.invoke("go", max_steps=2)


async def test_failing_checkpoint_save_is_a_checkpoint_error() -> None:
    app = fan_out("a").compile()
    bus = Collector()
    with pytest.raises(wg.CheckpointError) as raised:
        await app.invoke("go", checkpointer=FailingSave(ok=1), event_bus=bus)
    assert isinstance(raised.value.__cause__, OSError)
    assert bus.events[-1].is_stream_end
    assert "status=error" in bus.events[-1].message


async def test_sync_nodes_run_in_worker_threads() -> None:
    threads: list[int] = []

    def sync_node(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
        threads.append(threading.get_ident())
        ctx.emit("sync", "from a thread")
        return wg.NodePartial(extra={"sync": True})

    bus = Collector()
    state = await fan_out("s", s=sync_node).compile().invoke("go", event_bus=bus)
    assert state.extra["sync"] is True
    assert threads != [threading.get_ident()]
    assert [e.scope for e in bus.events] == ["sync", STREAM_END_SCOPE]


async def test_quiet_runs_emit_only_the_stream_end_and_seq_is_gap_free() -> None:
    bus = Collector()
    await fan_out("a", "b").compile().invoke("go", session_id="q", event_bus=bus)
    assert [e.type for e in bus.events] == ["diagnostic"]
    loud = Collector(lifecycle=True)
    await fan_out("a", "b").compile().invoke("go", session_id="q", event_bus=loud)
    scopes = [e.scope for e in loud.events]
    assert scopes[0] == "run_start"
    assert scopes[-2:] == ["run_end", STREAM_END_SCOPE]
    assert {"step_start", "node_start", "node_finish", "step_end"} <= set(scopes)
    assert "checkpoint_saved" not in scopes  # no checkpointer was given
    assert [e.seq for e in loud.events] == list(range(len(loud.events)))
    assert all(e.session_id == "q" for e in loud.events)
    finishes = [e for e in loud.events if e.scope == "node_finish"]
    assert all(isinstance(e.metadata["duration_ms"], float) for e in finishes)


async def test_seq_continues_across_resumes() -> None:
    async def ask(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
        ctx.emit("q", "asking")
        return wg.NodePartial(extra={"answer": ctx.interrupt("name?")})

    app = fan_out("ask", ask=ask).compile()
    saver = wg.InMemoryCheckpointer()
    bus = Collector(lifecycle=True)
    with pytest.raises(wg.Interrupted):
        await app.invoke("go", session_id="seq", checkpointer=saver, event_bus=bus)
    assert bus.events[-1].message == "session=seq status=interrupted step=1"
    checkpoint = await saver.load_latest("seq")
    assert checkpoint is not None
    cursor = Cursor.from_json_value(checkpoint.cursor)
    assert cursor.interrupt == {"node": "ask", "value": "name?"}
    executor = Session(
        app.spec,
        session_id="seq",
        state=checkpoint.state,
        cursor=Cursor(
            step=cursor.step,
            frontier=cursor.frontier,
            next_seq=cursor.next_seq,
            resume={"ask": "Ada"},
        ),
        clock=lambda: datetime(2030, 1, 1, tzinfo=UTC),
        emitter=bus,
    )
    assert await loop.execute(executor, begin_run=False) == "completed"
    assert executor.state.extra["answer"] == "Ada"
    assert [e.seq for e in bus.events] == list(range(len(bus.events)))


async def test_cancellation_ends_the_stream_with_cancelled() -> None:
    started = asyncio.Event()

    async def hang(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> None:
        started.set()
        await asyncio.Event().wait()

    bus = Collector()
    task = asyncio.create_task(fan_out("h", h=hang).compile().invoke("go", event_bus=bus))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert bus.events[-1].is_stream_end
    assert "status=cancelled" in bus.events[-1].message


async def test_a_failing_emitter_never_breaks_the_run() -> None:
    class Broken:
        lifecycle = True

        def publish(self, event: Event) -> None:
            raise RuntimeError("sink down")

    state = await fan_out("a").compile().invoke("go", event_bus=Broken())
    assert state.extra["a"] == 1


async def test_checkpoint_timestamps_and_events_use_the_injected_clock() -> None:
    start = datetime(2030, 5, 1, tzinfo=UTC)
    ticks = iter(range(1000))

    def clock() -> datetime:
        return start + timedelta(seconds=next(ticks))

    saver = wg.InMemoryCheckpointer()
    bus = Collector()
    await (
        fan_out("a")
        .compile()
        .invoke("go", session_id="c", checkpointer=saver, event_bus=bus, clock=clock)
    )
    checkpoint = await saver.load_latest("c")
    assert checkpoint is not None
    assert checkpoint.created_at.year == 2030
    assert bus.events[-1].timestamp.year == 2030


# --- property (a): the merged state does not depend on completion order ----------------------


@settings(max_examples=25, deadline=None)
@given(delays=st.lists(st.integers(min_value=0, max_value=4), min_size=2, max_size=6))
def test_merged_state_is_independent_of_completion_order(delays: list[int]) -> None:
    def make(index: int, delay: int) -> Any:
        async def node(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
            for _ in range(delay):
                await asyncio.sleep(0)
            return wg.NodePartial(
                messages=(wg.Message.assistant(f"m{index}"),),
                extra={"last": index, f"k{index}": index, "acc": [index]},
                errors=(wg.ErrorEvent(message=f"e{index}"),),
            )

        return node

    names = [f"n{i}" for i in range(len(delays))]
    nodes = {name: make(i, d) for i, (name, d) in enumerate(zip(names, delays, strict=True))}
    ordered = {name: make(i, 0) for i, name in enumerate(names)}

    def build(impls: dict[str, Any]) -> wg.App:
        builder = fan_out(*names, **impls)
        builder.with_max_concurrency(len(names))
        return builder.with_extra_reducer("acc", reducers.append).compile()

    timed = asyncio.run(build(nodes).invoke("go"))
    reference = asyncio.run(build(ordered).invoke("go"))
    assert timed == reference
    assert timed.extra["last"] == len(names) - 1
    assert list(timed.extra["acc"]) == list(range(len(names)))


async def test_two_runs_with_a_fake_clock_emit_identical_events() -> None:
    from weavegraph.testing import FakeClock

    async def talk(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
        ctx.emit("talk", f"at {ctx.now().isoformat()}")
        return wg.NodePartial(extra={ctx.node_id: ctx.step})

    def build() -> wg.App:
        return fan_out("a", "b", "c", a=talk, b=talk, c=talk).compile()

    runs: list[list[dict[str, Any]]] = []
    states: list[wg.VersionedState] = []
    for _ in range(2):
        bus = Collector(lifecycle=True)
        states.append(
            await build().invoke("go", session_id="det", event_bus=bus, clock=FakeClock())
        )
        runs.append(
            [
                {k: v for k, v in e.to_json_value().items() if k != "metadata"}
                | {"metadata": {k: v for k, v in e.metadata.items() if k != "duration_ms"}}
                for e in bus.events
            ]
        )
    assert states[0] == states[1]
    assert runs[0] == runs[1]


async def test_every_emitted_event_validates_against_the_shipped_schema() -> None:
    import jsonschema

    from weavegraph.events.schema import event_schema

    async def chatty(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
        ctx.emit("progress", "half", percent=50)
        ctx.emit_diagnostic("diag", "note")
        ctx.emit_llm_chunk("Hel", stream_id="s")
        ctx.emit_llm_final("Hello", stream_id="s")
        ctx.emit_llm_error("oops")
        return wg.NodePartial(extra={"n": ctx.interrupt("continue?")})

    bus = Collector(lifecycle=True)
    app = fan_out("chatty", chatty=chatty).compile()
    with pytest.raises(wg.Interrupted):  # the run paused at the question
        await app.invoke("go", event_bus=bus, checkpointer=wg.InMemoryCheckpointer())
    validator = jsonschema.Draft202012Validator(event_schema())
    assert len(bus.events) > 10
    for event in bus.events:
        validator.validate(event.to_json_value())
