"""Graphs: the mutable ``GraphBuilder``, validation passes, the frozen ``GraphSpec`` and its views."""

from .builder import GraphBuilder as GraphBuilder
from .builder import is_async_callable as is_async_callable
from .render import graph_hash as graph_hash
from .render import graph_metadata as graph_metadata
from .render import to_dot as to_dot
from .render import to_mermaid as to_mermaid
from .render import topological_sort as topological_sort
from .spec import GraphSpec as GraphSpec
from .spec import JoinSpec as JoinSpec
from .spec import NodeSpec as NodeSpec
from .spec import RouterSpec as RouterSpec
from .subgraph import Subgraph as Subgraph
from .validate import GraphDescription as GraphDescription
from .validate import validate as validate

__all__ = [
    "GraphBuilder",
    "GraphDescription",
    "GraphSpec",
    "JoinSpec",
    "NodeSpec",
    "RouterSpec",
    "Subgraph",
    "graph_hash",
    "graph_metadata",
    "is_async_callable",
    "to_dot",
    "to_mermaid",
    "topological_sort",
    "validate",
]
