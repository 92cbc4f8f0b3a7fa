"""``RemoveMessage``: an update to the ``messages`` channel that deletes a message by id."""

from __future__ import annotations

from typing import Final

from ._message import Message

__all__ = ["REMOVE_ROLE", "RemoveMessage"]

REMOVE_ROLE: Final = "__remove__"


class RemoveMessage(Message):
    """Return it among a node's messages to delete the message with that ``id`` (the
    ``add_messages`` reducer applies it; it never lands in the state itself)."""

    __slots__ = ()

    def __init__(self, id: str) -> None:
        if not isinstance(id, str) or not id:  # pyright: ignore[reportUnnecessaryIsInstance]
            raise ValueError(f"RemoveMessage needs the id of the message to remove, got {id!r}")
        Message.__init__(self, REMOVE_ROLE, "", id)

    def __repr__(self) -> str:
        return f"RemoveMessage(id={self.id!r})"

    def __reduce__(self) -> tuple[type[RemoveMessage], tuple[str]]:
        return (RemoveMessage, (self.id or "",))
