"""The compiled graph as the scheduler and runner see it: frozen, validated, with no behaviour."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

from ..reducers import Reducer, ReducerRegistry
from ..retry import RetryPolicy
from ..state import StateSchema

if TYPE_CHECKING:
    from ..context import NodeContext
    from ..partial import NodePartial
    from ..state import StateSnapshot

NodeFn: TypeAlias = (
    "Callable[[StateSnapshot, NodeContext], Awaitable[NodePartial | None] | NodePartial | None]"
)
RouterFn: TypeAlias = "Callable[[StateSnapshot], Awaitable[object] | object]"
"""A router as stored: what it returns is checked when it runs (``plan.normalize_route``)."""


@dataclass(frozen=True, slots=True)
class NodeSpec:
    """One user node. ``call`` is the function (or bound ``run``); ``is_async`` says how to call it.

    ``subgraph`` is the child graph when the node is one (``add_node(id, app)``)."""

    id: str
    call: NodeFn
    is_async: bool
    timeout: float | None = None
    retry: RetryPolicy | None = None
    subgraph: GraphSpec | None = None


@dataclass(frozen=True, slots=True)
class RouterSpec:
    """A conditional edge: ``route(snapshot)`` picks the next node(s) after ``source``."""

    source: str
    route: RouterFn
    is_async: bool
    targets: tuple[str, ...] | None = None  # declared possible targets, when given
    name: str = ""


@dataclass(frozen=True, slots=True)
class JoinSpec:
    """``target`` runs once every node of ``sources`` has completed since it last ran."""

    sources: tuple[str, ...]
    target: str

    @property
    def key(self) -> str:
        return f"{'+'.join(self.sources)}->{self.target}"


@dataclass(frozen=True, slots=True)
class GraphSpec:
    """Everything ``compile()`` validated. Mappings keep insertion order (the user's order)."""

    nodes: Mapping[str, NodeSpec]
    edges: Mapping[str, tuple[str, ...]]  # unconditional edges, START included as a source
    routers: Mapping[str, tuple[RouterSpec, ...]]  # conditional edges by source, START included
    joins: tuple[JoinSpec, ...]
    reducers: ReducerRegistry
    extra_reducers: Mapping[str, Reducer]
    max_concurrency: int
    max_steps: int
    # ids a node declared it may name in a frontier command (GraphBuilder.add_node(frontier_targets=))
    frontier_targets: Mapping[str, tuple[str, ...]] = field(
        default_factory=dict[str, tuple[str, ...]]
    )
    # the typed state schema (GraphBuilder(state=Schema)); its fields live in extra
    state_schema: StateSchema | None = None
    # Derived index (not an input): the joins each node is a source of, so the scheduler's per-node
    # work stays O(1) even for a 1000-way fan-in.
    joins_by_source: Mapping[str, tuple[JoinSpec, ...]] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        index: dict[str, tuple[JoinSpec, ...]] = {}
        for join in self.joins:
            for source in dict.fromkeys(join.sources):
                index[source] = (*index.get(source, ()), join)
        object.__setattr__(self, "joins_by_source", index)

    def joins_from(self, source: str) -> tuple[JoinSpec, ...]:
        return self.joins_by_source.get(source, ())

    def describe(self) -> dict[str, Any]:
        """A JSON description (for metadata, hashes and the web view); subgraph nodes' children
        under ``subgraphs`` (only when there are any)."""
        described: dict[str, Any] = {
            "nodes": list(self.nodes),
            "edges": {src: list(dst) for src, dst in self.edges.items()},
            "conditional": {
                src: [list(r.targets) if r.targets is not None else None for r in routers]
                for src, routers in self.routers.items()
            },
            "joins": [{"sources": list(j.sources), "target": j.target} for j in self.joins],
            "frontier_targets": {src: list(dst) for src, dst in self.frontier_targets.items()},
        }
        children = {n.id: n.subgraph.describe() for n in self.nodes.values() if n.subgraph}
        if children:
            described["subgraphs"] = children
        return described
