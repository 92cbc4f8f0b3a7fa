"""Chat messages: the ``messages`` channel's items."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ._frozen import EMPTY_DICT, freeze_mapping, text_problem


class Role(StrEnum):
    """Well-known message roles. Custom role strings are allowed wherever a role is expected."""

    USER = "user"
    ASSISTANT = "assistant"
    SYSTEM = "system"
    TOOL = "tool"


def _normalize_role(role: str) -> str:
    try:
        return Role(role)
    except ValueError:
        return str(role)


def _check_text(field: str, value: object) -> None:
    # A message is stored with its step; text that cannot be encoded is refused where it enters.
    if type(value) is str and not value.isascii():
        problem = text_problem(value)
        if problem:
            raise ValueError(f"Message.{field} cannot be stored: {problem}")


@dataclass(frozen=True, slots=True)
class Message:
    """One message: a role, its content, and optional id, name and JSON metadata."""

    role: str
    content: str
    id: str | None = None
    name: str | None = None
    metadata: Mapping[str, Any] = field(default=EMPTY_DICT)

    def __post_init__(self) -> None:
        if not isinstance(self.role, str) or not self.role:  # pyright: ignore[reportUnnecessaryIsInstance]
            raise TypeError(f"Message.role must be a non-empty string, got {self.role!r}")
        if not isinstance(self.content, str):  # pyright: ignore[reportUnnecessaryIsInstance]
            raise TypeError(f"Message.content must be a string, got {type(self.content).__name__}")
        _check_text("content", self.content)
        _check_text("role", self.role)
        _check_text("id", self.id)
        _check_text("name", self.name)
        object.__setattr__(self, "role", _normalize_role(self.role))
        metadata = freeze_mapping(self.metadata) if self.metadata else EMPTY_DICT
        object.__setattr__(self, "metadata", metadata)

    @classmethod
    def with_role(cls, role: str, content: str) -> Message:
        """A message with any role string (the Role values or a custom one)."""
        return cls(role, content)

    @classmethod
    def user(cls, content: str) -> Message:
        """A ``user`` message."""
        return cls(Role.USER, content)

    @classmethod
    def assistant(cls, content: str) -> Message:
        """An ``assistant`` message."""
        return cls(Role.ASSISTANT, content)

    @classmethod
    def system(cls, content: str) -> Message:
        """A ``system`` message."""
        return cls(Role.SYSTEM, content)

    @classmethod
    def tool(cls, content: str) -> Message:
        """A ``tool`` message (a tool's result)."""
        return cls(Role.TOOL, content)

    def to_json_value(self) -> dict[str, Any]:
        """The JSON form: ``role`` and ``content``, plus ``id``/``name``/``metadata`` when set."""
        value: dict[str, Any] = {"role": str(self.role), "content": self.content}
        if self.id is not None:
            value["id"] = self.id
        if self.name is not None:
            value["name"] = self.name
        if self.metadata:
            value["metadata"] = self.metadata
        return value

    @classmethod
    def from_json_value(cls, value: Mapping[str, Any]) -> Message:
        """The inverse of :meth:`to_json_value` (KeyError if ``role`` or ``content`` is missing)."""
        return cls(
            role=value["role"],
            content=value["content"],
            id=value.get("id"),
            name=value.get("name"),
            metadata=value.get("metadata") or EMPTY_DICT,
        )
