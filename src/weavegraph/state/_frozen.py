"""Immutable JSON values: checked and frozen once, where they enter, then shared without copying.

This module is the one rule for what weavegraph can store ("storable JSON"): ``None``, bools, ints
within signed 64 bits, finite floats, strings without UTF-16 surrogate code points, and lists or
str-keyed mappings of those nested at most ``MAX_JSON_DEPTH`` levels. Every stored document
(checkpoints, events) is built from such values, so both databases' JSON codecs accept it and
reading it back never fails. The walk is iterative: no input, however deep, exhausts the stack.

``freeze_json``/``freeze_mapping`` refuse a bad value with ``NotJson`` naming its path (state:
the barrier, ``from_json_value``, decoders); ``storable_json`` repairs one instead (event
metadata: emitting never fails); ``text_problem``/``repair_text`` do the same for one string.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Final, NoReturn, SupportsIndex, TypeAlias, cast

JsonValue: TypeAlias = "bool | int | float | str | FrozenList | FrozenDict | None"


def _refuse(*_args: object, **_kwargs: object) -> NoReturn:
    raise TypeError("weavegraph state values are immutable; build a new value instead")


class FrozenDict(dict[str, Any]):
    """A ``dict`` that refuses mutation. Compares equal to plain dicts; serializes as a JSON object."""

    __slots__ = ("_depth",)  # how deeply it nests, when measured as it was frozen
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

    __slots__ = ("_depth",)  # how deeply it nests, when measured as it was frozen
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


def known_depth(value: FrozenDict | FrozenList) -> int | None:
    """How deeply ``value`` nests, when it was measured as it was frozen (else None)."""
    depth: int | None = getattr(value, "_depth", None)
    return depth


def frozen_dict_from(items: Iterable[tuple[str, Any]] | Mapping[str, Any]) -> FrozenDict:
    """Build a FrozenDict from values that are already frozen (no validation).

    ``dict.__init__`` fills it in C without going through the refused ``update`` (hot: every
    barrier builds one).
    """
    return FrozenDict(items)


# --- the storable JSON rule ---------------------------------------------------------------------

MAX_JSON_DEPTH: Final = 100
"""How many levels containers may nest in one value (``[[1]]`` is 2 deep), for a value of
``extra``, event metadata, message metadata or an interrupt question. Deeper values are refused
where they enter, so every stored document stays well inside the JSON codecs' limits."""

_INT_MIN: Final = -(1 << 63)
_INT_MAX: Final = (1 << 63) - 1


class NotJson(ValueError):
    """A value that is not storable JSON: ``path`` says where (``key.sub[0]``), ``detail`` why."""

    def __init__(self, path: str, detail: str) -> None:
        super().__init__(f"{path}: {detail}" if path else detail)
        self.path = path
        self.detail = detail

    @property
    def key(self) -> str:
        """The first element of the path (the ``extra`` key when a mapping was frozen)."""
        return self.path.split(".", 1)[0].split("[", 1)[0] if self.path else "?"


def text_problem(text: str) -> str | None:
    """Why ``text`` cannot be stored (a UTF-16 surrogate code point), or None when it can."""
    if text.isascii():
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        code = ord(text[exc.start])
        return f"the text holds a lone surrogate U+{code:04X} at index {exc.start} (not Unicode)"
    return None


def repair_text(text: str) -> str:
    """``text`` with surrogate pairs joined and lone surrogates replaced by U+FFFD."""
    if text_problem(text) is None:
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def _scalar(value: object, lenient: bool) -> object:
    """``value`` (not a container) as stored; _Bad says why not, unless ``lenient`` repairs it."""
    if value is None or value is True or value is False:
        return value
    if isinstance(value, str):
        problem = text_problem(value)
        if problem is None:
            return value
        if lenient:
            return repair_text(value)
        raise _Bad(problem)
    if isinstance(value, int):
        if _INT_MIN <= value <= _INT_MAX:
            return value
        detail = f"an int of {value.bit_length()} bits is outside the signed 64-bit range"
    elif isinstance(value, float):
        if math.isfinite(value):
            return value
        detail = f"{value!r} is not a finite number"
    else:
        detail = f"{type(value).__name__} is not a JSON type"
    if lenient:
        return _as_text(value)
    raise _Bad(detail)


def _as_text(value: object) -> str:
    try:
        return repair_text(str(value))
    except Exception:  # a user __str__ that raises, an int too long to print
        return f"<{type(value).__name__}>"


class _Bad(Exception):
    """A problem found by the walk; ``at_value`` is False when the problem is the key itself."""

    def __init__(self, detail: str, *, at_value: bool = True) -> None:
        super().__init__(detail)
        self.detail = detail
        self.at_value = at_value


def _is_container(value: object) -> bool:
    return isinstance(value, (Mapping, list, tuple))


class _Frame:
    """One container being walked: its items, what was kept so far, and its deepest child."""

    __slots__ = ("depth", "is_map", "items", "key", "out")

    def __init__(self, value: object, key: object) -> None:
        self.key = key
        self.depth = 0
        self.is_map = isinstance(value, Mapping)
        self.items: Iterator[tuple[object, object]]
        self.out: dict[str, Any] | list[Any]
        if self.is_map:
            self.items = iter(cast("Mapping[object, object]", value).items())
            self.out = {}
        else:
            self.items = enumerate(cast("Iterable[object]", value))
            self.out = []

    def keep(self, key: object, value: object, depth: int) -> None:
        if self.is_map:
            cast("dict[object, object]", self.out)[key] = value
        else:
            cast("list[object]", self.out).append(value)
        if depth > self.depth:
            self.depth = depth

    def close(self) -> FrozenDict | FrozenList:
        """The kept items frozen, their depth recorded (re-embedding them needs no new walk)."""
        frozen = FrozenDict(self.out) if self.is_map else FrozenList(self.out)
        frozen._depth = self.depth + 1  # pyright: ignore[reportPrivateUsage]
        return frozen


