"""``Subgraph``: a compiled graph used as a node, and how state crosses into it and back.

``builder.add_node("research", research_app)`` wraps the app in ``Subgraph(research_app)``; pass
``wg.Subgraph(app, input=fn, output=fn)`` to choose the mapping. By default the child starts from
the parent's messages and ``extra``, and what the child added or changed (new messages, ``extra``
keys with a new value) becomes the node's partial. Running it is ``runtime/subgraph.py``'s.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, cast

from ..errors import StateError
from ..partial import NodePartial
from ..state import StateSnapshot, VersionedState
from .spec import GraphSpec

if TYPE_CHECKING:
    from ..app import App
    from ..context import NodeContext

__all__ = ["InputMap", "OutputMap", "Subgraph", "added_or_changed", "check_subgraph_id"]

InputMap = Callable[[StateSnapshot], "VersionedState | str"]
"""Maps the parent's snapshot to the child's initial state (a str: one user message)."""
OutputMap = Callable[[StateSnapshot], "NodePartial | None"]
"""Maps the child's final state to the parent's partial."""

_MISSING: Final = object()


class Subgraph:
    """A compiled ``App`` as a node of another graph.

    It runs as part of the parent's session: its steps are checkpointed under the parent's
    session in a namespace (the path of node ids, ``research``), its events reach the parent's
    sinks with that ``namespace``, and a ``ctx.interrupt`` inside it pauses the whole session.
    ``input(parent_snapshot)`` gives the child's initial state (default: the parent's messages
    and ``extra``); ``output(child_final_snapshot)`` gives the parent's ``NodePartial`` (default:
    the messages and ``extra`` values the child added or changed).
    """

    __slots__ = ("app", "input", "output")

    def __init__(
        self, app: App, *, input: InputMap | None = None, output: OutputMap | None = None
    ) -> None:
        from ..app import App  # the app module builds on the graph package: import it late

        if not isinstance(cast(object, app), App):
            raise TypeError(
                f"Subgraph needs a compiled graph (GraphBuilder(...).compile()), "
                f"got {type(app).__name__}"
            )
        for name, fn in (("input", input), ("output", output)):
            if fn is not None and not callable(fn):
                raise TypeError(f"Subgraph {name} must be a function, got {type(fn).__name__}")
        self.app = app
        self.input = input
        self.output = output

    def __repr__(self) -> str:
        return f"Subgraph({self.app!r})"

    @property
    def spec(self) -> GraphSpec:
        """The child graph."""
        return self.app.spec

    async def run(self, snapshot: StateSnapshot, ctx: NodeContext) -> NodePartial | None:
        """Run the child to its end (or its pause) within the parent's session."""
        from ..runtime.subgraph import run_subgraph  # the runtime builds on the graph package

        return await run_subgraph(self, snapshot, ctx)

    def initial_state(self, parent: StateSnapshot) -> VersionedState:
        """The child's state when it starts."""
        if self.input is None:
            return VersionedState(messages=parent.messages, extra=parent.extra)
        state = cast(object, self.input(parent))
        if isinstance(state, str):
            return VersionedState.new_with_user_message(state)
        if not isinstance(state, VersionedState):
            raise StateError(
                f"a subgraph's input must return a VersionedState or a str, "
                f"got {type(state).__name__}"
            )
        return state

    def partial(self, parent: StateSnapshot, final: StateSnapshot) -> NodePartial | None:
        """The parent's partial for the child's final state."""
        if self.output is None:
            return added_or_changed(parent, final)
        result = cast(object, self.output(final))
        if result is not None and not isinstance(result, NodePartial):
            raise StateError(
                f"a subgraph's output must return a NodePartial or None, "
                f"got {type(result).__name__}"
            )
        return result


def added_or_changed(parent: StateSnapshot, final: StateSnapshot) -> NodePartial | None:
    """The messages of ``final`` that ``parent`` does not have, and its ``extra`` keys whose
    value differs from the parent's (None when there are none). Nothing is deleted."""
    known = parent.messages
    if final.messages[: len(known)] == known:
        messages = final.messages[len(known) :]
    else:  # the child replaced or removed some: what is new, by value
        messages = tuple(message for message in final.messages if message not in known)
    before: Any = parent.extra
    extra = {key: value for key, value in final.extra.items() if before.get(key, _MISSING) != value}
    if not messages and not extra:
        return None
    return NodePartial(messages=messages, extra=extra or None)


def check_subgraph_id(node_id: str) -> None:
    """A subgraph's node id names its namespace: ``/`` (the separator) and ``:`` are refused."""
    bad = [char for char in "/:" if char in node_id]
    if bad:
        raise ValueError(
            f"subgraph node id {node_id!r} must not contain {' or '.join(map(repr, bad))} "
            f"(it names the subgraph's namespace)"
        )
