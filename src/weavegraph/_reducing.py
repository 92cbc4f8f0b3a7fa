"""The barrier's reducer calls (SPEC §3.2): channel reducers over each partial's update and
per-key ``extra`` reducers; what a user reducer raises becomes a ReducerError naming where."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .errors import NonJsonValue, ReducerError
from .graph.spec import GraphSpec
from .reducers import Reducer, append, append_all, map_merge
from .state import ChannelType, FrozenDict, freeze_json
from .state._frozen import NotJson, freeze_mapping, frozen_dict_from

__all__ = ["merge_extra", "merge_sequence"]


def merge_sequence(
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


def merge_extra(
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
