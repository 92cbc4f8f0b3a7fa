"""``GraphBuilder``: the mutable, fluent way to describe a graph; ``compile()`` freezes it.

Mistakes that can only be spelled one way (a reserved or non-string node id) raise at once; mistakes
about the shape of the graph are collected and reported together by ``compile()``.
"""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Awaitable, Callable, Sequence
from types import BuiltinFunctionType, FunctionType, MappingProxyType, MethodType
from typing import TYPE_CHECKING, Any, Final, TypeAlias, cast

from ..reducers import Reducer, ReducerRegistry
from ..retry import RetryPolicy
from ..state import ChannelType, StateSchema
from ..types import RESERVED_NODE_IDS, START
from .spec import GraphSpec, JoinSpec, NodeFn, NodeSpec, RouterFn, RouterSpec
from .subgraph import Subgraph, check_subgraph_id
from .validate import GraphDescription, validate

if TYPE_CHECKING:
    from ..app import App
    from ..context import NodeContext
    from ..partial import NodePartial, Send
    from ..state import StateSnapshot
    from ..types import Node

RouteResult: TypeAlias = "str | Send | Sequence[str | Send]"
"""What a router returns: one node id (or END) or a Send, or several of them."""
Router: TypeAlias = "Callable[[StateSnapshot], RouteResult | Awaitable[RouteResult]]"
"""A conditional edge's router: sync or async, given the snapshot after its source ran."""
NodeResult: TypeAlias = "NodePartial | None"
NodeFunction: TypeAlias = (
    "Callable[[StateSnapshot, NodeContext], NodeResult | Awaitable[NodeResult]]"
)
NodeLike: TypeAlias = "NodeFunction | Node | App | Subgraph"
"""What ``add_node`` accepts: an async or sync function ``(snapshot, ctx)``, a ``wg.Node``, or a
compiled graph (``App`` or ``wg.Subgraph``) run as a subgraph."""

__all__ = ["GraphBuilder", "is_async_callable"]

DEFAULT_MAX_STEPS = 1000


def is_async_callable(fn: object) -> bool:
    """Whether calling ``fn`` returns a coroutine: async functions, async ``__call__``, partials."""
    while isinstance(fn, functools.partial):
        fn = cast("functools.partial[Any]", fn).func
    if inspect.iscoroutinefunction(fn):
        return True
    call = getattr(fn, "__call__", None)  # noqa: B004  (we need the attribute, not callable())
    return call is not None and inspect.iscoroutinefunction(call)


