"""The pure superstep planner, tested without an event loop."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import weavegraph as wg
from weavegraph import reducers
from weavegraph.graph.spec import GraphSpec
from weavegraph.runtime.barrier import freeze_partial, merge_barrier
from weavegraph.runtime.plan import (
    Cursor,
    Next,
    StepPlan,
    advance,
    initial_cursor,
    next_frontier,
    normalize_route,
    plan_step,
    routers_to_call,
)


async def _noop(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> None:
    return None


def _route_end(snapshot: wg.StateSnapshot) -> str:
    return wg.END


def _builder(*nodes: str) -> wg.GraphBuilder:
    builder = wg.GraphBuilder()
    for node in nodes:
        builder.add_node(node, _noop)
    return builder


def _single() -> wg.GraphBuilder:
    return _builder("a").add_edge(wg.START, "a").add_edge("a", wg.END)


def _chain_spec() -> GraphSpec:
    return (
        _builder("a", "b", "c")
        .add_edge(wg.START, "a")
        .add_edge("a", "b")
        .add_edge("b", "c")
        .add_edge("c", wg.END)
        .build_spec()
    )


def _partial(**extra: Any) -> wg.NodePartial:
    return wg.NodePartial(extra=extra)


# --- gating -------------------------------------------------------------------------------------


def test_first_run_of_a_node_is_never_gated() -> None:
    state = wg.VersionedState()
    plan = plan_step(Cursor(frontier=("a", "b")), state)
    assert (plan.step, plan.run, plan.skipped, plan.at) == (1, ("a", "b"), (), (0, 1))


def test_node_that_saw_the_current_versions_is_skipped() -> None:
    state = wg.VersionedState()
    cursor = Cursor(step=3, frontier=("a", "b"), versions_seen={"a": dict(state.versions)})
    plan = plan_step(cursor, state)
    assert (plan.step, plan.run, plan.skipped, plan.at) == (4, ("b",), ("a",), (1,))


def test_node_runs_again_once_any_channel_version_moved() -> None:
    state = wg.VersionedState()
    seen = dict(state.versions)
    newer = merge_barrier(_chain_spec(), state, 1, [("x", wg.NodePartial(errors=()))])
    assert newer.updated_channels == ()  # an empty partial changes nothing
    bumped = merge_barrier(
        _chain_spec(), state, 1, [("x", wg.NodePartial(errors=(wg.ErrorEvent(message="e"),)))]
    ).state
    cursor = Cursor(frontier=("a",), versions_seen={"a": seen})
    assert plan_step(cursor, bumped).run == ("a",)


# --- barrier -----------------------------------------------------------------------------------


def test_partials_merge_in_the_given_order_later_wins() -> None:
    spec = _chain_spec()
    state = wg.VersionedState()
    first = merge_barrier(spec, state, 1, [("a", _partial(k=1)), ("b", _partial(k=2))])
    second = merge_barrier(spec, state, 1, [("b", _partial(k=2)), ("a", _partial(k=1))])
    assert first.state.extra == {"k": 2}
    assert second.state.extra == {"k": 1}


def test_versions_move_by_one_only_for_changed_channels() -> None:
    spec = _chain_spec()
    state = wg.VersionedState.builder().with_extra("k", 1).build()
    same = merge_barrier(spec, state, 1, [("a", _partial(k=1))])
    assert same.updated_channels == ()
    assert same.state is state
    moved = merge_barrier(
        spec,
        state,
        1,
        [("a", _partial(k=2)), ("b", wg.NodePartial(messages=(wg.Message.user("hi"),)))],
    )
    assert moved.updated_channels == ("messages", "extra")
    assert dict(moved.state.versions) == {"messages": 2, "extra": 2, "errors": 1}


def test_none_deletes_an_extra_key() -> None:
    spec = _chain_spec()
    state = wg.VersionedState.builder().with_extra("k", 1).with_extra("j", 2).build()
    merged = merge_barrier(spec, state, 1, [("a", wg.NodePartial().clear_extra_keys(["k"]))])
    assert merged.state.extra == {"j": 2}
    assert merged.updated_channels == ("extra",)


def test_per_key_reducer_combines_concurrent_writes_in_frontier_order() -> None:
    spec = _single().with_extra_reducer("results", reducers.append).build_spec()
    state = wg.VersionedState.builder().with_extra("results", [0]).build()
    merged = merge_barrier(
        spec,
        state,
        1,
        [("a", _partial(results=[1], other=1)), ("b", _partial(results=[2], other=2))],
    )
    assert merged.state.extra == {"results": [0, 1, 2], "other": 2}


def test_channel_reducers_apply_once_per_partial_in_registration_order() -> None:
    calls: list[tuple[str, int]] = []

    def first(current: Any, update: Any) -> Any:
        calls.append(("first", len(update)))
        return reducers.add_messages(current, update)

    def second(current: Any, update: Any) -> Any:
        calls.append(("second", len(update)))
        return current

    registry = wg.ReducerRegistry.empty().with_reducer("messages", first)
    spec = _single().with_reducer_registry(registry.with_reducer("messages", second))
    merged = merge_barrier(
        spec.build_spec(),
        wg.VersionedState(),
        1,
        [
            ("a", wg.NodePartial(messages=(wg.Message.user("1"),))),
            ("b", wg.NodePartial(messages=(wg.Message.user("2"), wg.Message.user("3")))),
        ],
    )
    assert calls == [("first", 1), ("second", 1), ("first", 2), ("second", 2)]
    assert [m.content for m in merged.state.messages] == ["1", "2", "3"]


def test_errors_are_appended_in_frontier_order_with_node_and_step_filled_in() -> None:
    spec = _chain_spec()
    merged = merge_barrier(
        spec,
        wg.VersionedState(),
        7,
        [
            ("b", wg.NodePartial(errors=(wg.ErrorEvent(message="from b"),))),
            ("a", wg.NodePartial(errors=(wg.ErrorEvent(message="from a", node_id="x", step=1),))),
        ],
    )
    assert [(e.message, e.node_id, e.step) for e in merged.state.errors] == [
        ("from b", "b", 7),
        ("from a", "x", 1),
    ]
    assert merged.updated_channels == ("errors",)


def test_non_json_extra_names_the_key_and_the_node() -> None:
    with pytest.raises(wg.NonJsonValue) as raised:
        freeze_partial("writer", _partial(good=1, bad={1, 2}))
    assert raised.value.key == "bad"
    assert raised.value.node == "writer"
    assert "'bad'" in str(raised.value)
    assert "'writer'" in str(raised.value)


@pytest.mark.parametrize(
    ("partial", "problem"),
    [
        (wg.NodePartial(errors=["oops"]), "errors must be ErrorEvent objects, got str"),  # type: ignore[arg-type]
        (wg.NodePartial(extra=[1, 2]), "extra must be a mapping of str keys .* got list"),  # type: ignore[arg-type]
        (wg.NodePartial(messages=[{"role": "user"}]), "messages must be Message objects, got dict"),  # type: ignore[list-item]
    ],
)
def test_a_wrongly_typed_partial_is_a_state_error_naming_the_problem(
    partial: wg.NodePartial, problem: str
) -> None:
    with pytest.raises(wg.StateError, match=problem):
        freeze_partial("writer", partial)


def test_a_non_string_extra_key_is_named() -> None:
    with pytest.raises(wg.NonJsonValue, match=r"key 1 is not a string$"):
        freeze_partial("writer", wg.NodePartial(extra={1: "x"}))  # type: ignore[dict-item]


def test_merged_values_are_frozen() -> None:
    merged = merge_barrier(_chain_spec(), wg.VersionedState(), 1, [("a", _partial(k=[1, 2]))])
    with pytest.raises(TypeError):
        merged.state.extra["k"].append(3)


# --- next frontier -----------------------------------------------------------------------------


def test_edges_then_routes_then_append_per_node_deduplicated_end_dropped() -> None:
    spec = (
        _builder("a", "b", "c", "d", "e")
        .add_edge(wg.START, "a")
        .add_edge(wg.START, "b")
        .add_edge("a", "c")
        .add_conditional_edge("a", _route_end)
        .add_edge("b", "c")
        .add_edge("b", "e")
        .add_edge("c", wg.END)
        .add_edge("d", wg.END)
        .add_edge("e", wg.END)
        .build_spec()
    )
    frontier, _, _ = next_frontier(
        spec,
        1,
        [("a", wg.NodePartial().with_frontier_append(["d"])), ("b", None)],
        {"a": ("e", wg.END)},
        {},
    )
    assert frontier == ("c", "e", "d")


def test_replace_command_skips_edges_and_routers() -> None:
    spec = (
        _builder("a", "b", "c")
        .add_edge(wg.START, "a")
        .add_edge("a", "b")
        .add_conditional_edge("a", _route_end)
        .add_edge("b", wg.END)
        .add_edge("c", wg.END)
        .build_spec()
    )
    tasks = [("a", wg.NodePartial().with_frontier_replace(["c"]))]
    assert routers_to_call(spec, tasks) == []
    assert routers_to_call(spec, [("a", None)]) == list(spec.routers["a"])
    assert next_frontier(spec, 1, tasks, {}, {}).frontier == ("c",)


@pytest.mark.parametrize(
    ("partial", "routes"),
    [
        (wg.NodePartial().with_frontier_replace(["ghost"]), {}),
        (wg.NodePartial().with_frontier_append(["ghost"]), {}),
        (None, {"a": ("ghost",)}),
        (None, {"a": (wg.START,)}),
    ],
)
def test_unknown_commanded_or_routed_id_is_a_routing_error(
    partial: wg.NodePartial | None, routes: dict[str, tuple[str, ...]]
) -> None:
    with pytest.raises(wg.RoutingError) as raised:
        next_frontier(_chain_spec(), 4, [("a", partial)], routes, {})
    assert raised.value.node == "a"
    assert raised.value.step == 4


def test_route_results_are_normalized_and_checked() -> None:
    assert normalize_route("a", 1, "b") == ("b",)
    assert normalize_route("a", 1, ["b", "c"]) == ("b", "c")
    with pytest.raises(wg.RoutingError):
        normalize_route("a", 1, 3)
    with pytest.raises(wg.RoutingError):
        normalize_route("a", 1, ["b", None])


def test_join_fires_once_when_all_sources_completed_since_target_ran() -> None:
    spec = (
        _builder("a", "b1", "b2", "c")
        .add_edge(wg.START, "a")
        .add_edge(wg.START, "b1")
        .add_edge("b1", "b2")
        .add_edge(["a", "b2"], "c")
        .add_edge("c", wg.END)
        .build_spec()
    )
    cursor = initial_cursor(spec)
    assert cursor.frontier == ("a", "b1")
    frontier, _, progress = next_frontier(
        spec, 1, [("a", None), ("b1", None)], {}, cursor.join_progress
    )
    assert frontier == ("b2",)
    frontier, _, progress = next_frontier(spec, 2, [("b2", None)], {}, progress)
    assert frontier == ("c",)
    assert progress == {}
    frontier, _, progress = next_frontier(spec, 3, [("c", None)], {}, progress)
    assert frontier == ()


def test_initial_cursor_uses_start_edges_then_start_routes() -> None:
    spec = (
        _builder("a", "b")
        .add_edge(wg.START, "a")
        .add_conditional_edge(wg.START, _route_end, targets=["b"])
        .add_edge("a", wg.END)
        .add_edge("b", wg.END)
        .build_spec()
    )
    assert initial_cursor(spec, ["b", "a"]).frontier == ("a", "b")


def test_advance_records_versions_seen_and_clears_resume_values() -> None:
    plan = StepPlan(2, ("a",), ("b",))
    cursor = Cursor(step=1, frontier=("a", "b"), resume={"a": "yes", "z": 1})
    versions = dict(wg.VersionedState().versions)
    after = advance(cursor, plan, versions, Next(("c",), (), {"k": ("a",)}), next_seq=9)
    assert after.step == 2
    assert after.frontier == ("c",)
    assert after.versions_seen == {"a": versions}
    assert after.resume == {"z": 1}
    assert after.next_seq == 9


def test_cursor_json_round_trip() -> None:
    cursor = Cursor(
        step=5,
        frontier=("a", "b"),
        versions_seen={"a": {"messages": 2, "extra": 3, "errors": 1}},
        join_progress={"a+b->c": ("a",)},
        next_seq=17,
        interrupt={"node": "a", "value": {"question": "ok?"}},
        resume={"b": [1, 2]},
    )
    assert Cursor.from_json_value(cursor.to_json_value()) == cursor
    with pytest.raises(wg.StateError):
        Cursor.from_json_value({"versions_seen": {"a": ["x"]}})


node_ids = st.sampled_from(["a", "b", "c", wg.END])


@settings(max_examples=100, deadline=None)
@given(
    ran=st.lists(st.sampled_from(["a", "b", "c"]), max_size=3, unique=True),
    routes=st.dictionaries(st.sampled_from(["a", "b", "c"]), st.lists(node_ids, max_size=4)),
    appended=st.dictionaries(st.sampled_from(["a", "b", "c"]), st.lists(node_ids, max_size=3)),
)
def test_next_frontier_is_deduplicated_known_and_deterministic(
    ran: list[str], routes: dict[str, list[str]], appended: dict[str, list[str]]
) -> None:
    spec = _chain_spec()
    tasks = [
        (node, wg.NodePartial().with_frontier_append(appended[node]) if node in appended else None)
        for node in ran
    ]
    frontier = next_frontier(spec, 1, tasks, routes, {}).frontier
    again = next_frontier(spec, 1, tasks, routes, {}).frontier
    assert frontier == again
    assert len(set(frontier)) == len(frontier)
    assert wg.END not in frontier
    assert set(frontier) <= set(spec.nodes)
    expected = {t for n in ran for t in (*spec.edges.get(n, ()), *routes.get(n, ()))}
    expected |= {t for n in ran for t in appended.get(n, ())}
    assert set(frontier) == expected - {wg.END}


def test_advance_carries_the_versions_seen_json_consistently() -> None:
    """advance() updates the cached JSON of versions_seen incrementally: it must always equal
    what a fresh encoding of the same cursor gives."""
    cursor = Cursor(frontier=("a",), versions_seen={"z": {"messages": 1, "extra": 1, "errors": 1}})
    cursor.to_json_value()  # primes the cache the next cursors carry
    for step, ran in enumerate([("a",), ("b", "c"), (), ("a", "z")], start=1):
        versions = {"messages": step, "extra": step * 2, "errors": 1}
        cursor = advance(
            cursor, StepPlan(step, ran, ()), versions, Next(("a",), (), {}), next_seq=step
        )
        fresh = replace(cursor)  # replace() drops the carried cache
        assert cursor.to_json_value() == fresh.to_json_value()
    assert cursor.to_json_value()["versions_seen"] == {
        "z": [4, 8, 1],
        "a": [4, 8, 1],
        "b": [2, 4, 1],
        "c": [2, 4, 1],
    }
