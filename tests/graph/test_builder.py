"""GraphBuilder: node normalization, edges, joins, routers, options and compile()."""

from __future__ import annotations

import functools
from typing import Any

import pytest

import weavegraph as wg
from weavegraph.graph import GraphBuilder, GraphSpec, JoinSpec
from weavegraph.reducers import append, sum_numbers


async def async_node(snapshot: Any, ctx: Any) -> None:
    return None


def sync_node(snapshot: Any, ctx: Any) -> None:
    return None


class AsyncRunNode:
    async def run(self, snapshot: Any, ctx: Any) -> None:
        return None


class SyncRunNode:
    def run(self, snapshot: Any, ctx: Any) -> None:
        return None


class AsyncCallable:
    async def __call__(self, snapshot: Any, ctx: Any) -> None:
        return None


async def async_with_arg(snapshot: Any, ctx: Any, *, label: str) -> None:
    return None


def route_end(snapshot: Any) -> str:
    return wg.END


async def async_route(snapshot: Any) -> list[str]:
    return [wg.END]


def chain(*ids: str) -> GraphBuilder:
    """START -> ids... -> END, every node async."""
    builder = GraphBuilder()
    for node_id in ids:
        builder.add_node(node_id, async_node)
    for src, dst in zip((wg.START, *ids), (*ids, wg.END), strict=True):
        builder.add_edge(src, dst)
    return builder


def spec_of(builder: GraphBuilder) -> GraphSpec:
    return builder.compile().spec


# --- nodes -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("node", "is_async"),
    [
        (async_node, True),
        (sync_node, False),
        (AsyncRunNode(), True),
        (SyncRunNode(), False),
        (AsyncCallable(), True),
        (functools.partial(async_with_arg, label="x"), True),
        (functools.partial(functools.partial(async_with_arg), label="x"), True),
        (functools.partial(sync_node), False),
        (lambda snapshot, ctx: None, False),
    ],
)
def test_add_node_detects_async_for_every_node_shape(node: Any, is_async: bool) -> None:
    spec = spec_of(GraphBuilder().add_node("n", node).add_edge(wg.START, "n").add_edge("n", wg.END))
    assert spec.nodes["n"].is_async is is_async
    assert spec.nodes["n"].id == "n"


def test_object_nodes_are_called_through_their_bound_run_method() -> None:
    obj = SyncRunNode()
    spec = spec_of(GraphBuilder().add_node("n", obj).add_edge(wg.START, "n").add_edge("n", wg.END))
    assert spec.nodes["n"].call == obj.run


def test_add_node_keeps_timeout_and_retry() -> None:
    policy = wg.RetryPolicy(max_attempts=2)
    builder = chain("a").add_node("b", sync_node, timeout=1.5, retry=policy).add_edge("a", "b")
    spec = spec_of(builder.add_edge("b", wg.END))
    assert (spec.nodes["b"].timeout, spec.nodes["b"].retry) == (1.5, policy)
    assert (spec.nodes["a"].timeout, spec.nodes["a"].retry) == (None, None)


@pytest.mark.parametrize("reserved", [wg.START, wg.END, wg.NodeKind.START, wg.NodeKind.END])
def test_reserved_ids_are_rejected_at_once(reserved: str) -> None:
    with pytest.raises(ValueError, match="reserved"):
        GraphBuilder().add_node(reserved, async_node)


def test_bad_ids_and_nodes_are_rejected_at_once() -> None:
    builder = GraphBuilder()
    with pytest.raises(TypeError, match="string"):
        builder.add_node(3, async_node)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="empty"):
        builder.add_node("", async_node)
    with pytest.raises(TypeError, match="run method"):
        builder.add_node("x", 42)  # pyright: ignore[reportArgumentType]
    with pytest.raises(TypeError, match="instance"):
        builder.add_node("x", AsyncRunNode)  # pyright: ignore[reportArgumentType]
    for timeout in (0, -1, float("nan"), "5", True):
        with pytest.raises(
            ValueError, match=f"timeout of node 'x' must be a positive number, got {timeout!r}"
        ):
            builder.add_node("x", async_node, timeout=timeout)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="RetryPolicy"):
        builder.add_node("x", async_node, retry=3)  # type: ignore[arg-type]


def test_node_kind_custom_ids_are_plain_strings() -> None:
    spec = spec_of(chain(wg.NodeKind.custom("worker")))
    assert list(spec.nodes) == ["worker"]


def test_every_method_is_fluent() -> None:
    builder = GraphBuilder()
    results = [
        builder.add_node("a", async_node),
        builder.add_edge(wg.START, "a"),
        builder.add_conditional_edge("a", route_end, targets=[wg.END]),
        builder.with_reducer(wg.ChannelType.EXTRA, wg.reducers.map_merge),
        builder.with_extra_reducer("k", append),
        builder.with_reducer_registry(wg.ReducerRegistry()),
        builder.with_max_concurrency(2),
        builder.with_max_steps(5),
    ]
    assert all(result is builder for result in results)


# --- edges, joins, routers ---------------------------------------------------------------------


