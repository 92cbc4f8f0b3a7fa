"""Node ids, the virtual endpoints and the node protocol."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING, Final, Protocol, TypeAlias, runtime_checkable

if TYPE_CHECKING:
    from .context import NodeContext
    from .partial import NodePartial
    from .state import StateSnapshot

START: Final = "Start"
"""The virtual entry node. Edges from START decide the first frontier."""
END: Final = "End"
"""The virtual exit node. A frontier of only END completes the run."""

RESERVED_NODE_IDS: Final = frozenset({START, END})

NodeResult: TypeAlias = "NodePartial | None"


class NodeKind:
    """Node ids: ``NodeKind.START``, ``NodeKind.END`` and ``NodeKind.custom(name)``.

    Everywhere a node is expected, a plain string works too.
    """

    START: Final = START
    END: Final = END

    @staticmethod
    def custom(name: str) -> str:
        """The id of a user node called ``name`` (the bare name is the canonical id)."""
        if not isinstance(name, str) or not name:  # pyright: ignore[reportUnnecessaryIsInstance]
            raise ValueError(f"node id must be a non-empty string, got {name!r}")
        return name


@runtime_checkable
class Node(Protocol):
    """An object node: ``run`` may be async or sync (sync runs in a worker thread)."""

    def run(self, snapshot: StateSnapshot, ctx: NodeContext) -> NodeResult | Awaitable[NodeResult]:
        """Do the node's work on ``snapshot``; return its update (a NodePartial) or None."""
        ...
