"""The barrier: where a superstep's node results become the new state.

A node's result is checked and frozen once where it enters the run (:func:`freeze_partial`); the
barrier then merges the step's partials **in frontier order** with the channel reducers and the
per-key ``extra`` reducers (:func:`merge_barrier`). What a user reducer raises becomes a
ReducerError naming the channel, key and node. Pure functions: no event loop, no storage.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, NamedTuple, cast

from ..errors import NonJsonValue, ReducerError, StateError
from ..graph.spec import GraphSpec
from ..partial import NodePartial
from ..reducers import Reducer, add_errors, add_messages, append, append_all, map_merge
from ..state import (
    ChannelType,
    ErrorEvent,
    FrozenDict,
    Message,
    StateSchema,
    VersionedState,
    freeze_json,
    make_versions,
)
from ..state._frozen import NotJson, freeze_mapping, frozen_dict_from
from ..state._versioned import trusted_state

__all__ = [
    "Barrier",
    "check_messages",
    "freeze_partial",
    "merge_barrier",
    "record_failure",
]

_CHANNELS = ("messages", "extra", "errors")


class Barrier(NamedTuple):
    """The merged state after a barrier and the channels whose content changed.

    (A named tuple: one is built per superstep, and a frozen dataclass costs several times as much
    to build.)"""

    state: VersionedState
    updated_channels: tuple[str, ...]


# --- where a node's result enters --------------------------------------------------------------


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
    extra = partial.extra
    if not extra or isinstance(extra, FrozenDict):
        return partial
    if type(extra) is not dict and not isinstance(extra, Mapping):  # pyright: ignore[reportUnnecessaryIsInstance]
        # Typed as a Mapping, but nodes are user code: a list would fail deep in the freezer.
        raise StateError(
            f"extra must be a mapping of str keys to JSON values, got {type(extra).__name__}"
        )
    try:
        frozen = freeze_mapping(extra)  # pyright: ignore[reportUnknownArgumentType]
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
    object.__setattr__(copy, "sends", partial.sends)
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


# --- the merge ---------------------------------------------------------------------------------


def merge_barrier(
    spec: GraphSpec,
    state: VersionedState,
    step: int,
    results: Sequence[tuple[str, NodePartial]],
    *,
    frozen: bool = False,
) -> Barrier:
    """Merge partials **in the given (frontier) order** into ``state``.

    Channel reducers run once per partial that writes the channel, in registration order; per-key
    ``extra`` reducers combine writes to their key (a ``None`` value deletes the key); errors get
    their node and step filled in. A channel's version increases by one iff its content changed.
    ``frozen=True``: every partial already went through :func:`freeze_partial` (the executor's).
    """
    message_updates: list[tuple[str, tuple[Any, ...]]] = []
    error_updates: list[tuple[str, tuple[ErrorEvent, ...]]] = []
    writes: list[tuple[str, Mapping[str, Any]]] = []
    for node, partial in results:
        if not frozen:
            partial = freeze_partial(node, partial, spec.state_schema)
        if partial.messages:
            message_updates.append((node, partial.messages))
        if partial.errors:
            error_updates.append((node, _stamp_errors(node, step, partial.errors)))
        if partial.extra:
            writes.append((node, partial.extra))
    messages, extra, errors = state.messages, state.extra, state.errors
    reducers = spec.reducers
    if message_updates:
        message_fns = reducers.for_channel(ChannelType.MESSAGES)
        messages = _merge_sequence(
            ChannelType.MESSAGES, message_fns, add_messages, messages, message_updates
        )
        if message_fns != (add_messages,) and messages is not state.messages:
            # A custom reducer may produce anything: check what it made (default merges only
            # concatenate messages already checked by freeze_partial).
            check_messages(messages)
    if error_updates:
        errors = _merge_sequence(
            ChannelType.ERRORS,
            reducers.for_channel(ChannelType.ERRORS),
            add_errors,
            errors,
            error_updates,
        )
    if writes:
        extra = _merge_extra(spec, extra, writes)
    bump_messages = _changed(state.messages, messages)
    bump_extra = _changed(state.extra, extra)
    bump_errors = _changed(state.errors, errors)
    if not (bump_messages or bump_extra or bump_errors):
        return Barrier(state, ())
    old = state.versions
    versions = make_versions(
        old["messages"] + bump_messages, old["extra"] + bump_extra, old["errors"] + bump_errors
    )
    # Every value is already checked and frozen: the previous state's, the partials' (by
    # freeze_partial) and the reducers' results (frozen in _merge_extra), so no re-validation.
    merged = trusted_state(messages, extra, errors, versions, state.schema)  # pyright: ignore[reportArgumentType]
    updated = tuple(
        ch
        for ch, bump in zip(_CHANNELS, (bump_messages, bump_extra, bump_errors), strict=True)
        if bump
    )
    return Barrier(merged, updated)


def record_failure(
    spec: GraphSpec, state: VersionedState, step: int, error: ErrorEvent
) -> VersionedState:
    """``state`` with a fatal error appended (nothing else of the failed step is merged).

    When the errors channel's own reducer is what fails, the error is appended without it, so
    the failure is still recorded.
    """
    try:
        return merge_barrier(
            spec, state, step, [(error.node_id or "", NodePartial(errors=(error,)))]
        ).state
    except ReducerError:
        versions = state.versions
        bumped = make_versions(versions["messages"], versions["extra"], versions["errors"] + 1)
        return trusted_state(
            state.messages,
            cast(FrozenDict, state.extra),
            (*state.errors, error),
            bumped,
            state.schema,
        )


def _changed(old: object, new: object) -> bool:
    return new is not old and new != old


def _stamp_errors(node: str, step: int, errors: tuple[ErrorEvent, ...]) -> tuple[ErrorEvent, ...]:
    if all(e.node_id is not None and e.step is not None for e in errors):
        return errors
    return tuple(
        replace(
            e,
            node_id=e.node_id if e.node_id is not None else node,
            step=e.step if e.step is not None else step,
        )
        for e in errors
    )


# --- reducer calls -----------------------------------------------------------------------------


def _merge_sequence(
    channel: str,
    fns: tuple[Reducer, ...],
    default: Reducer,
    current: tuple[Any, ...],
    updates: list[tuple[str, tuple[Any, ...]]],
) -> tuple[Any, ...]:
    if not updates:
        return current
    if fns == (default,):
        # Appending every update once is the same as appending them one by one, without the
        # quadratic copying.
        combined: tuple[Any, ...] = tuple(item for _, update in updates for item in update)
        node = updates[0][0] if len(updates) == 1 else ", ".join(n for n, _ in updates)
        return _reduce(default, current, combined, channel, None, node)
    for node, update in updates:
        for fn in fns:
            current = _reduce(fn, current, update, channel, None, node)
    return tuple(current)


def _reduce(
    fn: Reducer, current: Any, update: Any, channel: str, key: str | None, node: str
) -> Any:
    """Call a user reducer; what it raises fails the step as a ReducerError naming where."""
    try:
        return fn(current, update)
    except Exception as exc:
        raise ReducerError(channel, key, node, f"{type(exc).__name__}: {exc}") from exc


def _merge_extra(
    spec: GraphSpec, current: Mapping[str, Any], writes: Sequence[tuple[str, Mapping[str, Any]]]
) -> Mapping[str, Any]:
    fns = spec.reducers.for_channel(ChannelType.EXTRA)
    keyed = spec.extra_reducers
    if fns == (map_merge,):
        if len(writes) == 1 and not keyed and None not in writes[0][1].values():
            # One writer, no deletions, no per-key reducers: one C-level copy and update.
            single = FrozenDict(current)
            dict[str, Any].update(single, writes[0][1])  # (FrozenDict refuses update())
            return single
        return frozen_dict_from(_merge_keys(current, writes, keyed))
    merged_map: Mapping[str, Any] = current
    for node, update in writes:
        if keyed:
            update = {
                key: _reduce_key(keyed[key], merged_map.get(key), value, key, node)
                if key in keyed and value is not None
                else value
                for key, value in update.items()
            }
        for fn in fns:
            merged_map = _reduce(fn, merged_map, update, ChannelType.EXTRA, None, node)
    return merged_map if isinstance(merged_map, FrozenDict) else freeze_mapping(merged_map)


def _merge_keys(
    current: Mapping[str, Any],
    writes: Sequence[tuple[str, Mapping[str, Any]]],
    keyed: Mapping[str, Reducer],
) -> dict[str, Any]:
    """The default merge: later writes win, ``None`` deletes, per-key reducers combine.

    Appends to one key are gathered and applied once at the end, so N tasks appending to one
    list cost O(N) in total instead of rebuilding the list N times.
    """
    merged = dict(current)
    appends: dict[str, list[Any]] = {}
    for node, update in writes:
        for key, value in update.items():
            if value is None:
                merged.pop(key, None)
                appends.pop(key, None)  # deleted after them: those appends are gone too
                continue
            reducer = keyed.get(key) if keyed else None
            if reducer is append:
                appends.setdefault(key, []).append(value)
            elif reducer is not None:
                merged[key] = _reduce_key(reducer, merged.get(key), value, key, node)
            else:
                merged[key] = value
    for key, values in appends.items():
        merged[key] = append_all(merged.get(key), values)
    return merged


def _reduce_key(reducer: Reducer, current: Any, value: Any, key: str, node: str) -> Any:
    result = _reduce(reducer, current, value, ChannelType.EXTRA, key, node)
    try:
        return freeze_json(result, key)
    except NotJson as exc:
        raise NonJsonValue(key, f"the per-key reducer returned {exc.detail}", node) from None