def test_edges_keep_insertion_order_per_source() -> None:
    builder = chain("a").add_node("b", async_node).add_node("c", async_node)
    builder.add_edge("a", "c").add_edge("a", "b").add_edge("b", wg.END).add_edge("c", wg.END)
    spec = spec_of(builder)
    assert spec.edges["a"] == (wg.END, "c", "b")
    assert spec.edges[wg.START] == ("a",)


def test_list_source_makes_a_join_and_single_source_list_a_plain_edge() -> None:
    builder = chain("a").add_node("b", async_node).add_node("c", async_node)
    builder.add_edge(wg.START, "b").add_edge(["a", "b", "a"], "c").add_edge(("c",), wg.END)
    builder.add_edge("b", wg.END)
    spec = spec_of(builder)
    assert spec.joins == (JoinSpec(("a", "b"), "c"),)
    assert spec.joins_from("b") == spec.joins
    assert spec.edges["c"] == (wg.END,)


def test_edge_misuse_is_rejected_at_once() -> None:
    builder = GraphBuilder()
    with pytest.raises(ValueError, match="START"):
        builder.add_edge("a", wg.START)
    with pytest.raises(ValueError, match="at least one"):
        builder.add_edge([], "a")
    with pytest.raises(ValueError, match="START"):
        builder.add_edge([wg.START, "a"], "b")
    with pytest.raises(TypeError):
        builder.add_edge("a", None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="callable"):
        builder.add_conditional_edge("a", "not a router")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="START"):
        builder.add_conditional_edge("a", route_end, targets=[wg.START])


def test_conditional_edges_record_router_shape() -> None:
    builder = chain("a").add_node("b", async_node).add_edge("b", wg.END)
    builder.add_conditional_edge("a", route_end, targets=["b", wg.END, "b"])
    builder.add_conditional_edge("a", async_route)
    builder.add_conditional_edge(wg.START, route_end, targets="b")
    spec = spec_of(builder)
    first, second = spec.routers["a"]
    assert (first.source, first.is_async, first.targets, first.name) == (
        "a",
        False,
        ("b", wg.END),
        "route_end",
    )
    assert (second.is_async, second.targets, second.name) == (True, None, "async_route")
    assert spec.routers[wg.START][0].targets == ("b",)


# --- options -----------------------------------------------------------------------------------


def test_reducers_append_in_registration_order_and_registry_replaces() -> None:
    spec = spec_of(
        chain("a").with_reducer(wg.ChannelType.EXTRA, sum_numbers).with_reducer("extra", append)
    )
    assert spec.reducers.for_channel(wg.ChannelType.EXTRA)[-2:] == (sum_numbers, append)
    registry = wg.ReducerRegistry.empty()
    replaced = spec_of(chain("a").with_reducer("extra", append).with_reducer_registry(registry))
    assert replaced.reducers is registry


def test_extra_reducers_are_kept_per_key() -> None:
    spec = spec_of(
        chain("a").with_extra_reducer("results", append).with_extra_reducer("n", sum_numbers)
    )
    assert dict(spec.extra_reducers) == {"results": append, "n": sum_numbers}
    with pytest.raises(ValueError, match="key"):
        GraphBuilder().with_extra_reducer("", append)
    with pytest.raises(TypeError, match="ReducerRegistry"):
        GraphBuilder().with_reducer_registry({})  # type: ignore[arg-type]


def test_limits_have_defaults_and_are_validated() -> None:
    import os

    spec = spec_of(chain("a"))
    assert spec.max_steps == 1000
    assert spec.max_concurrency == (os.cpu_count() or 1)
    spec = spec_of(chain("a").with_max_concurrency(3).with_max_steps(7))
    assert (spec.max_concurrency, spec.max_steps) == (3, 7)
    for bad in (0, -1):
        with pytest.raises(ValueError, match=">= 1"):
            GraphBuilder().with_max_concurrency(bad)
        with pytest.raises(ValueError, match=">= 1"):
            GraphBuilder().with_max_steps(bad)
    with pytest.raises(TypeError):
        GraphBuilder().with_max_steps(True)
    with pytest.raises(TypeError):
        GraphBuilder().with_max_concurrency(1.5)  # type: ignore[arg-type]


# --- compile -----------------------------------------------------------------------------------


def test_compile_returns_an_app_over_a_frozen_spec() -> None:
    builder = chain("a", "b")
    app = builder.compile()
    assert isinstance(app, wg.App)
    builder.add_node("late", async_node)  # the builder stays mutable; the App does not change
    assert list(app.spec.nodes) == ["a", "b"]
    with pytest.raises(TypeError):
        app.spec.edges["a"] = ("b",)  # type: ignore[index]


def test_compile_raises_first_problem_with_every_problem_attached() -> None:
    builder = chain("a").add_node("a", sync_node).add_edge("a", "ghost").add_edge("a", wg.END)
    with pytest.raises(wg.GraphCompileError) as info:
        builder.compile()
    err = info.value
    assert isinstance(err, wg.DuplicateNode)
    assert [type(p) for p in err.problems] == [wg.DuplicateNode, wg.UnknownNode, wg.DuplicateEdge]
    assert err.problems[0] is err