def _path(prefix: str, stack: list[_Frame], key: object, with_key: bool) -> str:
    """Where the walk is: ``prefix`` then ``.key`` for mapping items, ``[index]`` for list items."""
    parts = [prefix]
    parts.extend(_step(parent, child.key) for parent, child in itertools.pairwise(stack))
    if with_key:
        parts.append(_step(stack[-1], key))
    if len(parts) > 12:  # a value nested 100 deep: its start and end say where it is
        parts = [*parts[:6], "...", *parts[-5:]]
    path = "".join(parts)
    return path[1:] if not prefix and path.startswith(".") else path


def _step(frame: _Frame, key: object) -> str:
    text = repair_text(key) if isinstance(key, str) else str(key)  # printable in any message
    return f".{text}" if frame.is_map else f"[{text}]"


def _walk(root: object, prefix: str, limit: int, lenient: bool) -> FrozenDict | FrozenList:
    """``root`` (a container) validated and frozen, without recursion.

    ``limit`` is how many levels the root and its children may take. Strict: NotJson with the
    path of the first problem; lenient: every problem repaired (see :func:`storable_json`).
    """
    stack = [_Frame(root, None)]
    while True:
        frame = stack[-1]
        for key, item in frame.items:
            try:
                if frame.is_map and (
                    not isinstance(key, str) or (not key.isascii() and text_problem(key))
                ):
                    if not lenient:
                        if isinstance(key, str):
                            raise _Bad(f"the key {text_problem(key)}")
                        raise _Bad(f"object key {key!r} is not a string", at_value=False)
                    key = _as_text(key)
                if _plain(item):
                    frame.keep(key, item, 0)  # the common leaves, without the full check
                    continue
                if not _is_container(item):
                    frame.keep(key, _scalar(item, lenient), 0)
                    continue
                depth = known_depth(item) if isinstance(item, FrozenDict | FrozenList) else None
                if depth is None and len(stack) < limit:
                    stack.append(_Frame(item, key))
                    break
                if depth is not None and len(stack) + depth <= limit:
                    frame.keep(key, item, depth)
                    continue
                if not lenient:
                    raise _Bad(f"nested more than {MAX_JSON_DEPTH} levels deep")
                frame.keep(key, f"<{type(item).__name__} nested too deep>", 0)
            except _Bad as exc:
                raise NotJson(_path(prefix, stack, key, exc.at_value), exc.detail) from None
        else:
            stack.pop()
            frozen = frame.close()
            if not stack:
                return frozen
            stack[-1].keep(frame.key, frozen, frame.depth + 1)


def freeze_json(value: object, path: str = "") -> Any:
    """``value`` validated as storable JSON and frozen; NotJson names the path of a problem.

    Already-frozen values are returned as they are.
    """
    if isinstance(value, FrozenDict | FrozenList):
        depth = known_depth(value)
        if depth is not None and depth <= MAX_JSON_DEPTH:
            return value
    if not _is_container(value):
        try:
            return _scalar(value, lenient=False)
        except _Bad as exc:
            raise NotJson(path, exc.detail) from None
    return _walk(value, path, MAX_JSON_DEPTH, lenient=False)


def freeze_mapping(value: Mapping[str, object]) -> FrozenDict:
    """Freeze a str-keyed mapping of storable JSON values (the shape of ``extra``)."""
    if isinstance(value, FrozenDict):
        return value
    if is_flat(value):
        return frozen_flat(value)
    return cast(FrozenDict, _walk(value, "", MAX_JSON_DEPTH + 1, lenient=False))


def storable_json(value: Mapping[Any, object]) -> FrozenDict:
    """A str-keyed mapping made storable and frozen; never raises (event metadata).

    A value of another type becomes its ``str()``, as do ints beyond 64 bits and non-finite
    floats; lone surrogates become U+FFFD; a container nested too deep becomes a short string.
    """
    if is_flat(value):
        return frozen_flat(value)
    return cast(FrozenDict, _walk(value, "", MAX_JSON_DEPTH + 1, lenient=True))


def is_flat(value: Mapping[Any, object]) -> bool:
    """Whether ``value`` is the common case: ASCII str keys and plain leaves (no walk needed)."""
    for key, item in value.items():  # noqa: SIM110 (a loop: all() over a generator is slower)
        if not (type(key) is str and key.isascii() and _plain(item)):
            return False
    return True


def frozen_flat(value: Mapping[str, object]) -> FrozenDict:
    """``value`` frozen as it is: only for a mapping :func:`is_flat` accepted."""
    frozen = FrozenDict(value)
    frozen._depth = 1  # pyright: ignore[reportPrivateUsage]
    return frozen


def _plain(value: Any) -> bool:  # (Any: a typing.cast per branch would cost a call each)
    """Whether ``value`` is a leaf storable as it is, told without a call into the walk."""
    kind = type(value)  # pyright: ignore[reportUnknownVariableType]
    if kind is str:
        return value.isascii()
    if kind is int:
        return _INT_MIN <= value <= _INT_MAX
    if kind is float:
        return math.isfinite(value)
    return value is None or kind is bool
