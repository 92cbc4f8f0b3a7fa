"""Compile-time validation: every error, all problems at once, and agreement with networkx."""

from __future__ import annotations

from typing import Any

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import weavegraph as wg
from weavegraph.graph import GraphBuilder, GraphDescription, validate

S, E = wg.START, wg.END


def noop(snapshot: Any, ctx: Any) -> None:
    return None


def route(snapshot: Any) -> str:
    return E


def graph(*edges: tuple[str, str], nodes: str = "", **kwargs: Any) -> GraphDescription:
    names = tuple(nodes.split()) if nodes else ()
    return GraphDescription(nodes=names, edges=edges, **kwargs)


def kinds(problems: list[wg.GraphCompileError]) -> list[type[wg.GraphCompileError]]:
    return [type(p) for p in problems]


def compile_error(builder: GraphBuilder) -> wg.GraphCompileError:
    with pytest.raises(wg.GraphCompileError) as info:
        builder.compile()
    return info.value


# --- one error at a time, through the builder ----------------------------------------------------


def test_valid_graph_has_no_problems() -> None:
    assert validate(graph((S, "a"), ("a", "b"), ("b", E), nodes="a b")) == []


def test_missing_entry() -> None:
    err = compile_error(GraphBuilder().add_node("a", noop).add_edge("a", E))
    assert isinstance(err, wg.MissingEntry)
    assert err.code == "weavegraph::graph::missing_entry"
    assert "START" in err.help
    assert isinstance(err, ValueError)


def test_a_router_from_start_is_an_entry() -> None:
    builder = GraphBuilder().add_node("a", noop).add_edge("a", E)
    builder.add_conditional_edge(S, route, targets=["a"])
    assert builder.compile().spec.routers[S][0].targets == ("a",)


def test_unknown_node() -> None:
    err = compile_error(
        GraphBuilder().add_node("a", noop).add_edge(S, "a").add_edge("a", "b").add_edge("a", E)
    )
    assert isinstance(err, wg.UnknownNode)
    assert (err.node, err.nodes, err.code) == ("b", ("b",), "weavegraph::graph::unknown_node")


def test_unknown_nodes_in_joins_and_router_targets_each_reported_once() -> None:
    problems = validate(
        graph(
            (S, "a"),
            ("a", E),
            ("a", "x"),
            nodes="a",
            joins=((("a", "y"), "x"),),
            routers=(("z", ("x", E)),),
        )
    )
    unknown = [p.node for p in problems if isinstance(p, wg.UnknownNode)]
    assert unknown == ["x", "y", "z"]


def test_edge_from_end() -> None:
    err = compile_error(
        GraphBuilder().add_node("a", noop).add_edge(S, "a").add_edge("a", E).add_edge(E, "a")
    )
    assert isinstance(err, wg.EdgeFromEnd)
    assert (err.target, err.code) == ("a", "weavegraph::graph::edge_from_end")


def test_router_and_join_from_end_are_edges_from_end() -> None:
    problems = validate(
        graph((S, "a"), ("a", E), nodes="a", joins=(((E, "a"), "a"),), routers=((E, None),))
    )
    assert kinds(problems).count(wg.EdgeFromEnd) == 2


def test_cycle_detected() -> None:
    builder = GraphBuilder().add_node("a", noop).add_node("b", noop).add_node("c", noop)
    builder.add_edge(S, "a").add_edge("a", "b").add_edge("b", "c").add_edge("c", "a").add_edge(
        "c", E
    )
    err = compile_error(builder)
    assert isinstance(err, wg.CycleDetected)
    assert err.cycle == ("a", "b", "c")
    assert err.nodes == ("a", "b", "c")
    assert "a -> b -> c -> a" in err.message
    assert err.code == "weavegraph::graph::cycle"


def test_self_loop_is_a_cycle_but_a_conditional_loop_is_not() -> None:
    assert kinds(validate(graph((S, "a"), ("a", "a"), ("a", E), nodes="a"))) == [wg.CycleDetected]
    loop = graph((S, "a"), ("a", E), nodes="a", routers=(("a", ("a", E)),))
    assert validate(loop) == []


def test_join_edges_take_part_in_cycles() -> None:
    problems = validate(
        graph((S, "a"), (S, "b"), ("c", "a"), ("c", E), nodes="a b c", joins=((("a", "b"), "c"),))
    )
    (cycle,) = [p for p in problems if isinstance(p, wg.CycleDetected)]
    assert cycle.cycle == ("a", "c")


def test_each_strongly_connected_group_reported_once() -> None:
    edges = [(S, "a"), ("a", "b"), ("b", "a"), ("b", "c"), ("c", "a"), ("d", "e"), ("e", "d")]
    problems = validate(graph(*edges, ("c", E), ("e", E), (S, "d"), nodes="a b c d e"))
    cycles = [p.cycle for p in problems if isinstance(p, wg.CycleDetected)]
    assert cycles == [("a", "b"), ("d", "e")]


