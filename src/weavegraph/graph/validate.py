"""Compile-time validation: pure passes over a plain description of the graph.

Every pass looks at the whole graph and returns every problem it finds, so ``compile()`` can report
them all at once. Problems come out in a fixed order (the order of the passes below) and node lists
follow the order in which nodes were added, so the same graph always gives the same report.

Reachability rules (``UnreachableNodes`` and ``NoPathToEnd``):

- unconditional edges count, and so do join edges (each source of a join counts as an edge to its
  target; a source that is itself unreachable is reported on its own);
- a router with declared ``targets`` counts as edges to exactly those targets;
- a router **without** declared targets could return any node id, so it is treated as an edge from its
  source to every node and to END. A node is reported unreachable only when no possible routing
  decision reaches it, and reported stuck only when no possible routing decision leads it to END;
- frontier commands returned by nodes are run-time decisions: the ids a node declared with
  ``add_node(..., frontier_targets=[...])`` count as edges from it, like declared router targets;
  undeclared frontier commands are not seen here.

Cycles (``CycleDetected``) are looked for among unconditional and join edges only (routers and
frontier commands are how loops are meant to be written); START and END
cannot be part of one. Each strongly connected group of nodes is reported once, with one concrete
cycle through its earliest-added node.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from ..errors import (
    CycleDetected,
    DuplicateEdge,
    DuplicateNode,
    EdgeFromEnd,
    GraphCompileError,
    MissingEntry,
    NoPathToEnd,
    UnknownNode,
    UnreachableNodes,
)
from ..types import END, START

__all__ = ["GraphDescription", "validate"]


@dataclass(frozen=True, slots=True, kw_only=True)
class GraphDescription:
    """What validation needs to know, as plain ids, in the order the builder was called.

    ``edges`` keeps every ``add_edge`` call (duplicates included); ``routers`` holds one entry per
    conditional edge: its source and its declared targets, or ``None`` when none were declared;
    ``frontier_targets`` pairs a node with the ids it declared its frontier commands may name.
    """

    nodes: tuple[str, ...]
    duplicate_nodes: tuple[str, ...] = ()
    edges: tuple[tuple[str, str], ...] = ()
    joins: tuple[tuple[tuple[str, ...], str], ...] = ()
    routers: tuple[tuple[str, tuple[str, ...] | None], ...] = ()
    frontier_targets: tuple[tuple[str, tuple[str, ...]], ...] = ()


def validate(graph: GraphDescription) -> list[GraphCompileError]:
    """Every problem of ``graph``, in a deterministic order (empty when the graph is valid)."""
    problems: list[GraphCompileError] = []
    for check in _PASSES:
        problems.extend(check(graph))
    return problems


# --- structural passes -------------------------------------------------------------------------


def _missing_entry(graph: GraphDescription) -> list[GraphCompileError]:
    leaves_start = any(src == START for src, _ in graph.edges) or any(
        src == START for src, _ in graph.routers
    )
    return [] if leaves_start else [MissingEntry()]


def _duplicate_nodes(graph: GraphDescription) -> list[GraphCompileError]:
    return [DuplicateNode(node) for node in _unique(graph.duplicate_nodes)]


def _unknown_nodes(graph: GraphDescription) -> list[GraphCompileError]:
    known = {*graph.nodes, START, END}
    referenced: list[str] = []
    for src, dst in graph.edges:
        referenced += (src, dst)
    for sources, target in graph.joins:
        referenced += (*sources, target)
    for src, targets in graph.routers:
        referenced += (src, *(targets or ()))
    for _, targets in graph.frontier_targets:
        referenced += targets
    return [UnknownNode(node) for node in _unique(referenced) if node not in known]


def _edges_from_end(graph: GraphDescription) -> list[GraphCompileError]:
    problems: list[GraphCompileError] = [EdgeFromEnd(dst) for src, dst in graph.edges if src == END]
    problems += [EdgeFromEnd(target) for sources, target in graph.joins if END in sources]
    problems += [EdgeFromEnd() for src, _ in graph.routers if src == END]
    return problems


def _duplicate_edges(graph: GraphDescription) -> list[GraphCompileError]:
    seen: set[tuple[str, str]] = set()
    reported: set[tuple[str, str]] = set()
    problems: list[GraphCompileError] = []
    for edge in graph.edges:
        if edge in seen and edge not in reported:
            problems.append(DuplicateEdge(*edge))
            reported.add(edge)
        seen.add(edge)
    seen_joins: set[tuple[frozenset[str], str]] = set()
    reported_joins: set[tuple[frozenset[str], str]] = set()
    for sources, target in graph.joins:
        key = (frozenset(sources), target)
        if key in seen_joins and key not in reported_joins:
            problems.append(DuplicateEdge("+".join(sources), target))
            reported_joins.add(key)
        seen_joins.add(key)
    return problems


# --- cycles ------------------------------------------------------------------------------------


def _unconditional_successors(graph: GraphDescription) -> dict[str, list[str]]:
    """Unconditional and join edges between nodes (START and END left out), in insertion order."""
    succ: dict[str, dict[str, None]] = {}  # dicts as insertion-ordered sets
    pairs = [*graph.edges, *((src, tgt) for sources, tgt in graph.joins for src in sources)]
    for src, dst in pairs:
        if src not in (START, END) and dst not in (START, END):
            succ.setdefault(src, {})[dst] = None
    return {src: list(targets) for src, targets in succ.items()}


def _cycles(graph: GraphDescription) -> list[GraphCompileError]:
    succ = _unconditional_successors(graph)
    order = _vertex_order(graph, succ)
    problems: list[GraphCompileError] = []
    for component in _strong_components(order, succ):
        first = min(component, key=order.__getitem__)
        if len(component) > 1 or first in succ.get(first, ()):
            problems.append(CycleDetected(_cycle_through(first, component, succ)))
    return problems


def _vertex_order(graph: GraphDescription, succ: Mapping[str, list[str]]) -> dict[str, int]:
    """Rank every vertex by when it first appeared (added nodes first, then unknown ids)."""
    order: dict[str, int] = {}
    for vertex in (*graph.nodes, *succ, *(v for targets in succ.values() for v in targets)):
        order.setdefault(vertex, len(order))
    return order


def _strong_components(
    order: Mapping[str, int], succ: Mapping[str, list[str]]
) -> list[frozenset[str]]:
    """Strongly connected components (iterative Kosaraju), ordered by their earliest vertex."""
    finished: list[str] = []
    visited: set[str] = set()
    for root in order:
        if root in visited:
            continue
        visited.add(root)
        stack = [(root, iter(succ.get(root, ())))]
        while stack:
            vertex, children = stack[-1]
            child = next((c for c in children if c not in visited), None)
            if child is None:
                stack.pop()
                finished.append(vertex)
            else:
                visited.add(child)
                stack.append((child, iter(succ.get(child, ()))))
    pred: dict[str, list[str]] = {}
    for src, targets in succ.items():
        for dst in targets:
            pred.setdefault(dst, []).append(src)
    assigned: set[str] = set()
    components: list[frozenset[str]] = []
    for root in reversed(finished):
        if root not in assigned:
            members = _collect(root, lambda v: pred.get(v, ()), assigned)
            components.append(frozenset(members))
    components.sort(key=lambda comp: min(order[v] for v in comp))
    return components


def _cycle_through(
    start: str, component: frozenset[str], succ: Mapping[str, list[str]]
) -> list[str]:
    """A shortest cycle from ``start`` back to itself inside ``component`` (BFS, insertion order)."""
    parent: dict[str, str] = {}
    queue = deque([start])
    while queue:
        vertex = queue.popleft()
        for nxt in succ.get(vertex, ()):
            if nxt == start:
                path = [vertex]
                while path[-1] != start:
                    path.append(parent[path[-1]])
                return path[::-1]
            if nxt in component and nxt not in parent:
                parent[nxt] = vertex
                queue.append(nxt)
    raise AssertionError(f"no cycle through {start!r} in its component")  # pragma: no cover


# --- reachability ------------------------------------------------------------------------------


def _reachability(graph: GraphDescription) -> list[GraphCompileError]:
    succ: dict[str, list[str]] = {}
    wildcard: set[str] = set()  # sources of routers without declared targets
    for src, dst in graph.edges:
        succ.setdefault(src, []).append(dst)
    for sources, target in graph.joins:
        for src in sources:
            succ.setdefault(src, []).append(target)
    for src, targets in graph.routers:
        if targets is None:
            wildcard.add(src)
        else:
            succ.setdefault(src, []).extend(targets)
    for src, targets in graph.frontier_targets:
        succ.setdefault(src, []).extend(targets)
    problems: list[GraphCompileError] = []
    reachable = _collect(START, lambda v: succ.get(v, ()), set())
    if not reachable & wildcard:  # a reachable wildcard router could reach every node
        unreachable = [node for node in graph.nodes if node not in reachable]
        if unreachable:
            problems.append(UnreachableNodes(unreachable))
    pred: dict[str, list[str]] = {}
    for src, targets in succ.items():
        for dst in targets:
            pred.setdefault(dst, []).append(src)
    # A wildcard router may route straight to END, so its source (and all that lead to it) can end.
    reaches_end: set[str] = set()
    for goal in (END, *sorted(wildcard)):
        _collect(goal, lambda v: pred.get(v, ()), reaches_end)
    stuck = [node for node in graph.nodes if node not in reaches_end]
    if stuck:
        problems.append(NoPathToEnd(stuck))
    return problems


# --- helpers -----------------------------------------------------------------------------------


def _collect(root: str, neighbours: Callable[[str], Iterable[str]], seen: set[str]) -> set[str]:
    """Add to ``seen`` every vertex reachable from ``root`` (root included); return the new ones."""
    if root in seen:
        return set()
    found = {root}
    seen.add(root)
    stack = [root]
    while stack:
        for nxt in neighbours(stack.pop()):
            if nxt not in seen:
                seen.add(nxt)
                found.add(nxt)
                stack.append(nxt)
    return found


def _unique(items: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(items))


_PASSES: tuple[Callable[[GraphDescription], list[GraphCompileError]], ...] = (
    _missing_entry,
    _duplicate_nodes,
    _unknown_nodes,
    _edges_from_end,
    _duplicate_edges,
    _cycles,
    _reachability,
)
