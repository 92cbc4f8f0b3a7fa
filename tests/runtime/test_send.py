"""Send tasks through the public API: per-task input, task-ordered merge, routing, events."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import weavegraph as wg


def _square_graph(
    fan_out: Any = None, *, targets: list[str] | None = None, **node_options: Any
) -> wg.GraphBuilder:
    async def square(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
        return wg.NodePartial(extra={"squares": [ctx.input["n"] ** 2]})

    def default_fan_out(snapshot: wg.StateSnapshot) -> list[wg.Send]:
        return [wg.Send("square", {"n": n}) for n in snapshot.extra["numbers"]]

    builder = wg.GraphBuilder().with_extra_reducer("squares", wg.reducers.append)
    builder.add_node("square", square, **node_options).add_edge("square", wg.END)
    builder.add_conditional_edge(wg.START, fan_out or default_fan_out, targets=targets)
    return builder


def _numbers(*numbers: int) -> wg.VersionedState:
    return wg.VersionedState.builder().with_extra("numbers", list(numbers)).build()


async def test_each_send_is_a_task_with_its_own_input_merged_in_send_order() -> None:
    final = await _square_graph().compile().invoke(_numbers(3, 1, 2))
    assert final.extra["squares"] == [9, 1, 4]


async def test_the_merge_follows_send_order_not_completion_order() -> None:
    async def slow_first(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
        await asyncio.sleep(0.01 * (5 - ctx.input))  # the first Send finishes last
        return wg.NodePartial(extra={"order": [ctx.input]})

    builder = wg.GraphBuilder().with_extra_reducer("order", wg.reducers.append)
    builder.add_node("work", slow_first).add_edge("work", wg.END)
    builder.add_conditional_edge(wg.START, lambda s: [wg.Send("work", i) for i in range(5)])
    final = await builder.compile().invoke(wg.VersionedState())
    assert final.extra["order"] == [0, 1, 2, 3, 4]


async def test_two_sends_with_the_same_input_are_two_tasks() -> None:
    calls: list[Any] = []

    async def work(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
        calls.append(ctx.input)
        return wg.NodePartial(extra={"seen": [ctx.input]})

    builder = wg.GraphBuilder().with_extra_reducer("seen", wg.reducers.append)
    builder.add_node("work", work).add_edge("work", wg.END)
    builder.add_conditional_edge(wg.START, lambda s: [wg.Send("work", "x")] * 2)
    final = await builder.compile().invoke(wg.VersionedState())
    assert calls == ["x", "x"]
    assert final.extra["seen"] == ["x", "x"]


async def test_ids_and_sends_mix_and_ordinary_tasks_have_no_input() -> None:
    inputs: dict[str, list[Any]] = {"work": [], "plain": []}

    def recorder(name: str) -> Any:
        async def node(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
            inputs[name].append((ctx.input, ctx.task))
            return wg.NodePartial(extra={"log": [name]})

        return node

    builder = wg.GraphBuilder().with_extra_reducer("log", wg.reducers.append)
    builder.add_node("work", recorder("work")).add_node("plain", recorder("plain"))
    builder.add_edge("work", wg.END).add_edge("plain", wg.END)
    builder.add_conditional_edge(
        wg.START, lambda s: [wg.Send("work", 1), "plain", wg.Send("work", 2)]
    )
    final = await builder.compile().invoke(wg.VersionedState())
    assert inputs["plain"] == [(None, None)]
    # Frontier nodes come first (index 0), then the Sends in the order produced.
    assert inputs["work"] == [(1, 1), (2, 2)]
    assert final.extra["log"] == ["plain", "work", "work"]


async def test_a_node_sends_with_its_partial_and_version_gating_never_skips_a_send() -> None:
    runs: list[int] = []

    async def tick(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial | None:
        n = 0 if ctx.input is None else int(ctx.input)
        runs.append(n)
        # Writes nothing: the state (and every version) stays the same from step to step.
        return wg.NodePartial().with_sends([wg.Send("tick", n + 1)]) if n < 3 else None

    builder = wg.GraphBuilder().add_node("tick", tick, frontier_targets=["tick"])
    builder.add_edge(wg.START, "tick").add_edge("tick", wg.END)
    final = await builder.compile().invoke(wg.VersionedState())
    assert runs == [0, 1, 2, 3]
    assert dict(final.versions) == {"messages": 1, "extra": 1, "errors": 1}


async def test_events_of_a_send_task_carry_its_index() -> None:
    async def work(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> None:
        ctx.emit("work", f"input {ctx.input}")

    builder = wg.GraphBuilder().add_node("work", work).add_edge("work", wg.END)
    builder.add_conditional_edge(wg.START, lambda s: [wg.Send("work", n) for n in "abc"])
    _, events = await builder.compile().invoke_with_channel(wg.VersionedState())
    emitted = [event async for event in events if event.scope == "work"]
    assert sorted((e.message, e.metadata["task"]) for e in emitted) == [
        ("input a", 0),
        ("input b", 1),
        ("input c", 2),
    ]
    assert {e.metadata["node_id"] for e in emitted} == {"work"}


async def test_updates_stream_names_a_send_task_node_colon_index() -> None:
    app = _square_graph().compile()
    updates = [chunk async for chunk in app.stream(_numbers(2, 3), modes="updates")]
    assert updates == [
        {"square:0": {"extra": {"squares": [4]}}, "square:1": {"extra": {"squares": [9]}}}
    ]


@pytest.mark.parametrize(
    ("route", "problem"),
    [
        (lambda s: [wg.Send("ghost", 1)], "unknown node 'ghost'"),
        (lambda s: wg.Send(wg.END, 1), "virtual node 'End'"),
        (lambda s: [wg.Send("square", 1), 3], "a node id, a Send or a list of them"),
    ],
)
async def test_a_router_sending_to_an_unknown_node_raises_routing_error(
    route: Any, problem: str
) -> None:
    with pytest.raises(wg.RoutingError, match=problem) as raised:
        await _square_graph(route).compile().invoke(_numbers())
    assert raised.value.node == wg.START


async def test_a_send_outside_the_declared_targets_is_a_routing_error() -> None:
    builder = _square_graph(lambda s: [wg.Send("other", 1)], targets=["square"])
    builder.add_node("other", lambda s, c: None).add_edge("other", wg.END)
    builder.add_edge("square", "other")
    with pytest.raises(wg.RoutingError, match="not among its declared targets"):
        await builder.compile().invoke(_numbers())


async def test_a_node_sending_to_an_unknown_node_raises_routing_error() -> None:
    async def bad(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
        return wg.NodePartial().with_sends([wg.Send("nowhere", {})])

    builder = wg.GraphBuilder().add_node("bad", bad).add_edge(wg.START, "bad")
    builder.add_edge("bad", wg.END)
    with pytest.raises(wg.RoutingError, match="unknown node 'nowhere'") as raised:
        await builder.compile().invoke(wg.VersionedState())
    assert (raised.value.node, raised.value.step) == ("bad", 1)


def test_declared_targets_cover_send_targets_for_validation() -> None:
    # Without the declaration "square" would be unreachable from START.
    _square_graph(targets=["square"]).compile()
    builder = wg.GraphBuilder().add_node("a", lambda s, c: None).add_node("b", lambda s, c: None)
    builder.add_edge(wg.START, "a").add_edge("b", wg.END)
    with pytest.raises(wg.GraphCompileError):
        builder.compile()
    builder = wg.GraphBuilder().add_node("a", lambda s, c: None, frontier_targets=["b"])
    builder.add_node("b", lambda s, c: None).add_edge(wg.START, "a").add_edge("b", wg.END)
    assert "b" in builder.compile().to_mermaid()


async def test_each_send_task_has_its_own_retries_and_timeout() -> None:
    attempts: Counter[int] = Counter()

    async def flaky(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
        attempts[ctx.input] += 1
        if ctx.input == 1 and attempts[1] < 3:
            raise ConnectionError("try again")
        if ctx.input == 2 and attempts[2] == 1:
            await asyncio.sleep(5)  # cut by the timeout, then retried
        return wg.NodePartial(extra={"done": [ctx.input]})

    builder = wg.GraphBuilder().with_extra_reducer("done", wg.reducers.append)
    retry = wg.RetryPolicy(max_attempts=3, initial_delay=0.001)
    builder.add_node("flaky", flaky, retry=retry, timeout=0.2).add_edge("flaky", wg.END)
    builder.add_conditional_edge(wg.START, lambda s: [wg.Send("flaky", i) for i in range(4)])
    final = await builder.compile().invoke(wg.VersionedState())
    assert final.extra["done"] == [0, 1, 2, 3]
    assert attempts == {0: 1, 1: 3, 2: 2, 3: 1}


async def test_send_tasks_run_under_max_concurrency() -> None:
    running = peak = 0

    async def work(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.002)
        running -= 1

    builder = wg.GraphBuilder().add_node("work", work).add_edge("work", wg.END)
    builder.add_conditional_edge(wg.START, lambda s: [wg.Send("work", i) for i in range(30)])
    await builder.with_max_concurrency(3).compile().invoke(wg.VersionedState())
    assert peak == 3


async def test_a_failing_send_task_fails_the_step_with_nothing_merged() -> None:
    async def work(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
        if ctx.input == 2:
            raise ValueError("bad input 2")
        return wg.NodePartial(extra={"done": [ctx.input]})

    builder = wg.GraphBuilder().with_extra_reducer("done", wg.reducers.append)
    builder.add_node("work", work).add_edge("work", wg.END)
    builder.add_conditional_edge(wg.START, lambda s: [wg.Send("work", i) for i in range(4)])
    with pytest.raises(wg.NodeRunError) as raised:
        await builder.compile().invoke(wg.VersionedState())
    assert (raised.value.node, raised.value.step) == ("work", 1)
    assert isinstance(raised.value.__cause__, ValueError)


async def test_ten_thousand_sends_in_one_step() -> None:
    builder = wg.GraphBuilder().with_extra_reducer("items", wg.reducers.append)

    async def item(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
        return wg.NodePartial(extra={"items": [ctx.input]})

    async def total(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
        return wg.NodePartial(extra={"total": sum(snapshot.extra["items"])})

    builder.add_node("item", item).add_node("total", total).add_edge("item", "total")
    builder.add_edge("total", wg.END)
    builder.add_conditional_edge(wg.START, lambda s: [wg.Send("item", i) for i in range(10_000)])
    final = await builder.compile().invoke(wg.VersionedState())
    assert final.extra["items"] == list(range(10_000))
    assert final.extra["total"] == sum(range(10_000))


def test_send_input_must_be_json_and_is_frozen() -> None:
    send = wg.Send("work", {"xs": [1, 2]})
    with pytest.raises(TypeError):
        send.input["xs"].append(3)
    with pytest.raises(TypeError, match=r"input of Send\('work', \.\.\.\) must be JSON"):
        wg.Send("work", {"when": object()})
    with pytest.raises(TypeError, match="node id"):
        wg.Send("", 1)
    with pytest.raises(TypeError, match="must be Send objects"):
        wg.NodePartial().with_sends(["work"])  # type: ignore[list-item]
    assert wg.Send("work") == wg.Send("work", None)
    assert repr(wg.Send("w", [1])) == "Send('w', [1])"


async def test_interrupt_before_a_send_target_pauses_before_its_tasks() -> None:
    async with wg.AppRunner(_square_graph().compile(), wg.CheckpointerType.InMemory) as runner:
        await runner.create_session("s", _numbers(1, 2))
        result = await runner.run_step("s", interrupt_before=["square"])
        assert result.paused is not None
        assert result.paused.nodes == ("square",)
        final = await runner.run_until_complete("s")
    assert final.extra["squares"] == [1, 4]


async def test_an_interrupt_in_a_send_task_is_answered_for_that_task_only() -> None:
    asked: list[Any] = []

    async def review(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
        asked.append(ctx.input)
        verdict = ctx.interrupt({"item": ctx.input}) if ctx.input == "b" else "auto"
        return wg.NodePartial(extra={"verdicts": [f"{ctx.input}={verdict}"]})

    builder = wg.GraphBuilder().with_extra_reducer("verdicts", wg.reducers.append)
    builder.add_node("review", review).add_edge("review", wg.END)
    builder.add_conditional_edge(wg.START, lambda s: [wg.Send("review", x) for x in "abc"])
    async with wg.AppRunner(builder.compile(), wg.CheckpointerType.InMemory) as runner:
        await runner.create_session("s", wg.VersionedState())
        state = await runner.run_until_complete("s")
        info = await runner.session_info("s")
        assert info.interrupt is not None
        assert info.interrupt.value == {"item": "b"}
        assert "verdicts" not in state.extra
        final = await runner.resume("s", "ok")
    assert final.extra["verdicts"] == ["a=auto", "b=ok", "c=auto"]
    # a and c finished before the pause: their saved results are used, not run again.
    assert asked == ["a", "b", "c", "b"]


@settings(max_examples=40, deadline=None)
@given(
    delays=st.lists(st.integers(min_value=0, max_value=4), min_size=1, max_size=12),
    concurrency=st.integers(min_value=1, max_value=6),
)
def test_the_merge_is_a_pure_function_of_the_send_order(
    delays: list[int], concurrency: int
) -> None:
    """Whatever the completion order (random yields) and the concurrency bound, the merged list
    is the Sends' order, and later Sends win on plain keys."""

    async def work(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
        index, delay = ctx.input
        for _ in range(delay):
            await asyncio.sleep(0)
        return wg.NodePartial(extra={"order": [index], "last": index})

    def fan_out(snapshot: wg.StateSnapshot) -> list[wg.Send]:
        return [wg.Send("work", [i, d]) for i, d in enumerate(delays)]

    builder = wg.GraphBuilder().with_extra_reducer("order", wg.reducers.append)
    builder.add_node("work", work).add_edge("work", wg.END)
    builder.add_conditional_edge(wg.START, fan_out)
    app = builder.with_max_concurrency(concurrency).compile()
    final = asyncio.run(app.invoke(wg.VersionedState()))
    assert final.extra["order"] == list(range(len(delays)))
    assert final.extra["last"] == len(delays) - 1


async def test_each_send_task_to_a_subgraph_runs_its_own_child() -> None:
    """A Send task of a subgraph node runs its child in a namespace of its own (``node:index``),
    checkpointed apart, and a question asked inside one of them is answered for that one."""
    calls: list[str] = []

    async def check(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
        calls.append("check")
        # The first call (task 0) asks; the second (task 1) does not; the third is task 0 again,
        # now answered.
        verdict = ctx.interrupt({"check": "task 0"}) if len(calls) in (1, 3) else "auto"
        return wg.NodePartial(extra={"verdict": verdict})

    child_builder = wg.GraphBuilder().add_node("check", check)
    child = child_builder.add_edge(wg.START, "check").add_edge("check", wg.END).compile()
    builder = wg.GraphBuilder().add_node("review", child).add_edge("review", wg.END)
    builder.add_conditional_edge(
        wg.START, lambda s: [wg.Send("review", {"i": i}) for i in range(2)]
    )
    app = builder.with_max_concurrency(1).compile()
    async with wg.AppRunner(app, wg.CheckpointerType.InMemory) as runner:
        await runner.create_session("s", wg.VersionedState())
        await runner.run_until_complete("s")
        info = await runner.session_info("s")
        assert info.interrupt is not None
        assert info.interrupt.namespace == "review:0"
        final = await runner.resume("s", "yes")
        verdicts = {}
        for namespace in ("review:0", "review:1"):
            latest = await runner.checkpointer.load_latest("s", namespace=namespace)
            assert latest is not None
            verdicts[namespace] = latest.state.extra["verdict"]
    assert verdicts == {"review:0": "yes", "review:1": "auto"}
    assert final.extra["verdict"] == "auto"  # task 1's partial merges last
    assert len(calls) == 3  # task 1's finished result was kept, not run again
