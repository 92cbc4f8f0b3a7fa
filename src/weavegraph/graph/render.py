"""Pure views of a compiled graph: metadata with a stable hash, Mermaid, Graphviz DOT, topo order.

``App`` delegates to these functions; they read a ``GraphSpec`` and never touch node functions.
"""

from __future__ import annotations

import functools
import hashlib
import heapq
from collections.abc import Iterator
from typing import Any, cast

import orjson

from ..reducers import ReducerRegistry
from ..state import ChannelType
from ..types import END, START
from .spec import GraphSpec, NodeSpec

__all__ = ["graph_hash", "graph_metadata", "to_dot", "to_mermaid", "topological_sort"]


def _canonical(spec: GraphSpec) -> dict[str, Any]:
    """The graph's structure with every list sorted, so the order of builder calls does not matter."""
    canonical: dict[str, Any] = {
        "nodes": sorted(spec.nodes),
        "edges": sorted([src, dst] for src, targets in spec.edges.items() for dst in targets),
        "conditional": sorted(
            (
                [src, sorted(r.targets) if r.targets is not None else None]
                for src, routers in spec.routers.items()
                for r in routers
            ),
            key=_json_key,  # None and lists do not compare, their JSON spellings do
        ),
        "joins": sorted([sorted(j.sources), j.target] for j in spec.joins),
    }
    if spec.frontier_targets:  # only when used, so older graphs keep their hash
        canonical["frontier"] = sorted([src, sorted(t)] for src, t in spec.frontier_targets.items())
    channel_reducers = _channel_reducers(spec)
    if channel_reducers != _DEFAULT_CHANNEL_REDUCERS:  # likewise: only when not the defaults
        canonical["reducers"] = channel_reducers
    if spec.extra_reducers:
        canonical["extra_reducers"] = _extra_reducers(spec)
    subgraphs = {n.id: _canonical(n.subgraph) for n in spec.nodes.values() if n.subgraph}
    if subgraphs:  # likewise: only graphs with subgraphs hash their children
        canonical["subgraphs"] = subgraphs
    return canonical


def reducer_name(fn: object) -> str:
    """A reducer's qualified name (``module.qualname``); for a partial or a callable object,
    that of its function or class."""
    while isinstance(fn, functools.partial):
        fn = cast("functools.partial[Any]", fn).func
    target: object = fn if hasattr(fn, "__qualname__") else type(fn)
    module = getattr(target, "__module__", None) or "?"
    return f"{module}.{getattr(target, '__qualname__', repr(target))}"


def _channel_reducers(spec: GraphSpec) -> dict[str, list[str]]:
    """Each channel's reducers by qualified name, in the order they run."""
    return {
        str(channel): [reducer_name(fn) for fn in spec.reducers.for_channel(channel)]
        for channel in ChannelType
    }


def _extra_reducers(spec: GraphSpec) -> dict[str, str]:
    return {key: reducer_name(fn) for key, fn in sorted(spec.extra_reducers.items())}


_DEFAULT_CHANNEL_REDUCERS = {
    str(channel): [reducer_name(fn) for fn in fns]
    for channel, fns in ReducerRegistry().channels.items()
}


def _json_key(item: Any) -> bytes:
    return orjson.dumps(item)


