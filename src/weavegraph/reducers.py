"""Reducers: plain functions ``(current, update) -> new`` that merge node updates into a channel.

Channel reducers run at the barrier, once per partial, in frontier order. Per-key reducers for
``extra`` (``GraphBuilder.with_extra_reducer``) combine concurrent writes to one key.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias, cast

from .state import ChannelType, ErrorEvent, FrozenDict, FrozenList, Message, freeze_json
from .state._frozen import frozen_dict_from
from .state._remove import REMOVE_ROLE

Reducer: TypeAlias = Callable[[Any, Any], Any]
"""A channel or per-key reducer: ``(current, update) -> new``. It must not mutate its inputs."""

__all__ = [
    "Reducer",
    "ReducerRegistry",
    "add_errors",
    "add_messages",
    "append",
    "append_all",
    "map_merge",
    "replace",
    "sum_numbers",
    "merge_objects",
]


def add_messages(current: tuple[Message, ...], update: Sequence[Message]) -> tuple[Message, ...]:
    """Append the update's messages; one whose ``id`` is already there replaces that message
    (in place), and ``wg.RemoveMessage(id)`` deletes it. Messages without an id append.

    O(len(current) + len(update)): the ids are indexed once per call, never per message.
    """
    if not update:
        return current
    if all(message.id is None for message in update):
        return (*current, *update)
    merged: list[Message | None] = list(current)
    index = {message.id: i for i, message in enumerate(current) if message.id is not None}
    for message in update:
        at = index.get(message.id) if message.id is not None else None
        if message.role == REMOVE_ROLE:
            if at is None:
                raise ValueError(f"RemoveMessage: no message with id {message.id!r} to remove")
            merged[at] = None
            del index[cast(str, message.id)]
        elif at is not None:
            merged[at] = message
        else:
            if message.id is not None:
                index[message.id] = len(merged)
            merged.append(message)
    return tuple(message for message in merged if message is not None)


def add_errors(
    current: tuple[ErrorEvent, ...], update: Sequence[ErrorEvent]
) -> tuple[ErrorEvent, ...]:
    """Append the update's errors."""
    if not update:
        return current
    return (*current, *update)


def map_merge(current: Mapping[str, Any], update: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """Shallow merge (RFC 7396 at the top level): later values win, ``None`` deletes the key."""
    if not update:
        return current
    merged = dict(current)
    for key, value in update.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = freeze_json(value)
    return frozen_dict_from(merged.items())


def append(current: Any, update: Any) -> FrozenList:
    """Per-key reducer: concatenate lists (a non-list update is appended as one item)."""
    return append_all(current, (update,))


def append_all(current: Any, updates: Sequence[Any]) -> FrozenList:
    """``append`` of several updates at once, copying the list once (the barrier's batch form)."""
    items: list[Any] = []
    if isinstance(current, list):
        items.extend(cast("list[Any]", current))
    elif current is not None:
        items.append(current)
    for update in updates:
        if isinstance(update, list):
            items.extend(cast("list[Any]", update))
        else:
            items.append(update)
    if (current is None or type(cast(object, current)) is FrozenList) and all(
        type(u) in _FROZEN_ITEMS or type(u) is FrozenList for u in updates
    ):
        # Every item is already frozen JSON (the current list and what nodes wrote were checked
        # where they entered): only the new container is built.
        return FrozenList(items)
    return freeze_json(items)


_FROZEN_ITEMS = frozenset({str, int, bool, FrozenDict})


def replace(current: Any, update: Any) -> Any:
    """Per-key reducer: the update wins (the default behaviour, spelled out)."""
    return update


def sum_numbers(current: Any, update: Any) -> Any:
    """Per-key reducer: add numbers (a missing current value counts as 0)."""
    return (current or 0) + update


def merge_objects(current: Any, update: Any) -> FrozenDict:
    """Per-key reducer: shallow-merge JSON objects."""
    base: Mapping[str, Any] = (
        cast("Mapping[str, Any]", current) if isinstance(current, Mapping) else {}
    )
    return freeze_json({**base, **update})


def _default_channel_reducers() -> dict[ChannelType, tuple[Reducer, ...]]:
    return {
        ChannelType.MESSAGES: (add_messages,),
        ChannelType.EXTRA: (map_merge,),
        ChannelType.ERRORS: (add_errors,),
    }


def _channel(name: ChannelType | str) -> ChannelType:
    """``name`` as a ChannelType; a ValueError listing the channels otherwise."""
    try:
        return ChannelType(name)
    except ValueError:
        valid = ", ".join(repr(c.value) for c in ChannelType)
        raise ValueError(f"unknown channel {name!r}: the channels are {valid}") from None


@dataclass(frozen=True, slots=True)
class ReducerRegistry:
    """Channel reducers, applied in registration order. Defaults: append, merge, append.

    ``ReducerRegistry({ChannelType.MESSAGES: (dedupe,)})`` replaces the reducers of the channels
    it names; a channel it does not name keeps its default (a channel without any reducer would
    silently drop every write to it). Name a channel with ``()``, or start from :meth:`empty`,
    to really have none.
    """

    channels: Mapping[ChannelType, tuple[Reducer, ...]] = field(
        default_factory=_default_channel_reducers
    )

    def __post_init__(self) -> None:
        normalized = _default_channel_reducers()
        normalized.update({_channel(ch): tuple(fns) for ch, fns in self.channels.items()})
        object.__setattr__(self, "channels", normalized)

    @classmethod
    def empty(cls) -> ReducerRegistry:
        """No reducer on any channel (build up with :meth:`with_reducer`)."""
        return cls(dict.fromkeys(ChannelType, ()))

    def with_reducer(self, channel: ChannelType | str, reducer: Reducer) -> ReducerRegistry:
        """A new registry with ``reducer`` appended to ``channel``'s reducers."""
        key = _channel(channel)
        channels = dict(self.channels)
        channels[key] = (*channels.get(key, ()), reducer)
        return ReducerRegistry(channels)

    def for_channel(self, channel: ChannelType) -> tuple[Reducer, ...]:
        """The reducers of ``channel``, in the order they run."""
        return self.channels.get(channel, ())
