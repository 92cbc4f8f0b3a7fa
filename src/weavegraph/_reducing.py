"""The barrier's reducer calls (SPEC §3.2): channel reducers over each partial's update and
per-key ``extra`` reducers; what a user reducer raises becomes a ReducerError naming where."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .errors import NonJsonValue, ReducerError
from .graph.spec import GraphSpec
from .reducers import Reducer, map_merge
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
        return default(current, combined)
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
        merged = dict(current)
        for node, update in writes:
            for key, value in update.items():
                if value is None:
                    merged.pop(key, None)
                    continue
                reducer = keyed.get(key) if keyed else None
                if reducer is not None:
                    value = _reduce_key(reducer, merged.get(key), value, key, node)
                merged[key] = value
        return frozen_dict_from(merged)
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


def _reduce_key(reducer: Reducer, current: Any, value: Any, key: str, node: str) -> Any:
    result = _reduce(reducer, current, value, ChannelType.EXTRA, key, node)
    try:
        return freeze_json(result, key)
    except NotJson as exc:
        raise NonJsonValue(key, f"the per-key reducer returned {exc.detail}", node) from None
