"""Graph views: metadata and its order-insensitive hash, Mermaid, DOT and topological order."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

import weavegraph as wg
from weavegraph.graph import GraphBuilder, graph_hash

S, E = wg.START, wg.END


async def noop(snapshot: Any, ctx: Any) -> None:
    return None


def route(snapshot: Any) -> str:
    return E


def pick(snapshot: Any) -> list[str]:
    return ["b"]


def diamond() -> wg.App:
    """START -> a -> (b, c) -> join -> d -> END, with a router on d looping back to a."""
    builder = GraphBuilder()
    for node_id in "abcd":
        builder.add_node(node_id, noop)
    builder.add_edge(S, "a").add_edge("a", "b").add_edge("a", "c").add_edge(["b", "c"], "d")
    builder.add_edge("d", E).add_conditional_edge("d", route, targets=["a", E])
    return builder.compile()


def test_graph_metadata_describes_the_graph() -> None:
    meta = diamond().graph_metadata()
    assert [node["id"] for node in meta["nodes"]] == ["a", "b", "c", "d"]
    assert {"source": "a", "target": "c"} in meta["edges"]
    assert meta["conditional_edges"] == [{"source": "d", "router": "route", "targets": ["a", E]}]
    assert meta["joins"] == [{"sources": ["b", "c"], "target": "d"}]
    assert meta["counts"] == {"nodes": 4, "edges": 4, "conditional_edges": 1, "joins": 1}
    assert len(meta["graph_hash"]) == 64
    json.dumps(meta)  # JSON-ready


def test_graph_hash_is_stable_and_sensitive_to_structure() -> None:
    assert diamond().graph_metadata()["graph_hash"] == diamond().graph_metadata()["graph_hash"]
    base = GraphBuilder().add_node("a", noop).add_node("b", noop).add_edge(S, "a")
    base.add_edge("a", "b").add_edge("b", E)
    other = GraphBuilder().add_node("a", noop).add_node("b", noop).add_edge(S, "a")
    other.add_edge("a", "b").add_edge("b", E).add_edge("a", E)
    declared = GraphBuilder().add_node("a", noop).add_node("b", noop).add_edge(S, "a")
    declared.add_edge("b", E).add_conditional_edge("a", route, targets=["b"])
    undeclared = GraphBuilder().add_node("a", noop).add_node("b", noop).add_edge(S, "a")
    undeclared.add_edge("b", E).add_conditional_edge("a", route)
    hashes = {graph_hash(b.compile().spec) for b in (base, other, declared, undeclared)}
    assert len(hashes) == 4


Op = tuple[str, tuple[Any, ...]]


def operations(permutation: list[int]) -> list[Op]:
    ops: list[Op] = [
        ("node", ("a",)),
        ("node", ("b",)),
        ("node", ("c",)),
        ("node", ("d",)),
        ("edge", (S, "a")),
        ("edge", (S, "b")),
        ("edge", ("a", "c")),
        ("edge", (("a", "b"), "d")),
        ("edge", ("c", E)),
        ("edge", ("d", E)),
        ("router", ("c", None)),
        ("router", ("b", (E, "c"))),
        ("router", ("b", ("d",))),
    ]
    return [ops[i] for i in permutation]


def build(ops: list[Op], *, flip: bool = False) -> GraphBuilder:
    """Apply ``ops``; ``flip`` reverses join sources and router targets (same graph)."""
    builder = GraphBuilder()
    for kind, args in ops:
        if kind == "node":
            builder.add_node(args[0], noop)
        elif kind == "edge":
            join = isinstance(args[0], tuple)
            source = list(reversed(args[0]) if flip else args[0]) if join else args[0]
            builder.add_edge(source, args[1])
        else:
            targets = list(reversed(args[1]) if flip else args[1]) if args[1] else None
            builder.add_conditional_edge(args[0], route, targets=targets)
    return builder


@settings(max_examples=100, deadline=None)
@given(st.permutations(list(range(13))), st.booleans())
def test_graph_hash_ignores_the_order_of_builder_calls(permutation: list[int], flip: bool) -> None:
    reference = build(operations(list(range(13)))).compile().graph_metadata()["graph_hash"]
    shuffled = build(operations(permutation), flip=flip).compile()
    assert shuffled.graph_metadata()["graph_hash"] == reference


def test_mermaid_shows_nodes_edges_joins_and_dashed_conditional_edges() -> None:
    text = diamond().to_mermaid()
    lines = text.splitlines()
    assert lines[0] == "flowchart TD"
    assert '    __start__(["Start"])' in lines
    assert '    __end__(["End"])' in lines
    assert '    n0["a"]' in lines
    assert "    __start__ --> n0" in lines
    assert "    n0 --> n1" in lines
    assert '    join0(("&"))' in lines
    assert "    n1 --> join0" in lines
    assert "    n2 --> join0" in lines
    assert "    join0 --> n3" in lines
    assert '    n3 -.->|"route"| n0' in lines
    assert '    n3 -.->|"route"| __end__' in lines


def test_mermaid_escapes_labels_and_marks_undeclared_routers() -> None:
    builder = GraphBuilder().add_node('say "hi" <b>', noop).add_node("end", noop)
    builder.add_edge(S, 'say "hi" <b>').add_edge("end", E).add_conditional_edge(
        'say "hi" <b>', pick
    )
    text = builder.compile().to_mermaid()
    assert '    n0["say #quot;hi#quot; #lt;b#gt;"]' in text
    assert '    n1["end"]' in text  # "end" is a Mermaid keyword: ids are generated, labels quoted
    assert '    route0{"?"}' in text
    assert '    n0 -.->|"pick"| route0' in text


def test_dot_shows_nodes_edges_joins_and_dashed_conditional_edges() -> None:
    lines = diamond().to_dot().splitlines()
    assert lines[0] == "digraph weavegraph {"
    assert lines[-1] == "}"
    assert '    "Start" [shape=oval];' in lines
    assert '    "Start" -> "a";' in lines
    assert '    "__join0__" [shape=point, xlabel="join"];' in lines
    assert '    "b" -> "__join0__";' in lines
    assert '    "__join0__" -> "d";' in lines
    assert '    "d" -> "a" [style=dashed, label="route"];' in lines
    assert '    "d" -> "End" [style=dashed, label="route"];' in lines


def test_dot_escapes_quotes_and_backslashes() -> None:
    builder = (
        GraphBuilder().add_node('a "q" \\', noop).add_edge(S, 'a "q" \\').add_edge('a "q" \\', E)
    )
    assert '    "a \\"q\\" \\\\";' in builder.compile().to_dot().splitlines()


def test_topological_sort_follows_edges_and_joins_with_insertion_order_ties() -> None:
    assert diamond().topological_sort() == ["a", "b", "c", "d"]
    builder = GraphBuilder()
    for node_id in ("z", "y", "x", "w"):
        builder.add_node(node_id, noop)
    builder.add_edge(S, "w").add_edge("w", "x").add_edge(S, "y").add_edge(["x", "y"], "z")
    builder.add_edge("z", E).add_conditional_edge("z", route, targets=["w"])  # ignored: conditional
    assert builder.compile().topological_sort() == ["y", "w", "x", "z"]


def test_frontier_targets_are_drawn_and_hashed() -> None:
    def graph(frontier: list[str] | None) -> wg.App:
        builder = GraphBuilder().add_node("a", noop, frontier_targets=frontier)
        return (
            builder.add_node("b", noop)
            .add_edge(S, "a")
            .add_edge("a", "b")
            .add_edge("b", E)
            .compile()
        )

    app = graph(["b", E])
    assert '    n0 -.->|"frontier"| n1' in app.to_mermaid()
    assert '    "a" -> "End" [style=dotted, label="frontier"];' in app.to_dot()
    assert app.graph_metadata()["frontier_targets"] == [{"source": "a", "targets": ["b", E]}]
    hashes = {
        g.graph_metadata()["graph_hash"] for g in (app, graph([E, "b"]), graph(None), graph(["b"]))
    }
    assert len(hashes) == 3  # target order does not matter; the declared set does


def _line(builder: GraphBuilder | None = None) -> GraphBuilder:
    builder = builder or GraphBuilder()
    return builder.add_node("a", noop).add_edge(S, "a").add_edge("a", E)


def keep_last(current: Any, update: Any) -> Any:
    return update


def test_graph_hash_tells_reducers_apart() -> None:
    plain = _line()
    channel = _line().with_reducer(wg.ChannelType.MESSAGES, keep_last)
    keyed_append = _line().with_extra_reducer("items", wg.reducers.append)
    keyed_sum = _line().with_extra_reducer("items", wg.reducers.sum_numbers)
    hashes = [graph_hash(b.compile().spec) for b in (plain, channel, keyed_append, keyed_sum)]
    assert len(set(hashes)) == 4
    # the same reducers, added in another order, hash the same; defaults leave the hash unchanged
    again = (
        _line().with_extra_reducer("x", keep_last).with_extra_reducer("items", wg.reducers.append)
    )
    other = (
        _line().with_extra_reducer("items", wg.reducers.append).with_extra_reducer("x", keep_last)
    )
    assert graph_hash(again.compile().spec) == graph_hash(other.compile().spec)
    defaults = _line().with_reducer_registry(wg.ReducerRegistry())
    assert graph_hash(defaults.compile().spec) == hashes[0]


def test_graph_metadata_lists_reducers_by_qualified_name() -> None:
    builder = _line().with_extra_reducer("items", wg.reducers.append)
    meta = builder.with_reducer(wg.ChannelType.EXTRA, keep_last).compile().graph_metadata()
    assert meta["reducers"] == {
        "messages": ["weavegraph.reducers.add_messages"],
        "extra": ["weavegraph.reducers.map_merge", f"{__name__}.keep_last"],
        "errors": ["weavegraph.reducers.add_errors"],
    }
    assert meta["extra_reducers"] == {"items": "weavegraph.reducers.append"}
    assert meta["state_schema"] is None


def test_topological_sort_breaks_ties_by_the_order_nodes_were_added() -> None:
    builder = GraphBuilder()
    for node_id in "zyx":
        builder.add_node(node_id, noop).add_edge(S, node_id).add_edge(node_id, E)
    assert builder.compile().topological_sort() == ["z", "y", "x"]


def _nested() -> wg.App:
    async def step(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> None:
        return None

    inner = wg.GraphBuilder().add_node("search", step)
    inner = inner.add_edge(wg.START, "search").add_edge("search", wg.END).compile()
    parent = wg.GraphBuilder().add_node("plan", step).add_node("research", inner)
    parent.add_edge(wg.START, "plan").add_edge("plan", "research").add_edge("research", wg.END)
    return parent.compile()


def test_mermaid_draws_a_subgraph_inside_its_parent() -> None:
    lines = _nested().to_mermaid().splitlines()
    assert lines == [
        "flowchart TD",
        '    __start__(["Start"])',
        '    n0["plan"]',
        '    subgraph n1["research"]',
        '        n1___start__(["Start"])',
        '        n1_n0["search"]',
        '        n1___end__(["End"])',
        "        n1___start__ --> n1_n0",
        "        n1_n0 --> n1___end__",
        "    end",
        '    __end__(["End"])',
        "    __start__ --> n0",
        "    n0 --> n1",
        "    n1 --> __end__",
    ]


def test_dot_draws_a_subgraph_as_a_cluster() -> None:
    text = _nested().to_dot()
    assert '    subgraph "cluster_research" {\n        label="research";\n' in text
    assert '        "research/search";' in text
    assert '        "research/Start" -> "research/search";' in text
    # Edges to the subgraph enter at its START and leave from its END.
    assert '    "plan" -> "research/Start";' in text
    assert '    "research/End" -> "End";' in text


def test_metadata_and_hash_include_the_child() -> None:
    app = _nested()
    research = next(n for n in app.graph_metadata()["nodes"] if n["id"] == "research")
    assert [n["id"] for n in research["subgraph"]["nodes"]] == ["search"]
    plain = (
        wg.GraphBuilder()
        .add_node("plan", lambda s, c: None)
        .add_node("research", lambda s, c: None)
    )
    plain.add_edge(wg.START, "plan").add_edge("plan", "research").add_edge("research", wg.END)
    assert plain.compile().graph_metadata()["graph_hash"] != app.graph_metadata()["graph_hash"]
