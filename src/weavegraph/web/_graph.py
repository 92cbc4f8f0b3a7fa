"""The graph as the web page draws it: nodes, typed edges and the mermaid source."""

from __future__ import annotations

from typing import Any

from ..app import App
from ..types import END, START


def graph_json(app: App) -> dict[str, Any]:
    """``{"start", "end", "nodes", "edges": [{"source", "target", "kind"}], "mermaid"}``.

    ``kind`` is ``edge``, ``conditional`` (a router's declared target) or ``join``.
    """
    spec = app.spec
    edges: list[dict[str, str]] = []
    for source, targets in spec.edges.items():
        edges.extend({"source": source, "target": t, "kind": "edge"} for t in targets)
    for source, routers in spec.routers.items():
        for router in routers:
            edges.extend(
                {"source": source, "target": t, "kind": "conditional"} for t in router.targets or ()
            )
    for join in spec.joins:
        edges.extend({"source": s, "target": join.target, "kind": "join"} for s in join.sources)
    return {
        "start": START,
        "end": END,
        "nodes": [START, *spec.nodes, END],
        "edges": edges,
        "mermaid": app.to_mermaid(),
    }