class GraphBuilder:
    """Collects nodes, edges, routers and options; every method returns the builder itself.

    ``state`` (optional) is a typed state schema: a pydantic model, TypedDict or dataclass whose
    fields live in ``extra``, each under its own name; ``Annotated[T, reducer]`` on a field sets
    that key's reducer. Nodes read ``snapshot.state`` and write ``NodePartial(update={...})``.
    """

    def __init__(self, *, state: type | None = None) -> None:
        self._nodes: dict[str, NodeSpec] = {}
        self._duplicate_nodes: list[str] = []
        self._edges: list[tuple[str, str]] = []
        self._joins: list[JoinSpec] = []
        self._routers: list[RouterSpec] = []
        self._frontier_targets: dict[str, tuple[str, ...]] = {}
        self._reducers = ReducerRegistry()
        self._extra_reducers: dict[str, Reducer] = {}
        self._max_concurrency = os.cpu_count() or 1
        self._max_steps = DEFAULT_MAX_STEPS
        self._state_schema = StateSchema.of(state) if state is not None else None
        if self._state_schema is not None:
            self._extra_reducers.update(self._state_schema.reducers())

    # --- nodes and edges -----------------------------------------------------------------------

    def add_node(
        self,
        id: str,
        node: NodeLike,
        *,
        timeout: float | None = None,
        retry: RetryPolicy | None = None,
        frontier_targets: Sequence[str] | None = None,
    ) -> GraphBuilder:
        """Add a node: an async or sync function ``(snapshot, ctx)``, an object with ``run``, or a
        compiled graph (an ``App``, or ``wg.Subgraph(app, input=, output=)``) run as a subgraph.

        ``timeout`` (seconds, per attempt) and ``retry`` apply to this node only. A node that
        returns frontier commands may declare the ids it can name in ``frontier_targets``;
        validation then counts them as edges (frontier commands are otherwise invisible to it).
        Adding an id twice is reported by ``compile()`` as ``DuplicateNode``.
        """
        _check_node_id(id)
        if timeout is not None and (
            isinstance(timeout, bool)
            or not isinstance(timeout, int | float)  # pyright: ignore[reportUnnecessaryIsInstance]
            or not timeout > 0
        ):
            raise ValueError(f"timeout of node {id!r} must be a positive number, got {timeout!r}")
        if retry is not None and not isinstance(retry, RetryPolicy):  # pyright: ignore[reportUnnecessaryIsInstance]
            raise TypeError(f"retry of node {id!r} must be a RetryPolicy, got {retry!r}")
        child = _as_subgraph(id, node)
        call = child.run if child is not None else _node_callable(id, node)
        declared = _declared_targets(frontier_targets, "frontier target")
        spec = NodeSpec(
            id, call, is_async_callable(call), timeout, retry, child.spec if child else None
        )
        if id in self._nodes:
            self._duplicate_nodes.append(id)
        else:
            self._nodes[id] = spec
            if declared:
                self._frontier_targets[id] = declared
        return self

    def add_edge(self, source: str | Sequence[str], target: str) -> GraphBuilder:
        """Add an unconditional edge; a list of sources makes a join (``target`` waits for all)."""
        _check_ref(target, "edge target")
        if target == START:
            raise ValueError("START cannot be the target of an edge")
        if isinstance(source, str):
            _check_ref(source, "edge source")
            self._edges.append((source, target))
            return self
        sources = tuple(dict.fromkeys(source))
        if not sources:
            raise ValueError("a join needs at least one source node")
        for src in sources:
            _check_ref(src, "join source")
        if START in sources:
            raise ValueError("START cannot be a source of a join; use add_edge(START, node)")
        if len(sources) == 1:
            self._edges.append((sources[0], target))
        else:
            self._joins.append(JoinSpec(sources, target))
        return self

    def add_conditional_edge(
        self,
        source: str,
        router: Router,
        *,
        targets: Sequence[str] | None = None,
    ) -> GraphBuilder:
        """After ``source`` runs, ``router(snapshot)`` returns the next node id(s).

        The router may be sync or async. Declaring its possible ``targets`` lets ``compile()`` check
        reachability through it; without them, anything downstream of ``source`` is assumed reachable.
        """
        _check_ref(source, "conditional edge source")
        if not callable(router):
            raise TypeError(f"router for {source!r} must be callable, got {router!r}")
        declared = _declared_targets(targets, "router target")
        name = getattr(router, "__name__", type(router).__name__)
        route = cast(RouterFn, router)
        self._routers.append(RouterSpec(source, route, is_async_callable(router), declared, name))
        return self

    # --- options -------------------------------------------------------------------------------

    def with_reducer(self, channel: ChannelType | str, reducer: Reducer) -> GraphBuilder:
        """Append ``reducer`` to ``channel``'s reducers (they run in registration order)."""
        if not callable(reducer):
            raise TypeError(f"reducer must be callable, got {reducer!r}")
        self._reducers = self._reducers.with_reducer(channel, reducer)
        return self

    def with_extra_reducer(self, key: str, reducer: Reducer) -> GraphBuilder:
        """Combine concurrent writes to ``extra[key]`` with ``reducer`` instead of last-wins."""
        if not isinstance(key, str) or not key:  # pyright: ignore[reportUnnecessaryIsInstance]
            raise ValueError(f"extra reducer key must be a non-empty string, got {key!r}")
        if not callable(reducer):
            raise TypeError(f"reducer must be callable, got {reducer!r}")
        self._extra_reducers[key] = reducer
        return self

    def with_reducer_registry(self, registry: ReducerRegistry) -> GraphBuilder:
        """Replace every channel reducer with those of ``registry``."""
        if not isinstance(registry, ReducerRegistry):  # pyright: ignore[reportUnnecessaryIsInstance]
            raise TypeError(f"expected a ReducerRegistry, got {registry!r}")
        self._reducers = registry
        return self

    def with_max_concurrency(self, n: int) -> GraphBuilder:
        """Run at most ``n`` nodes at once (default: the CPU count)."""
        self._max_concurrency = _positive_int(n, "max_concurrency")
        return self

    def with_max_steps(self, n: int) -> GraphBuilder:
        """Stop a run with ``StepLimitExceeded`` after ``n`` supersteps (default 1000)."""
        self._max_steps = _positive_int(n, "max_steps")
        return self

    # --- compilation ---------------------------------------------------------------------------

    def describe(self) -> GraphDescription:
        """The plain description validation works on."""
        return GraphDescription(
            nodes=tuple(self._nodes),
            duplicate_nodes=tuple(self._duplicate_nodes),
            edges=tuple(self._edges),
            joins=tuple((join.sources, join.target) for join in self._joins),
            routers=tuple((router.source, router.targets) for router in self._routers),
            frontier_targets=tuple(self._frontier_targets.items()),
        )

    def build_spec(self) -> GraphSpec:
        """Validate and freeze the graph; raises the first problem with ``problems`` set to all."""
        problems = validate(self.describe())
        if problems:
            raise problems[0].with_problems(problems)
        edges: dict[str, list[str]] = {}
        for src, dst in self._edges:
            edges.setdefault(src, []).append(dst)
        routers: dict[str, list[RouterSpec]] = {}
        for router in self._routers:
            routers.setdefault(router.source, []).append(router)
        return GraphSpec(
            nodes=MappingProxyType(dict(self._nodes)),
            edges=MappingProxyType({src: tuple(dsts) for src, dsts in edges.items()}),
            routers=MappingProxyType({src: tuple(rs) for src, rs in routers.items()}),
            joins=tuple(self._joins),
            reducers=self._reducers,
            extra_reducers=MappingProxyType(dict(self._extra_reducers)),
            max_concurrency=self._max_concurrency,
            max_steps=self._max_steps,
            frontier_targets=MappingProxyType(dict(self._frontier_targets)),
            state_schema=self._state_schema,
        )

    def compile(self) -> App:
        """Validate the graph and return the runnable, immutable ``App``.

        Raises a ``GraphCompileError`` subclass (the first problem found); its ``problems`` attribute
        lists every problem.
        """
        from ..app import App  # app builds on the graph package, so import it late

        return App(self.build_spec())


