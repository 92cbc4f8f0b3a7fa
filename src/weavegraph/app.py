"""The compiled, immutable graph a user runs (minimal placeholder by the graph engineer; H1b owns
this file and merges the running API in)."""

from __future__ import annotations

from typing import Any

from .graph import render
from .graph.spec import GraphSpec

__all__ = ["App"]


class App:
    """A validated graph, ready to run. Built by ``GraphBuilder.compile()``."""

    __slots__ = ("spec",)

    def __init__(self, spec: GraphSpec) -> None:
        self.spec = spec

    def graph_metadata(self) -> dict[str, Any]:
        """Nodes, edges, routers, joins, counts and the order-insensitive ``graph_hash``."""
        return render.graph_metadata(self.spec)

    def to_mermaid(self) -> str:
        """The graph as a Mermaid flowchart."""
        return render.to_mermaid(self.spec)

    def to_dot(self) -> str:
        """The graph as a Graphviz digraph."""
        return render.to_dot(self.spec)

    def topological_sort(self) -> list[str]:
        """User nodes in an order where unconditional and join edges point forward."""
        return render.topological_sort(self.spec)
