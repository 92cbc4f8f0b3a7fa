"""compare_runs: same final state and same normalized events, whatever the timing."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

import weavegraph as wg
from weavegraph.events import node_event, stream_end_event
from weavegraph.testing import FakeClock, RecordedRun, compare_runs, normalize_events, record_run


def fan_out(jitter: bool) -> wg.App:
    def worker(name: str) -> Any:
        async def node(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
            for i in range(5):
                ctx.emit("work", f"{name} {i}")
                if jitter:
                    await asyncio.sleep(random.random() / 1000)
            return wg.NodePartial(extra={name: 5})

        return node

    builder = wg.GraphBuilder()
    for name in ("a", "b", "c"):
        builder.add_node(name, worker(name)).add_edge(wg.START, name).add_edge(name, wg.END)
    return builder.compile()


async def test_two_runs_with_different_timing_and_sessions_compare_equal() -> None:
    first = await record_run(fan_out(jitter=True), "go", lifecycle=True)
    second = await record_run(fan_out(jitter=True), "go", lifecycle=True, clock=FakeClock())
    result = compare_runs(first, second)
    assert result, str(result)
    assert str(result) == "runs match"
    assert first.events[-1].session_id != second.events[-1].session_id


async def test_a_different_state_or_event_is_reported_with_a_diff() -> None:
    first = await record_run(fan_out(jitter=False), "go")
    other_input = await record_run(fan_out(jitter=False), "stop")
    result = compare_runs(first, other_input)
    assert not result
    assert result.same_events
    assert not result.same_state
    assert "final states differ" in str(result)
    assert "'stop'" in str(result)

    fewer = RecordedRun(state=first.state, events=first.events[1:])
    result = compare_runs(first, fewer)
    assert not result.same_events
    assert "event sequences differ" in str(result)


def test_normalization_drops_timing_and_groups_concurrent_nodes() -> None:
    def ev(node: str, message: str, seq: int) -> wg.Event:
        return node_event(node, 1, "s", message, {"duration_ms": seq}).with_sequence(seq, "s-1")

    interleaved = [ev("b", "b0", 0), ev("a", "a0", 1), ev("b", "b1", 2), ev("a", "a1", 3)]
    ordered = [ev("a", "a0", 0), ev("a", "a1", 1), ev("b", "b0", 2), ev("b", "b1", 3)]
    end = stream_end_event("s-1", "completed", 1, seq=4)
    assert normalize_events([*interleaved, end]) == normalize_events([*ordered, end])
    normalized = normalize_events([end])[0]
    assert normalized["message"] == "session=<session> status=completed step=1"
    assert "timestamp" not in normalized
    assert "seq" not in normalized
    swapped = [ev("a", "a1", 0), ev("a", "a0", 1)]
    assert normalize_events(swapped) != normalize_events(ordered[:2])  # a node's own order counts


def test_tuples_are_accepted_and_sessions_can_be_compared_too() -> None:
    state = wg.VersionedState.new_with_user_message("x")
    a = (state, [stream_end_event("s-1", "completed", 1)])
    b = (state, [stream_end_event("s-2", "completed", 1)])
    assert compare_runs(a, b)
    assert not compare_runs(a, b, ignore_session=False)


async def test_the_pair_from_invoke_with_channel_is_refused_with_a_way_out() -> None:
    app = fan_out(jitter=False)
    first, second = await app.invoke_with_channel("go"), await app.invoke_with_channel("go")
    with pytest.raises(TypeError, match=r"await events\.collect\(\)"):
        compare_runs(first, second)  # pyright: ignore[reportArgumentType]  (untyped callers)
    collected = [(state, await events.collect()) for state, events in (first, second)]
    assert compare_runs(collected[0], collected[1])
