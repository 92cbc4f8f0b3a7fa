"""What a node returns: a partial update of the state plus an optional frontier command."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, TypeVar

from .state import ErrorEvent, Message, StateKey

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class FrontierCommand:
    """``replace``: run exactly ``targets`` next (skipping the node's edges); ``append``: add them."""

    kind: Literal["replace", "append"]
    targets: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.kind not in ("replace", "append"):
            raise ValueError(f"frontier command must be 'replace' or 'append', got {self.kind!r}")
        object.__setattr__(self, "targets", tuple(self.targets))


@dataclass(frozen=True, slots=True, kw_only=True)
class NodePartial:
    """A node's update. Every field is optional; builders return new objects.

    ``extra`` values are validated as JSON and frozen at the barrier (a non-JSON value is an error
    naming the key); a ``None`` value deletes the key (RFC 7396).
    """

    messages: tuple[Message, ...] = ()
    extra: Mapping[str, Any] | None = None
    errors: tuple[ErrorEvent, ...] = ()
    frontier: FrontierCommand | None = None

    def __post_init__(self) -> None:
        messages: Iterable[Message] = self.messages
        if not isinstance(messages, tuple):  # pyright: ignore[reportUnnecessaryIsInstance]
            object.__setattr__(self, "messages", tuple(messages))
        errors: Iterable[ErrorEvent] = self.errors
        if not isinstance(errors, tuple):  # pyright: ignore[reportUnnecessaryIsInstance]
            object.__setattr__(self, "errors", tuple(errors))

    def with_messages(self, messages: Sequence[Message]) -> NodePartial:
        return replace(self, messages=(*self.messages, *messages))

    def with_extra(self, extra: Mapping[str, Any]) -> NodePartial:
        return replace(self, extra={**(self.extra or {}), **extra})

    def with_errors(self, errors: Sequence[ErrorEvent]) -> NodePartial:
        return replace(self, errors=(*self.errors, *errors))

    def with_frontier_replace(self, nodes: Sequence[str]) -> NodePartial:
        return replace(self, frontier=FrontierCommand("replace", tuple(nodes)))

    def with_frontier_append(self, nodes: Sequence[str]) -> NodePartial:
        return replace(self, frontier=FrontierCommand("append", tuple(nodes)))

    def with_typed_extra(self, key: StateKey[T], value: T) -> NodePartial:
        return self.with_extra({key.storage_key: key.encode(value)})

    def clear_extra_keys(self, keys: Iterable[str]) -> NodePartial:
        return self.with_extra(dict.fromkeys(keys))

    def is_empty(self) -> bool:
        return not (self.messages or self.extra or self.errors or self.frontier)
