"""Where a node's result enters the run: its values checked and frozen once, before the barrier."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from .errors import NonJsonValue, StateError
from .partial import NodePartial
from .state import ErrorEvent, Message, StateSchema
from .state._frozen import FrozenDict, NotJson, freeze_mapping

__all__ = ["check_messages", "freeze_partial"]


def freeze_partial(
    node: str, partial: NodePartial, schema: StateSchema | None = None
) -> NodePartial:
    """``partial`` with its ``extra`` validated and frozen; NonJsonValue names the key and node.

    Also where new messages and errors are checked (once: the barrier then trusts every value it
    merges); a wrong type is a StateError naming it. Typed field writes (``update``) are
    validated against ``schema`` (a StateFieldError names the field) and join ``extra`` in their
    stored form.
    """
    if partial.messages:
        check_messages(partial.messages)
    if partial.errors:
        _check_errors(partial.errors)
    if partial.update:
        partial = _with_update_in_extra(node, partial, schema)
    extra = cast(object, partial.extra)
    if not extra or isinstance(extra, FrozenDict):
        return partial
    if type(extra) is not dict and not isinstance(extra, Mapping):
        # Typed as a Mapping, but nodes are user code: a list would fail deep in the freezer.
        raise StateError(
            f"extra must be a mapping of str keys to JSON values, got {type(extra).__name__}"
        )
    try:
        frozen = freeze_mapping(cast("Mapping[str, Any]", extra))
    except NotJson as exc:
        key = exc.path.split(".", 1)[0].split("[", 1)[0] if exc.path else "?"
        detail = exc.detail if exc.path in ("", key) else f"{exc.detail} (at {exc.path})"
        raise NonJsonValue(key, detail, node) from None
    # A new object (the node's own partial is left alone), its fields already checked: built
    # without re-running the constructor (this runs for every node that writes extra).
    return _copy(partial, frozen)


def _copy(partial: NodePartial, extra: Mapping[str, Any] | None) -> NodePartial:
    copy = object.__new__(NodePartial)
    object.__setattr__(copy, "messages", partial.messages)
    object.__setattr__(copy, "extra", extra)
    object.__setattr__(copy, "errors", partial.errors)
    object.__setattr__(copy, "frontier", partial.frontier)
    object.__setattr__(copy, "update", None)
    return copy


def _with_update_in_extra(
    node: str, partial: NodePartial, schema: StateSchema | None
) -> NodePartial:
    """The typed field writes moved into ``extra`` (validated when the graph has a schema)."""
    update = cast("Mapping[str, Any]", partial.update)
    if schema is not None:
        encoded = schema.encode_update(update, node)
    elif isinstance(update, Mapping):  # pyright: ignore[reportUnnecessaryIsInstance]
        encoded = dict(update)
    else:
        raise StateError(f"update must be a mapping of field names, got {type(update).__name__}")
    return _copy(partial, {**(partial.extra or {}), **encoded})


def check_messages(messages: tuple[object, ...]) -> None:
    """A StateError naming the type of the first item that is not a Message."""
    for message in messages:
        if not isinstance(message, Message):
            raise StateError(f"messages must be Message objects, got {type(message).__name__}")


def _check_errors(errors: tuple[object, ...]) -> None:
    for error in errors:
        if not isinstance(error, ErrorEvent):
            raise StateError(f"errors must be ErrorEvent objects, got {type(error).__name__}")