def _check_node_id(node_id: object) -> None:
    if not isinstance(node_id, str):
        raise TypeError(f"node id must be a string, got {type(node_id).__name__} {node_id!r}")
    if not node_id:
        raise ValueError("node id must not be empty")
    if node_id in RESERVED_NODE_IDS:
        raise ValueError(
            f"{node_id!r} is reserved for the virtual {node_id} node; choose another id"
        )


def _check_ref(node_id: object, what: str) -> None:
    if not isinstance(node_id, str):
        raise TypeError(
            f"{what} must be a node id string, got {type(node_id).__name__} {node_id!r}"
        )
    if not node_id:
        raise ValueError(f"{what} must not be empty")


def _declared_targets(targets: Sequence[str] | None, what: str) -> tuple[str, ...] | None:
    """Declared possible next nodes, deduplicated in order (a lone string is one target)."""
    if targets is None:
        return None
    items = (targets,) if isinstance(targets, str) else tuple(targets)
    for target in items:
        _check_ref(target, what)
        if target == START:
            raise ValueError(f"START cannot be a {what}")
    return tuple(dict.fromkeys(items))


# Node kinds that are never a compiled graph: told without importing ``App`` (a function-level
# import costs microseconds, for every node of a large graph).
_PLAIN_CALLABLES: Final = frozenset(
    {FunctionType, MethodType, BuiltinFunctionType, functools.partial}
)


def _as_subgraph(node_id: str, node: object) -> Subgraph | None:
    """``node`` as a Subgraph when it is a compiled graph (or already one), else None."""
    if type(node) in _PLAIN_CALLABLES:
        return None
    from ..app import App  # app builds on the graph package, so import it late

    if isinstance(node, App):
        node = Subgraph(node)
    if not isinstance(node, Subgraph):
        return None
    check_subgraph_id(node_id)
    return node


def _node_callable(node_id: str, node: object) -> NodeFn:
    """The function to call for ``node``: itself, or its bound ``run`` method."""
    if isinstance(node, type):
        raise TypeError(f"node {node_id!r}: pass an instance of {node.__name__}, not the class")
    run: object = getattr(node, "run", None)
    is_function = inspect.isroutine(node) or _is_partial(node)
    if callable(run) and not is_function:
        return cast(NodeFn, run)
    if is_function or callable(node):
        return cast(NodeFn, node)
    raise TypeError(
        f"node {node_id!r} must be a function (snapshot, ctx) or an object with a run method, "
        f"got {type(node).__name__}"
    )


def _is_partial(obj: object) -> bool:
    return isinstance(obj, functools.partial)


def _positive_int(n: object, what: str) -> int:
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"{what} must be an int, got {n!r}")
    if n < 1:
        raise ValueError(f"{what} must be >= 1, got {n}")
    return n