def graph_hash(spec: GraphSpec) -> str:
    """A sha256 hex digest of the graph's structure (node ids, edges, routers' targets, joins,
    subgraphs) and of how it merges state (channel and per-key reducers, by qualified name).

    Building the same graph with the calls in another order gives the same hash; node functions,
    router names and options (timeouts, limits) are not part of it.
    """
    data = orjson.dumps(_canonical(spec), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(data).hexdigest()


def graph_metadata(spec: GraphSpec) -> dict[str, Any]:
    """A JSON-ready description: nodes (a subgraph node with its child's metadata), edges,
    conditional edges, joins, counts and ``graph_hash``."""
    return {
        "nodes": [_node_metadata(node) for node in spec.nodes.values()],
        "edges": [
            {"source": src, "target": dst} for src, targets in spec.edges.items() for dst in targets
        ],
        "conditional_edges": [
            {
                "source": router.source,
                "router": router.name,
                "targets": list(router.targets) if router.targets is not None else None,
            }
            for routers in spec.routers.values()
            for router in routers
        ],
        "joins": [{"sources": list(join.sources), "target": join.target} for join in spec.joins],
        "frontier_targets": [
            {"source": src, "targets": list(targets)}
            for src, targets in spec.frontier_targets.items()
        ],
        "counts": {
            "nodes": len(spec.nodes),
            "edges": sum(len(targets) for targets in spec.edges.values()),
            "conditional_edges": sum(len(routers) for routers in spec.routers.values()),
            "joins": len(spec.joins),
        },
        "reducers": _channel_reducers(spec),
        "extra_reducers": _extra_reducers(spec),
        "state_schema": _schema_metadata(spec),
        "max_concurrency": spec.max_concurrency,
        "max_steps": spec.max_steps,
        "graph_hash": graph_hash(spec),
    }


def _node_metadata(node: NodeSpec) -> dict[str, Any]:
    described: dict[str, Any] = {
        "id": node.id,
        "is_async": node.is_async,
        "timeout": node.timeout,
        "retry": node.retry is not None,
    }
    if node.subgraph is not None:
        described["subgraph"] = graph_metadata(node.subgraph)
    return described


def _schema_metadata(spec: GraphSpec) -> dict[str, Any] | None:
    schema = spec.state_schema
    if schema is None:
        return None
    return {"name": schema.name, "kind": schema.kind, "fields": list(schema.fields)}


def topological_sort(spec: GraphSpec) -> list[str]:
    """User nodes ordered so that unconditional and join edges point forward.

    Ties (nodes whose predecessors are all placed) go in the order the nodes were added with
    ``add_node`` (Kahn's algorithm with an insertion-ordered ready list), so the result is
    deterministic. START and END are virtual and left out. Validation guarantees there is no
    unconditional cycle, so every node appears exactly once.
    """
    order = {node: index for index, node in enumerate(spec.nodes)}
    succ: dict[str, list[str]] = {node: [] for node in spec.nodes}
    indegree = dict.fromkeys(spec.nodes, 0)
    for src, dst in _forward_pairs(spec):
        if src in succ and dst in indegree:
            succ[src].append(dst)
            indegree[dst] += 1
    ready = [order[node] for node in spec.nodes if indegree[node] == 0]  # a heap of ranks
    names = list(spec.nodes)
    result: list[str] = []
    while ready:
        node = names[heapq.heappop(ready)]  # the earliest-added node that is ready
        result.append(node)
        for nxt in succ[node]:
            indegree[nxt] -= 1
            if indegree[nxt] == 0:
                heapq.heappush(ready, order[nxt])
    return result


def _forward_pairs(spec: GraphSpec) -> Iterator[tuple[str, str]]:
    for src, targets in spec.edges.items():
        for dst in targets:
            yield src, dst
    for join in spec.joins:
        for src in join.sources:
            yield src, join.target


# --- Mermaid -----------------------------------------------------------------------------------


def to_mermaid(spec: GraphSpec) -> str:
    """A Mermaid flowchart. Conditional edges are dashed and labelled with the router's name (a
    router without declared targets points at a ``?`` box), declared frontier targets are dashed
    and labelled ``frontier``; joins are drawn as a small circle; a subgraph node is a
    ``subgraph`` block holding the child graph."""
    return "\n".join(["flowchart TD", *_mermaid_body(spec, "", "    ")]) + "\n"


def _mermaid_body(spec: GraphSpec, prefix: str, pad: str) -> list[str]:
    """The nodes and edges of ``spec``, every id starting with ``prefix`` (unique when nested)."""
    ids = _short_ids(spec, start=f"{prefix}__start__", end=f"{prefix}__end__", prefix=f"{prefix}n")
    lines = [f'{pad}{ids[START]}(["{_mermaid_text(START)}"])']
    for node, child in spec.nodes.items():
        if child.subgraph is None:
            lines.append(f'{pad}{ids[node]}["{_mermaid_text(node)}"]')
            continue
        lines.append(f'{pad}subgraph {ids[node]}["{_mermaid_text(node)}"]')
        lines += _mermaid_body(child.subgraph, f"{ids[node]}_", pad + "    ")
        lines.append(f"{pad}end")
    lines.append(f'{pad}{ids[END]}(["{_mermaid_text(END)}"])')
    for src, dst in _plain_pairs(spec):
        lines.append(f"{pad}{ids[src]} --> {ids[dst]}")
    for index, join in enumerate(spec.joins):
        hub = f"{prefix}join{index}"
        lines.append(f'{pad}{hub}(("&"))')
        lines += [f"{pad}{ids[src]} --> {hub}" for src in join.sources]
        lines.append(f"{pad}{hub} --> {ids[join.target]}")
    for index, (source, name, targets) in enumerate(_routers(spec)):
        label = _mermaid_text(name)
        if targets is None:
            unknown = f"{prefix}route{index}"
            lines.append(f'{pad}{unknown}{{"?"}}')
            lines.append(f'{pad}{ids[source]} -.->|"{label}"| {unknown}')
        else:
            lines += [f'{pad}{ids[source]} -.->|"{label}"| {ids[dst]}' for dst in targets]
    for source, targets in spec.frontier_targets.items():
        lines += [f'{pad}{ids[source]} -.->|"frontier"| {ids[dst]}' for dst in targets]
    return lines


def _mermaid_text(text: str) -> str:
    return text.replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")


# --- Graphviz DOT ------------------------------------------------------------------------------


def to_dot(spec: GraphSpec) -> str:
    """A Graphviz digraph. Conditional edges are dashed and labelled with the router's name (a
    router without declared targets points at a ``?`` node), declared frontier targets are dotted;
    joins go through a small point node; a subgraph node is a ``cluster`` holding the child graph
    (edges to it enter at the child's START, edges from it leave from the child's END)."""
    lines = ["digraph weavegraph {", "    rankdir=TB;", "    node [shape=box];"]
    lines += _dot_body(spec, "", "    ")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _dot_body(spec: GraphSpec, prefix: str, pad: str) -> list[str]:
    """The nodes and edges of ``spec``, every id starting with ``prefix`` (unique when nested)."""

    def into(node: str) -> str:
        nested = spec.nodes[node].subgraph if node in spec.nodes else None
        return _dot_id(f"{prefix}{node}/{START}" if nested else f"{prefix}{node}")

    def out_of(node: str) -> str:
        nested = spec.nodes[node].subgraph if node in spec.nodes else None
        return _dot_id(f"{prefix}{node}/{END}" if nested else f"{prefix}{node}")

    lines = [f"{pad}{_dot_id(prefix + START)} [shape=oval];"]
    for node, child in spec.nodes.items():
        if child.subgraph is None:
            lines.append(f"{pad}{_dot_id(prefix + node)};")
            continue
        lines.append(f"{pad}subgraph {_dot_id(f'cluster_{prefix}{node}')} {{")
        lines.append(f"{pad}    label={_dot_id(node)};")
        lines += _dot_body(child.subgraph, f"{prefix}{node}/", pad + "    ")
        lines.append(f"{pad}}}")
    lines.append(f"{pad}{_dot_id(prefix + END)} [shape=oval];")
    for src, dst in _plain_pairs(spec):
        lines.append(f"{pad}{out_of(src)} -> {into(dst)};")
    for index, join in enumerate(spec.joins):
        hub = _dot_id(f"{prefix}__join{index}__")
        lines.append(f'{pad}{hub} [shape=point, xlabel="join"];')
        lines += [f"{pad}{out_of(src)} -> {hub};" for src in join.sources]
        lines.append(f"{pad}{hub} -> {into(join.target)};")
    for index, (source, name, targets) in enumerate(_routers(spec)):
        style = f"style=dashed, label={_dot_id(name)}"
        if targets is None:
            unknown = _dot_id(f"{prefix}__route{index}__")
            lines.append(f'{pad}{unknown} [shape=diamond, label="?"];')
            lines.append(f"{pad}{out_of(source)} -> {unknown} [{style}];")
        else:
            lines += [f"{pad}{out_of(source)} -> {into(dst)} [{style}];" for dst in targets]
    for source, targets in spec.frontier_targets.items():
        frontier = 'style=dotted, label="frontier"'
        lines += [f"{pad}{out_of(source)} -> {into(dst)} [{frontier}];" for dst in targets]
    return lines


def _dot_id(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


# --- shared ------------------------------------------------------------------------------------


def _plain_pairs(spec: GraphSpec) -> Iterator[tuple[str, str]]:
    for src, targets in spec.edges.items():
        for dst in targets:
            yield src, dst


def _routers(spec: GraphSpec) -> Iterator[tuple[str, str, tuple[str, ...] | None]]:
    for routers in spec.routers.values():
        for router in routers:
            yield router.source, router.name or "route", router.targets


def _short_ids(spec: GraphSpec, *, start: str, end: str, prefix: str) -> dict[str, str]:
    """Mermaid-safe ids: node ids may contain spaces or clash with keywords such as ``end``."""
    ids = {START: start, END: end}
    for index, node in enumerate(spec.nodes):
        ids[node] = f"{prefix}{index}"
    return ids
