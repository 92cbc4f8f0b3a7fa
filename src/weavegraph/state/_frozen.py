"""Immutable JSON values: validated and frozen once, when written, then shared without copying."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any, NoReturn, SupportsIndex, TypeAlias, cast

JsonValue: TypeAlias = "bool | int | float | str | FrozenList | FrozenDict | None"


def _refuse(*_args: object, **_kwargs: object) -> NoReturn:
    raise TypeError("weavegraph state values are immutable; build a new value instead")


class FrozenDict(dict[str, Any]):
    """A ``dict`` that refuses mutation. Compares equal to plain dicts; serializes as a JSON object."""

    __slots__ = ()
    __setitem__ = _refuse
    __delitem__ = _refuse
    __ior__ = _refuse  # type: ignore[assignment]
    clear = _refuse
    pop = _refuse  # type: ignore[assignment]
    popitem = _refuse
    setdefault = _refuse  # type: ignore[assignment]
    update = _refuse  # type: ignore[assignment]

    def __reduce__(self) -> tuple[type[FrozenDict], tuple[dict[str, Any]]]:
        return (FrozenDict, (dict(self),))

    def __copy__(self) -> FrozenDict:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> FrozenDict:
        return self

    def __repr__(self) -> str:  # shown like the dict it equals (in reprs of typed state, too)
        return super().__repr__()

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(sorted(self.items(), key=lambda item: item[0])))


class FrozenList(list[Any]):
    """A ``list`` that refuses mutation. Compares equal to plain lists; serializes as a JSON array."""

    __slots__ = ()
    __setitem__ = _refuse  # type: ignore[assignment]
    __delitem__ = _refuse  # type: ignore[assignment]
    __iadd__ = _refuse  # type: ignore[assignment]
    __imul__ = _refuse  # type: ignore[assignment]
    append = _refuse
    extend = _refuse
    insert = _refuse
    remove = _refuse
    clear = _refuse
    reverse = _refuse
    sort = _refuse  # type: ignore[assignment]

    def pop(self, index: SupportsIndex = -1) -> NoReturn:
        _refuse()

    def __reduce__(self) -> tuple[type[FrozenList], tuple[list[Any]]]:
        return (FrozenList, (list(self),))

    def __copy__(self) -> FrozenList:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> FrozenList:
        return self

    def __repr__(self) -> str:  # shown like the list it equals
        return super().__repr__()

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(self))


EMPTY_DICT = FrozenDict()


class NotJson(ValueError):
    """Raised by :func:`freeze_json` with the path of the offending value."""

    def __init__(self, path: str, detail: str) -> None:
        super().__init__(f"{path}: {detail}" if path else detail)
        self.path = path
        self.detail = detail


def freeze_json(value: object, path: str = "") -> Any:
    """Validate that ``value`` is JSON and return it frozen. Already-frozen values are returned as-is."""
    if value is None or isinstance(value, (str, bool, int, FrozenDict, FrozenList)):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        raise NotJson(path, f"{value!r} is not a finite number")
    if isinstance(value, Mapping):
        return _freeze_mapping(value, path)  # pyright: ignore[reportUnknownArgumentType]
    if isinstance(value, (list, tuple)):
        items = cast("Iterable[object]", value)
        return FrozenList(freeze_json(item, f"{path}[{index}]") for index, item in enumerate(items))
    raise NotJson(path, f"{type(value).__name__} is not a JSON type")


_FROZEN_AS_IS = frozenset({str, int, bool, type(None), FrozenDict, FrozenList})


def _freeze_mapping(value: Mapping[object, object], path: str) -> FrozenDict:
    items: dict[str, Any] = {}
    for key, item in value.items():
        if not isinstance(key, str):
            raise NotJson(path, f"object key {key!r} is not a string")
        # Exact types that freeze_json returns unchanged skip the call (every node's extra
        # goes through here).
        items[key] = (
            item
            if type(item) in _FROZEN_AS_IS
            else freeze_json(item, f"{path}.{key}" if path else key)
        )
    return FrozenDict(items)


def freeze_mapping(value: Mapping[str, object]) -> FrozenDict:
    """Freeze a str-keyed mapping of JSON values (the shape of ``extra``)."""
    if isinstance(value, FrozenDict):
        return value
    return _freeze_mapping(value, "")  # pyright: ignore[reportArgumentType]


def frozen_dict_from(items: Iterable[tuple[str, Any]] | Mapping[str, Any]) -> FrozenDict:
    """Build a FrozenDict from values that are already frozen (no validation).

    ``dict.__init__`` fills it in C without going through the refused ``update`` (hot: every
    barrier builds one).
    """
    return FrozenDict(items)