def test_unreachable_nodes() -> None:
    builder = GraphBuilder().add_node("a", noop).add_node("z", noop).add_node("y", noop)
    builder.add_edge(S, "a").add_edge("a", E).add_edge("z", E).add_edge("y", "z")
    err = compile_error(builder)
    assert isinstance(err, wg.UnreachableNodes)
    assert err.nodes == ("z", "y")  # in the order the nodes were added
    assert err.code == "weavegraph::graph::unreachable"


def test_no_path_to_end() -> None:
    builder = GraphBuilder().add_node("a", noop).add_node("b", noop).add_node("c", noop)
    builder.add_edge(S, "a").add_edge("a", E).add_edge("a", "c").add_edge("c", "b")
    err = compile_error(builder)
    assert isinstance(err, wg.NoPathToEnd)
    assert err.nodes == ("b", "c")
    assert err.code == "weavegraph::graph::no_path_to_end"


def test_duplicate_edge_and_duplicate_join() -> None:
    builder = GraphBuilder().add_node("a", noop).add_node("b", noop)
    builder.add_edge(S, "a").add_edge(S, "b").add_edge("a", E).add_edge("a", E).add_edge("a", E)
    builder.add_edge(["a", "b"], E).add_edge(["b", "a"], E)
    err = compile_error(builder)
    assert isinstance(err, wg.DuplicateEdge)
    assert (err.source, err.target, err.nodes) == ("a", E, ("a", E))
    assert [(p.source, p.target) for p in err.problems if isinstance(p, wg.DuplicateEdge)] == [
        ("a", E),
        ("b+a", E),
    ]


def test_duplicate_node() -> None:
    builder = GraphBuilder().add_node("a", noop).add_node("a", noop).add_node("a", noop)
    err = compile_error(builder.add_edge(S, "a").add_edge("a", E))
    assert isinstance(err, wg.DuplicateNode)
    assert (err.node, len(err.problems)) == ("a", 1)
    assert err.code == "weavegraph::graph::duplicate_node"


# --- several problems at once --------------------------------------------------------------------


def test_every_problem_is_reported_in_a_fixed_order() -> None:
    builder = GraphBuilder()
    for node_id in ("a", "b", "c", "a", "lonely"):
        builder.add_node(node_id, noop)
    builder.add_edge("a", "b").add_edge("b", "a").add_edge("a", "b").add_edge("c", "ghost")
    builder.add_edge(E, "c")
    err = compile_error(builder)
    assert kinds(err.problems) == [
        wg.MissingEntry,
        wg.DuplicateNode,
        wg.UnknownNode,
        wg.EdgeFromEnd,
        wg.DuplicateEdge,
        wg.CycleDetected,
        wg.UnreachableNodes,
        wg.NoPathToEnd,
    ]
    assert err is err.problems[0]
    assert err.problems[-2].nodes == ("a", "b", "c", "lonely")
    assert err.problems[-1].nodes == ("a", "b", "c", "lonely")
    # the same mistakes in the same order always give the same report
    assert [str(p) for p in compile_error(builder).problems] == [str(p) for p in err.problems]


# --- routers without declared targets ------------------------------------------------------------


def test_undeclared_router_explains_reachability_downstream_of_its_source() -> None:
    # "b" is only reachable through the router of "a", whose targets are unknown: no report.
    ok = graph((S, "a"), ("b", E), nodes="a b", routers=(("a", None),))
    assert validate(ok) == []


def test_undeclared_router_does_not_hide_problems_it_cannot_explain() -> None:
    # The router sits on an unreachable node, so it cannot explain anything reachable from START;
    # and "c" cannot reach END whatever the router returns ("c" has no way out at all).
    description = graph(
        (S, "a"), ("a", E), ("a", "c"), ("r", E), nodes="a c r", routers=(("r", None),)
    )
    problems = validate(description)
    assert [(type(p), p.nodes) for p in problems] == [
        (wg.UnreachableNodes, ("r",)),
        (wg.NoPathToEnd, ("c",)),
    ]


def test_declared_targets_count_as_edges() -> None:
    reachable = graph((S, "a"), ("b", E), nodes="a b", routers=(("a", ("b",)),))
    assert validate(reachable) == []
    wrong_target = graph((S, "a"), ("b", E), nodes="a b", routers=(("a", (E,)),))
    assert kinds(validate(wrong_target)) == [wg.UnreachableNodes]


# --- property: agreement with a networkx oracle ------------------------------------------------

NAMES = [f"n{i}" for i in range(6)]


