"""Versioned state: the three channels, their versions, read-only snapshots, JSON round-trip."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar, cast

from ..errors import NonJsonValue, StateError, TypedSlotError
from ._error_event import ErrorEvent
from ._frozen import EMPTY_DICT, FrozenDict, NotJson, freeze_mapping, frozen_dict_from
from ._message import Message
from ._schema import StateSchema, to_json_fields
from ._typed import StateKey

T = TypeVar("T")


class ChannelType(StrEnum):
    """The three state channels."""

    MESSAGES = "messages"
    EXTRA = "extra"
    ERRORS = "errors"


INITIAL_VERSIONS = frozen_dict_from((("messages", 1), ("extra", 1), ("errors", 1)))


def make_versions(messages: int, extra: int, errors: int) -> FrozenDict:
    """The ``versions`` mapping of a state (one integer per channel)."""
    return frozen_dict_from((("messages", messages), ("extra", extra), ("errors", errors)))


def freeze_extra(extra: Mapping[str, object]) -> FrozenDict:
    """Validate and freeze an ``extra`` mapping, naming the key of a non-JSON value."""
    try:
        return freeze_mapping(extra)
    except NotJson as exc:
        detail = exc.detail if exc.path in ("", exc.key) else f"{exc.detail} (at {exc.path})"
        raise NonJsonValue(exc.key, detail) from None


class _StateView:
    """Read access shared by VersionedState and StateSnapshot."""

    __slots__ = ()
    extra: Mapping[str, Any]
    schema: StateSchema | None
    _typed: Any

    @property
    def state(self) -> Any:
        """The typed state: a frozen, validated instance of the graph's state schema.

        Built once per state (then shared); a StateError when the graph has no schema, a
        StateFieldError naming the field when a stored value does not validate.
        """
        typed = self._typed
        if typed is not None:
            return typed
        schema = self.schema
        if schema is None:
            raise StateError(
                "this state has no typed schema: build the graph with GraphBuilder(state=Schema) "
                "or the state with VersionedState.builder().with_state(...)"
            )
        typed = schema.read(self.extra)
        object.__setattr__(self, "_typed", typed)
        return typed

    def get_typed(self, key: StateKey[T]) -> T | None:
        """The typed slot's value, or None when it was never written."""
        return key.read(self.extra)

    def require_typed(self, key: StateKey[T]) -> T:
        """The typed slot's value; a TypedSlotError when it is missing."""
        value = key.read(self.extra)
        if value is None:
            raise TypedSlotError(key.storage_key, "required but not present in extra")
        return value


