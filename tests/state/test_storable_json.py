"""The storable JSON rule: what every value entering a run must be, checked without recursion."""

from __future__ import annotations

import math
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from weavegraph.state import MAX_JSON_DEPTH, FrozenDict, FrozenList, freeze_json
from weavegraph.state._frozen import (
    NotJson,
    freeze_mapping,
    known_depth,
    repair_text,
    storable_json,
    text_problem,
)

INT_MIN, INT_MAX = -(1 << 63), (1 << 63) - 1


def nested(depth: int, leaf: object = 1) -> Any:
    """``leaf`` inside ``depth`` lists."""
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("bad", "path", "fragment"),
    [
        ({"a": "x\ud800"}, "a", "lone surrogate U+D800 at index 1"),
        ({"a": ["\udfff"]}, "a[0]", "U+DFFF"),
        ({"a": {"k\ud800": 1}}, "a.k\ufffd", "the key"),
        ({"a": INT_MAX + 1}, "a", "64 bits is outside the signed 64-bit range"),
        ({"a": [INT_MIN - 1]}, "a[0]", "outside the signed 64-bit range"),
        ({"a": {"b": math.inf}}, "a.b", "not a finite number"),
        ({"a": nested(MAX_JSON_DEPTH)}, "a[0][0][0][0]...[0][0][0][0][0]", "nested more than"),
    ],
)
def test_values_that_cannot_be_stored_are_refused_with_their_path(
    bad: object, path: str, fragment: str
) -> None:
    with pytest.raises(NotJson) as info:
        freeze_json(bad)
    assert info.value.path == path
    assert fragment in info.value.detail
    assert info.value.key == "a"


def test_the_bounds_themselves_are_storable() -> None:
    value = freeze_json({"min": INT_MIN, "max": INT_MAX, "pair": "\U0001f600", "t": True})
    assert value == {"min": INT_MIN, "max": INT_MAX, "pair": "\U0001f600", "t": True}
    assert freeze_json(nested(MAX_JSON_DEPTH)) == nested(MAX_JSON_DEPTH)
    # In a mapping of values (extra, metadata) the limit applies to each value.
    assert freeze_mapping({"a": nested(MAX_JSON_DEPTH)}) == {"a": nested(MAX_JSON_DEPTH)}
    with pytest.raises(NotJson, match="nested more than"):
        freeze_mapping({"a": nested(MAX_JSON_DEPTH + 1)})


@pytest.mark.parametrize("depth", [1_000, 100_000])
def test_any_depth_is_a_clear_error_never_a_recursion_error(depth: int) -> None:
    with pytest.raises(NotJson, match=f"nested more than {MAX_JSON_DEPTH} levels"):
        freeze_json({"a": nested(depth)})
    assert storable_json({"a": nested(depth)})["a"] == nested(
        MAX_JSON_DEPTH, "<list nested too deep>"
    )


def test_a_value_that_contains_itself_is_refused() -> None:
    loop: list[object] = []
    loop.append(loop)
    with pytest.raises(NotJson, match="nested more than"):
        freeze_json(loop)


def test_frozen_values_carry_their_depth_so_wrapping_them_is_checked_without_a_walk() -> None:
    inner = freeze_json(nested(MAX_JSON_DEPTH - 1))
    assert known_depth(inner) == MAX_JSON_DEPTH - 1
    wrapped = freeze_json([inner])  # one level more: still within the limit
    assert known_depth(wrapped) == MAX_JSON_DEPTH
    assert wrapped[0] is inner  # shared, not copied
    with pytest.raises(NotJson, match="nested more than"):
        freeze_json({"again": [wrapped]})  # the level that goes over is caught


def test_text_rules() -> None:
    assert text_problem("plain") is None
    assert text_problem("caf\u00e9 \U0001f600") is None
    assert text_problem("a\ud83d") == (
        "the text holds a lone surrogate U+D83D at index 1 (not Unicode)"
    )
    # A surrogate pair split into two code points is joined; a lone one becomes U+FFFD.
    assert repair_text("\ud83d\ude00 and \ud800") == "\U0001f600 and \ufffd"
    assert repair_text("fine") == "fine"


def test_the_lenient_form_repairs_every_problem() -> None:
    repaired = storable_json(
        {"s": "x\ud800", "big": 1 << 70, "nan": math.nan, "set": {1}, 3: "key", "k\udc00": 1}
    )
    assert repaired == {
        "s": "x\ufffd",
        "big": str(1 << 70),
        "nan": "nan",
        "set": "{1}",
        "3": "key",
        "k\ufffd": 1,
    }


# --- properties ---------------------------------------------------------------------------------

_TEXT = st.text(st.characters(codec=None, blacklist_categories=()), max_size=8)
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(1 << 70), max_value=1 << 70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | _TEXT
)
_VALUES = st.recursive(
    _SCALARS,
    lambda children: (
        st.lists(children, max_size=3)
        | st.tuples(children)
        | st.dictionaries(_TEXT | st.integers(), children, max_size=3)
    ),
    max_leaves=20,
)


def _deep_chain(depth: int) -> Any:
    return nested(depth, {"leaf": "x"})


def _storable(value: object, depth: int = 0) -> bool:
    """The rule, written the obvious (recursive) way, for values of small depth."""
    if isinstance(value, bool) or value is None:
        return True
    if isinstance(value, int):
        return INT_MIN <= value <= INT_MAX
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, str):
        return text_problem(value) is None
    if depth >= MAX_JSON_DEPTH:
        return False
    if isinstance(value, dict):
        items: dict[object, object] = value  # pyright: ignore[reportUnknownVariableType]
        return all(
            isinstance(k, str) and text_problem(k) is None and _storable(v, depth + 1)
            for k, v in items.items()
        )
    if isinstance(value, list | tuple):
        return all(_storable(v, depth + 1) for v in value)  # pyright: ignore[reportUnknownVariableType]
    return False


@given(_VALUES | st.integers(0, MAX_JSON_DEPTH + 3).map(_deep_chain))
def test_freeze_accepts_exactly_the_storable_values_and_they_round_trip(value: object) -> None:
    try:
        frozen = freeze_json(value)
    except NotJson:
        assert not _storable(value)
        return
    assert _storable(value)
    assert orjson.loads(orjson.dumps(frozen)) == frozen
    assert freeze_json(frozen) is frozen or not isinstance(frozen, FrozenDict | FrozenList)


@given(st.dictionaries(_TEXT | st.integers(), _VALUES, max_size=4))
def test_the_lenient_form_never_fails_and_is_always_storable(value: dict[Any, Any]) -> None:
    repaired = storable_json(value)
    assert isinstance(repaired, FrozenDict)
    assert freeze_mapping(dict(repaired)) == repaired
    orjson.dumps(repaired)
