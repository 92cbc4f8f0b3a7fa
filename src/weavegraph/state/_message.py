"""Chat messages: the ``messages`` channel's items, and the tool calls an assistant asks for."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, cast

from ._frozen import EMPTY_DICT, NotJson, freeze_mapping, text_problem


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
class ToolCall:
    """A tool call an assistant message asks for: the call's ``id`` (the tool's answer carries it
    as ``tool_call_id``), the tool's ``name`` and its ``arguments`` (a JSON object, frozen)."""

    id: str
    name: str
    arguments: Mapping[str, Any] = field(default=EMPTY_DICT)

    def __post_init__(self) -> None:
        for attr in ("id", "name"):
            value: object = getattr(self, attr)
            if not isinstance(value, str) or not value:
                raise TypeError(f"ToolCall.{attr} must be a non-empty string, got {value!r}")
        arguments: object = self.arguments
        if not isinstance(arguments, Mapping):  # pyright: ignore[reportUnnecessaryIsInstance]
            raise TypeError(
                f"ToolCall.arguments must be a JSON object (a dict), got {type(arguments).__name__}"
            )
        try:
            frozen = freeze_mapping(cast("Mapping[str, object]", arguments))
        except NotJson as exc:
            raise TypeError(f"ToolCall.arguments of {self.name!r} is not JSON: {exc}") from None
        object.__setattr__(self, "arguments", frozen)

    def to_json_value(self) -> dict[str, Any]:
        """The JSON form: ``{"id", "name", "arguments"}``."""
        return {"id": self.id, "name": self.name, "arguments": self.arguments}

    @classmethod
    def from_json_value(cls, value: Mapping[str, Any]) -> ToolCall:
        """The inverse of :meth:`to_json_value` (KeyError if ``id`` or ``name`` is missing)."""
        return cls(id=value["id"], name=value["name"], arguments=value.get("arguments") or {})


def _tool_calls(calls: object) -> tuple[ToolCall, ...]:
    """``calls`` as a tuple of ToolCall (a list, or their JSON forms, are accepted)."""
    if isinstance(calls, str | bytes | Mapping) or not isinstance(calls, Iterable):
        raise TypeError(f"Message.tool_calls must be a list of ToolCall, got {calls!r}")
    converted: list[ToolCall] = []
    for call in cast("Iterable[object]", calls):
        if isinstance(call, ToolCall):
            converted.append(call)
        elif isinstance(call, Mapping):
            converted.append(ToolCall.from_json_value(cast("Mapping[str, Any]", call)))
        else:
            raise TypeError(f"Message.tool_calls items must be ToolCall objects, got {call!r}")
    return tuple(converted)


@dataclass(frozen=True, slots=True)
class Message:
    """One message: a role, its content, and optional id, name and JSON metadata.

    An assistant message may ask for ``tool_calls``; a ``tool`` message answering one of them
    carries its id as ``tool_call_id``.
    """

    role: str
    content: str
    id: str | None = None
    name: str | None = None
    metadata: Mapping[str, Any] = field(default=EMPTY_DICT)
    tool_calls: Sequence[ToolCall] = ()
    """The calls asked for; given as any sequence, stored as a tuple."""
    tool_call_id: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.role, str) or not self.role:  # pyright: ignore[reportUnnecessaryIsInstance]
            raise TypeError(f"Message.role must be a non-empty string, got {self.role!r}")
        if not isinstance(self.content, str):  # pyright: ignore[reportUnnecessaryIsInstance]
            raise TypeError(f"Message.content must be a string, got {type(self.content).__name__}")
        _check_text("content", self.content)
        _check_text("role", self.role)
        _check_text("id", self.id)
        _check_text("name", self.name)
        _check_text("tool_call_id", self.tool_call_id)
        object.__setattr__(self, "role", _normalize_role(self.role))
        metadata = freeze_mapping(self.metadata) if self.metadata else EMPTY_DICT
        object.__setattr__(self, "metadata", metadata)
        if self.tool_calls:
            object.__setattr__(self, "tool_calls", _tool_calls(self.tool_calls))
        elif self.tool_calls != ():
            object.__setattr__(self, "tool_calls", ())
        call_id = self.tool_call_id
        if call_id is not None and (not isinstance(call_id, str) or not call_id):  # pyright: ignore[reportUnnecessaryIsInstance]
            raise TypeError(f"Message.tool_call_id must be a non-empty string, got {call_id!r}")

    @classmethod
    def with_role(cls, role: str, content: str) -> Message:
        """A message with any role string (the Role values or a custom one)."""
        return cls(role, content)

    @classmethod
    def user(cls, content: str) -> Message:
        """A ``user`` message."""
        return cls(Role.USER, content)

    @classmethod
    def assistant(cls, content: str, *, tool_calls: Iterable[ToolCall] = ()) -> Message:
        """An ``assistant`` message, optionally asking for ``tool_calls``."""
        return cls(Role.ASSISTANT, content, tool_calls=tuple(tool_calls))

    @classmethod
    def system(cls, content: str) -> Message:
        """A ``system`` message."""
        return cls(Role.SYSTEM, content)

    @classmethod
    def tool(
        cls, content: str, tool_call_id: str | None = None, *, name: str | None = None
    ) -> Message:
        """A ``tool`` message: a tool's result, answering the call ``tool_call_id``."""
        return cls(Role.TOOL, content, name=name, tool_call_id=tool_call_id)

    def to_json_value(self) -> dict[str, Any]:
        """The JSON form: ``role`` and ``content``, plus ``id``, ``name``, ``metadata``,
        ``tool_calls`` and ``tool_call_id`` when set."""
        value: dict[str, Any] = {"role": str(self.role), "content": self.content}
        if self.id is not None:
            value["id"] = self.id
        if self.name is not None:
            value["name"] = self.name
        if self.metadata:
            value["metadata"] = self.metadata
        if self.tool_calls:
            value["tool_calls"] = [call.to_json_value() for call in self.tool_calls]
        if self.tool_call_id is not None:
            value["tool_call_id"] = self.tool_call_id
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
            tool_calls=tuple(
                ToolCall.from_json_value(call) for call in value.get("tool_calls") or ()
            ),
            tool_call_id=value.get("tool_call_id"),
        )
