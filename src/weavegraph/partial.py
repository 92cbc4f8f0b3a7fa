"""What a node returns: a partial update of the state plus an optional frontier command."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, TypeVar, cast

from .errors import StateError
from .state import ErrorEvent, Message, StateKey, freeze_json
from .state._frozen import NotJson

T = TypeVar("T")


def _sequence(field: str, value: object, items: str) -> tuple[Any, ...]:
    """``value`` as a tuple; a TypeError naming ``field`` unless it is a list-like of items."""
    kind = type(value).__name__
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        raise TypeError(f"{field} must be a sequence of {items}, got {kind}")
    return tuple(cast("Iterable[Any]", value))


@dataclass(frozen=True, slots=True)
class FrontierCommand:
    """``replace``: run exactly ``targets`` next (skipping the node's edges); ``append``: add them."""

    kind: Literal["replace", "append"]
    targets: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.kind not in ("replace", "append"):
            raise ValueError(f"frontier command must be 'replace' or 'append', got {self.kind!r}")
        targets = _sequence("FrontierCommand.targets", self.targets, "node ids")
        if not all(isinstance(target, str) for target in targets):
            kinds = sorted({type(t).__name__ for t in targets if not isinstance(t, str)})
            raise TypeError(f"FrontierCommand.targets must be node ids (str), got {kinds}")
        object.__setattr__(self, "targets", targets)


@dataclass(frozen=True, slots=True, init=False)
class Send:
    """One task of ``node`` in the next superstep, with its own ``input`` (read as ``ctx.input``).

    A router returns Sends (alone or mixed with node ids), a node returns them with
    :meth:`NodePartial.with_sends`. Every Send is its own task, never merged with another one to
    the same node. ``input`` must be JSON (it is checkpointed with the step); it is validated and
    frozen here, and a value that is not JSON is a TypeError naming the node.
    """

    node: str
    input: Any

    def __init__(self, node: str, input: Any = None) -> None:
        if not isinstance(node, str) or not node:  # pyright: ignore[reportUnnecessaryIsInstance]
            raise TypeError(f"Send needs a node id (a non-empty str), got {node!r}")
        try:
            frozen = freeze_json(input)
        except NotJson as exc:
            raise TypeError(f"the input of Send({node!r}, ...) must be JSON: {exc}") from None
        object.__setattr__(self, "node", node)
        object.__setattr__(self, "input", frozen)

    def __repr__(self) -> str:
        return f"Send({self.node!r}, {self.input!r})"


def _sends(value: object) -> tuple[Send, ...]:
    sends = _sequence("NodePartial.sends", value, "Send objects")
    for send in sends:
        if not isinstance(send, Send):
            raise TypeError(f"NodePartial.sends must be Send objects, got {type(send).__name__}")
    return sends


@dataclass(frozen=True, slots=True, init=False)
class NodePartial:
    """A node's update. Every field is optional; builders return new objects.

    ``messages`` and ``errors`` accept any sequence (a list is fine) and are stored as tuples.
    ``extra`` values are validated as JSON and frozen at the barrier (a non-JSON value is an error
    naming the key); a ``None`` value deletes the key (RFC 7396). ``update`` writes fields of the
    graph's typed state schema (``GraphBuilder(state=Schema)``), each validated against its
    declared type (a bad value fails the node naming the field); without a schema its keys are
    plain ``extra`` keys. ``sends`` are :class:`Send` tasks for the next superstep.
    """

    messages: tuple[Message, ...]
    extra: Mapping[str, Any] | None
    errors: tuple[ErrorEvent, ...]
    frontier: FrontierCommand | None
    update: Mapping[str, Any] | None
    sends: tuple[Send, ...]

    def __init__(
        self,
        *,
        messages: Sequence[Message] = (),
        extra: Mapping[str, Any] | None = None,
        errors: Sequence[ErrorEvent] = (),
        frontier: FrontierCommand | None = None,
        update: Mapping[str, Any] | None = None,
        sends: Sequence[Send] = (),
    ) -> None:
        # Written by hand (not the dataclass __init__) so the parameters can be Sequence while
        # the attributes stay tuples; ``dataclasses.replace`` calls this with the field names.
        # Nodes are untyped user code: a wrong kind of value is refused here, with its name,
        # rather than failing later inside the run. (Items are checked where results enter the
        # run, in freeze_partial.)
        set_ = object.__setattr__
        if type(messages) is not tuple:
            messages = _sequence("NodePartial.messages", messages, "Message objects")
        if type(errors) is not tuple:
            errors = _sequence("NodePartial.errors", errors, "ErrorEvent objects")
        if frontier is not None and not isinstance(cast(object, frontier), FrontierCommand):
            raise TypeError(
                "NodePartial.frontier must be None or a FrontierCommand (see "
                f"with_frontier_replace / with_frontier_append), got {type(frontier).__name__}"
            )
        set_(self, "messages", messages)
        set_(self, "extra", extra)
        set_(self, "errors", errors)
        set_(self, "frontier", frontier)
        set_(self, "update", update)
        set_(self, "sends", sends if sends == () else _sends(sends))

    def with_messages(self, messages: Sequence[Message]) -> NodePartial:
        """Append ``messages`` after the ones already in this update."""
        return replace(self, messages=(*self.messages, *messages))

    def with_extra(self, extra: Mapping[str, Any]) -> NodePartial:
        """Add ``extra`` keys; a key given again takes the new value (None deletes the key)."""
        return replace(self, extra={**(self.extra or {}), **extra})

    def with_update(self, update: Mapping[str, Any] | None = None, **fields: Any) -> NodePartial:
        """Write typed state fields (a mapping and/or keywords); a field given again takes the
        new value."""
        return replace(self, update={**(self.update or {}), **(update or {}), **fields})

    def with_errors(self, errors: Sequence[ErrorEvent]) -> NodePartial:
        """Append recoverable errors (the run goes on; they land in the ``errors`` channel)."""
        return replace(self, errors=(*self.errors, *errors))

    def with_frontier_replace(self, nodes: Sequence[str]) -> NodePartial:
        """Run exactly ``nodes`` next, instead of this node's edges."""
        return replace(self, frontier=FrontierCommand("replace", tuple(nodes)))

    def with_frontier_append(self, nodes: Sequence[str]) -> NodePartial:
        """Run ``nodes`` next in addition to this node's edges."""
        return replace(self, frontier=FrontierCommand("append", tuple(nodes)))

    def with_sends(self, sends: Sequence[Send]) -> NodePartial:
        """Start these :class:`Send` tasks in the next superstep (after the ones already here)."""
        return replace(self, sends=(*self.sends, *_sends(sends)))

    def with_typed_extra(self, key: StateKey[T], value: T) -> NodePartial:
        """Write ``value`` to a typed slot (validated now; TypedSlotError if it does not fit)."""
        return self.with_extra({key.storage_key: key.encode(value)})

    def clear_extra_keys(
        self, keys: str | StateKey[Any] | Iterable[str | StateKey[Any]]
    ) -> NodePartial:
        """Delete extra keys: one key (a str or a StateKey) or an iterable of them."""
        if isinstance(keys, (str, StateKey)):
            keys = (keys,)
        names = [key.storage_key if isinstance(key, StateKey) else key for key in keys]
        return self.with_extra(dict.fromkeys(names))

    def is_empty(self) -> bool:
        """True if this update changes nothing and gives no frontier command."""
        return not (
            self.messages or self.extra or self.errors or self.frontier or self.update or self.sends
        )

    def to_json_value(self) -> dict[str, Any]:
        """The JSON form :meth:`from_json_value` reads: the ``messages``, ``extra`` and
        ``errors`` this update writes (frontier commands, sends and the ``update`` mapping have
        no JSON form and are left out)."""
        value: dict[str, Any] = {}
        if self.messages:
            value["messages"] = [message.to_json_value() for message in self.messages]
        if self.extra:
            value["extra"] = dict(self.extra)
        if self.errors:
            value["errors"] = [error.to_json_value() for error in self.errors]
        return value

    @classmethod
    def from_json_value(cls, value: object) -> NodePartial:
        """An update from its JSON form ``{"messages"?, "extra"?, "errors"?}`` (as the web API and
        ``weavegraph sessions edit`` take it): messages and errors in the JSON form of
        :class:`Message` / :class:`ErrorEvent`. A StateError names what is wrong."""
        if not isinstance(value, Mapping):
            raise StateError(f"an update is a JSON object, got {type(value).__name__}")
        fields = cast("Mapping[str, Any]", value)
        unknown = sorted(str(key) for key in fields if key not in _PARTIAL_KEYS)
        if unknown:
            raise StateError(
                f"unknown update key(s) {unknown}; an update takes {list(_PARTIAL_KEYS)}"
            )
        extra = fields.get("extra")
        if extra is not None and not isinstance(extra, Mapping):
            raise StateError(f'"extra" must be an object, got {type(extra).__name__}')
        return cls(
            messages=_items(fields, "messages", Message.from_json_value),
            extra=cast("Mapping[str, Any] | None", extra),
            errors=_items(fields, "errors", ErrorEvent.from_json_value),
        )


_PARTIAL_KEYS = ("messages", "extra", "errors")


def _items(fields: Mapping[str, Any], key: str, parse: Callable[[Mapping[str, Any]], T]) -> list[T]:
    """``fields[key]`` as a list of parsed items; a StateError naming the key and the item."""
    raw = fields.get(key)
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise StateError(f'"{key}" must be a list, got {type(raw).__name__}')
    items: list[T] = []
    for index, item in enumerate(cast("list[Any]", raw)):
        if not isinstance(item, Mapping):
            raise StateError(f'"{key}"[{index}] must be an object, got {type(item).__name__}')
        try:
            items.append(parse(cast("Mapping[str, Any]", item)))
        except KeyError as exc:
            raise StateError(f'"{key}"[{index}] lacks {exc}') from None
        except (TypeError, ValueError) as exc:
            raise StateError(f'"{key}"[{index}]: {exc}') from None
    return items