@dataclass(frozen=True, slots=True)
class StateSnapshot(_StateView):
    """An immutable view of the state that nodes and routers read. Sharing it costs nothing."""

    messages: tuple[Message, ...]
    extra: Mapping[str, Any]
    errors: tuple[ErrorEvent, ...]
    versions: Mapping[str, int]
    schema: StateSchema | None = field(default=None, kw_only=True, compare=False, repr=False)
    _typed: Any = field(default=None, init=False, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class VersionedState(_StateView):
    """The workflow state: ``messages``, ``extra`` and ``errors`` channels, each with a version."""

    messages: tuple[Message, ...] = ()
    extra: Mapping[str, Any] = field(default=EMPTY_DICT)
    errors: tuple[ErrorEvent, ...] = ()
    versions: Mapping[str, int] = field(default=INITIAL_VERSIONS)
    schema: StateSchema | None = field(default=None, kw_only=True, compare=False, repr=False)
    """The typed state schema ``state`` reads (set by runs of a graph built with one)."""
    _typed: Any = field(default=None, init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        messages: Iterable[Message] = self.messages
        if not isinstance(messages, tuple):  # pyright: ignore[reportUnnecessaryIsInstance]
            object.__setattr__(self, "messages", tuple(messages))
        for message in self.messages:
            if not isinstance(message, Message):  # pyright: ignore[reportUnnecessaryIsInstance]
                raise StateError(f"messages must be Message objects, got {type(message).__name__}")
        errors: Iterable[ErrorEvent] = self.errors
        if not isinstance(errors, tuple):  # pyright: ignore[reportUnnecessaryIsInstance]
            object.__setattr__(self, "errors", tuple(errors))
        object.__setattr__(self, "extra", freeze_extra(self.extra))
        versions = _checked_versions(self.versions)
        object.__setattr__(self, "versions", versions)
        if set(versions) != {"messages", "extra", "errors"}:
            raise StateError(
                f"versions must name messages, extra and errors, got {sorted(versions)}"
            )

    # --- constructors ----------------------------------------------------------------------

    @classmethod
    def new_with_user_message(cls, text: str) -> VersionedState:
        """A fresh state (every version 1) holding one user message."""
        return cls(messages=(Message.user(text),))

    @classmethod
    def new_with_messages(cls, messages: Sequence[Message]) -> VersionedState:
        """A fresh state (every version 1) holding ``messages``."""
        return cls(messages=tuple(messages))

    @staticmethod
    def builder() -> VersionedStateBuilder:
        """A builder for a fresh state with messages, extra and errors."""
        return VersionedStateBuilder()

    # --- views -----------------------------------------------------------------------------

    def snapshot(self) -> StateSnapshot:
        """A read-only view sharing this state's (immutable) values: O(1)."""
        return StateSnapshot(
            self.messages, self.extra, self.errors, self.versions, schema=self.schema
        )

    def with_schema(self, schema: StateSchema | None) -> VersionedState:
        """This state reading ``state`` through ``schema`` (O(1): the values are shared)."""
        if schema is self.schema:
            return self
        return trusted_state(
            self.messages,
            cast(FrozenDict, self.extra),
            self.errors,
            cast(FrozenDict, self.versions),
            schema,
        )

    # --- JSON ------------------------------------------------------------------------------

    def to_json_value(self) -> dict[str, Any]:
        """The JSON form :meth:`from_json_value` reads back: the three channels and ``versions``."""
        return {
            "messages": [message.to_json_value() for message in self.messages],
            "extra": self.extra,
            "errors": [error.to_json_value() for error in self.errors],
            "versions": self.versions,
        }

    @classmethod
    def from_json_value(cls, value: Mapping[str, Any]) -> VersionedState:
        """Rebuild a state from :meth:`to_json_value` output; a StateError names what is wrong."""
        if not isinstance(value, Mapping):  # pyright: ignore[reportUnnecessaryIsInstance]
            raise StateError(f"state JSON must be an object, got {type(value).__name__}")
        unknown = sorted(str(key) for key in value if key not in _STATE_JSON_KEYS)
        if unknown:  # a typo such as {"extras": ...} must not silently give an empty state
            raise StateError(
                f"unknown state JSON key(s) {unknown}; expected only {sorted(_STATE_JSON_KEYS)}"
            )
        messages = _decode_list(value, "messages", Message.from_json_value)
        errors = _decode_list(value, "errors", ErrorEvent.from_json_value)
        extra: object = value.get("extra") or {}
        if not isinstance(extra, Mapping):
            raise StateError(f"malformed state JSON: extra must be an object, got {_kind(extra)}")
        versions: object = value.get("versions") or INITIAL_VERSIONS
        if not isinstance(versions, Mapping):
            raise StateError(
                f"malformed state JSON: versions must be an object, got {_kind(versions)}"
            )
        return cls(
            messages=messages,
            extra=freeze_extra(cast("Mapping[str, object]", extra)),
            errors=errors,
            versions=cast("Mapping[str, int]", versions),
        )


def _checked_versions(raw: Mapping[str, int]) -> FrozenDict:
    if not isinstance(raw, Mapping):  # pyright: ignore[reportUnnecessaryIsInstance]
        raise StateError(f"versions must be an object, got {_kind(raw)}")
    for key, version in raw.items():
        if type(version) is not int or not 1 <= version < 1 << 63:
            raise StateError(f"versions[{key!r}] must be an int >= 1, got {version!r:.40}")
    return frozen_dict_from((str(key), version) for key, version in raw.items())


def _kind(value: object) -> str:
    return type(value).__name__


def _decode_list(value: Mapping[str, Any], key: str, decode: Callable[[Any], T]) -> tuple[T, ...]:
    """``value[key]`` decoded item by item; a StateError names the item and what it lacks."""
    items: object = value.get(key) or ()
    if not isinstance(items, list | tuple):
        raise StateError(f"malformed state JSON: {key} must be a list, got {_kind(items)}")
    decoded: list[T] = []
    for index, item in enumerate(cast("Sequence[object]", items)):
        if not isinstance(item, Mapping):
            raise StateError(
                f"malformed state JSON: {key}[{index}] must be an object, got {_kind(item)}"
            )
        try:
            decoded.append(decode(item))
        except KeyError as exc:
            raise StateError(f"malformed state JSON: {key}[{index}] has no {exc}") from exc
        except (TypeError, ValueError, AttributeError) as exc:
            raise StateError(f"malformed state JSON: {key}[{index}]: {exc}") from exc
    return tuple(decoded)


_STATE_JSON_KEYS = frozenset({"messages", "extra", "errors", "versions"})


def trusted_state(
    messages: tuple[Message, ...],
    extra: FrozenDict,
    errors: tuple[ErrorEvent, ...],
    versions: FrozenDict,
    schema: StateSchema | None = None,
) -> VersionedState:
    """A VersionedState from values the caller already validated and froze (internal).

    The barrier builds one per superstep from the previous state's values plus new writes that
    were validated once, where they entered (``runtime.barrier.freeze_partial``); re-checking every message here
    would make each step cost grow with the size of the state.
    """
    state = _new(VersionedState)
    _set(state, "messages", messages)
    _set(state, "extra", extra)
    _set(state, "errors", errors)
    _set(state, "versions", versions)
    _set(state, "schema", schema)
    _set(state, "_typed", None)
    return state


_new = object.__new__
_set = object.__setattr__


class VersionedStateBuilder:
    """Fluent construction of an initial state."""

    def __init__(self) -> None:
        self._messages: list[Message] = []
        self._extra: dict[str, object] = {}
        self._errors: list[ErrorEvent] = []
        self._schema: StateSchema | None = None

    def with_user_message(self, text: str) -> VersionedStateBuilder:
        """Append a user message."""
        self._messages.append(Message.user(text))
        return self

    def with_assistant_message(self, text: str) -> VersionedStateBuilder:
        """Append an assistant message."""
        self._messages.append(Message.assistant(text))
        return self

    def with_system_message(self, text: str) -> VersionedStateBuilder:
        """Append a system message."""
        self._messages.append(Message.system(text))
        return self

    def with_message(self, message: Message) -> VersionedStateBuilder:
        """Append any message."""
        self._messages.append(message)
        return self

    def with_extra(self, key: str, value: object) -> VersionedStateBuilder:
        """Set an ``extra`` key (validated as JSON by :meth:`build`)."""
        self._extra[key] = value
        return self

    def with_typed_extra(self, key: StateKey[T], value: T) -> VersionedStateBuilder:
        """Set a typed slot (validated now; TypedSlotError if it does not fit)."""
        self._extra[key.storage_key] = key.encode(value)
        return self

    def with_state(self, value: object) -> VersionedStateBuilder:
        """Set the fields of a typed state: an instance of a pydantic model or dataclass (each
        field validated and stored in ``extra`` under its name), or a TypedDict's dict."""
        if isinstance(value, Mapping):
            self._extra.update(to_json_fields(cast("Mapping[str, Any]", value)))
            return self
        schema = StateSchema.of(type(value))
        self._extra.update(schema.encode_instance(value))
        self._schema = schema
        return self

    def with_error(self, error: ErrorEvent) -> VersionedStateBuilder:
        """Append an error event."""
        self._errors.append(error)
        return self

    def build(self) -> VersionedState:
        """The state, every version 1; NonJsonValue names an ``extra`` key that is not JSON."""
        return VersionedState(
            messages=tuple(self._messages),
            extra=freeze_extra(self._extra),
            errors=tuple(self._errors),
            schema=self._schema,
        )