@st.composite
def random_graphs(draw: st.DrawFn) -> GraphDescription:
    nodes = NAMES[: draw(st.integers(1, len(NAMES)))]
    sources = st.sampled_from([S, *nodes])
    targets = st.sampled_from([*nodes, E])
    edges = draw(st.lists(st.tuples(sources, targets), max_size=12, unique=True))
    join_sources = st.lists(
        st.sampled_from(nodes), min_size=min(2, len(nodes)), max_size=3, unique=True
    )
    joins = draw(st.lists(st.tuples(join_sources.map(tuple), targets), max_size=2))
    declared = st.none() | st.lists(targets, min_size=1, max_size=3, unique=True).map(tuple)
    routers = draw(st.lists(st.tuples(sources, declared), max_size=3))
    frontier_pairs = st.tuples(
        st.sampled_from(nodes), st.lists(targets, min_size=1, max_size=2, unique=True).map(tuple)
    )
    frontier = draw(st.lists(frontier_pairs, max_size=2, unique_by=lambda pair: pair[0]))
    return GraphDescription(
        nodes=tuple(nodes),
        edges=tuple(edges),
        joins=tuple(joins),
        routers=tuple(routers),
        frontier_targets=tuple(frontier),
    )


def oracle(description: GraphDescription) -> dict[str, Any]:
    """What networkx says, with an undeclared router read as an edge to every node and END."""
    nodes = list(description.nodes)
    flow = nx.DiGraph()
    flow.add_nodes_from([S, E, *nodes])
    unconditional = nx.DiGraph()
    unconditional.add_nodes_from(nodes)
    pairs = [*description.edges, *((s, t) for sources, t in description.joins for s in sources)]
    flow.add_edges_from(pairs)
    unconditional.add_edges_from((s, t) for s, t in pairs if s != S and t != E)
    for source, declared in description.routers:
        flow.add_edges_from(
            (source, t) for t in (declared if declared is not None else [*nodes, E])
        )
    for source, frontier_targets in description.frontier_targets:
        flow.add_edges_from((source, t) for t in frontier_targets)
    reachable = nx.descendants(flow, S)
    can_end = nx.ancestors(flow, E)
    components = [
        frozenset(c)
        for c in nx.strongly_connected_components(unconditional)
        if len(c) > 1 or unconditional.has_edge(next(iter(c)), next(iter(c)))
    ]
    return {
        "entry": any(s == S for s, _ in description.edges)
        or any(s == S for s, _ in description.routers),
        "unreachable": [n for n in nodes if n not in reachable],
        "stuck": [n for n in nodes if n not in can_end],
        "components": components,
        "graph": unconditional,
    }


@settings(max_examples=300, deadline=None)
@given(random_graphs())
def test_validation_agrees_with_networkx(description: GraphDescription) -> None:
    expected = oracle(description)
    problems = validate(description)
    by_kind: dict[type[wg.GraphCompileError], list[wg.GraphCompileError]] = {}
    for problem in problems:
        by_kind.setdefault(type(problem), []).append(problem)
    assert (wg.MissingEntry in by_kind) is (not expected["entry"])
    unreachable = by_kind.get(wg.UnreachableNodes, [])
    assert [n for p in unreachable for n in p.nodes] == expected["unreachable"]
    stuck = by_kind.get(wg.NoPathToEnd, [])
    assert [n for p in stuck for n in p.nodes] == expected["stuck"]
    cycles = [p for p in by_kind.get(wg.CycleDetected, []) if isinstance(p, wg.CycleDetected)]
    assert len(cycles) == len(expected["components"])
    found = []
    for cycle in cycles:
        steps = zip(cycle.cycle, (*cycle.cycle[1:], cycle.cycle[0]), strict=True)
        assert all(expected["graph"].has_edge(a, b) for a, b in steps), cycle.cycle
        found.append(next(c for c in expected["components"] if set(cycle.cycle) <= c))
    assert len(set(found)) == len(found)  # one report per strongly connected group
    assert [str(p) for p in validate(description)] == [str(p) for p in problems]


# --- declared frontier targets -------------------------------------------------------------------


def test_declared_frontier_targets_count_as_edges_for_reachability() -> None:
    builder = GraphBuilder().add_node("director", noop, frontier_targets=["chosen", E])
    builder.add_node("chosen", noop).add_edge(S, "director").add_edge("chosen", E)
    spec = builder.compile().spec
    assert dict(spec.frontier_targets) == {"director": ("chosen", E)}


def test_undeclared_frontier_commands_are_invisible_to_validation() -> None:
    builder = GraphBuilder().add_node("director", noop).add_node("chosen", noop)
    builder.add_edge(S, "director").add_edge("director", E).add_edge("chosen", E)
    err = compile_error(builder)
    assert isinstance(err, wg.UnreachableNodes)
    assert err.nodes == ("chosen",)


def test_frontier_targets_are_checked_and_do_not_make_cycles() -> None:
    builder = GraphBuilder().add_node("a", noop, frontier_targets=["a", "ghost"])
    err = compile_error(builder.add_edge(S, "a").add_edge("a", E))
    assert [(type(p), p.nodes) for p in err.problems] == [(wg.UnknownNode, ("ghost",))]
    with pytest.raises(ValueError, match="START"):
        GraphBuilder().add_node("b", noop, frontier_targets=[S])
