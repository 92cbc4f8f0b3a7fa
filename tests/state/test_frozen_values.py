import copy
import math
import pickle

import pytest

from weavegraph.state import FrozenDict, FrozenList, freeze_json
from weavegraph.state._frozen import NotJson


def test_freeze_converts_nested_containers_and_keeps_equality() -> None:
    value = freeze_json({"a": [1, {"b": (2, 3)}], "c": None})
    assert isinstance(value, FrozenDict)
    assert isinstance(value["a"], FrozenList)
    assert isinstance(value["a"][1], FrozenDict)
    assert value == {"a": [1, {"b": [2, 3]}], "c": None}


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.__setitem__("x", 1),
        lambda d: d.pop("a"),
        lambda d: d.update({"x": 1}),
        lambda d: d.clear(),
        lambda d: d["a"].append(5),
        lambda d: d["a"].__setitem__(0, 9),
        lambda d: d["a"].sort(),
    ],
)
def test_frozen_values_refuse_mutation(mutate) -> None:  # type: ignore[no-untyped-def]
    value = freeze_json({"a": [3, 1, 2]})
    with pytest.raises(TypeError, match="immutable"):
        mutate(value)
    assert value == {"a": [3, 1, 2]}


def test_already_frozen_values_are_shared_not_copied() -> None:
    value = freeze_json({"a": [1]})
    assert freeze_json(value) is value
    assert copy.deepcopy(value) is value
    assert pickle.loads(pickle.dumps(value)) == value


@pytest.mark.parametrize(
    ("bad", "path"),
    [
        ({"a": object()}, "a"),
        ({"a": [1, {2: "x"}]}, "a[1]"),
        ({"a": {"b": math.nan}}, "a.b"),
        ({"a": {1, 2}}, "a"),
    ],
)
def test_non_json_values_are_refused_with_their_path(bad: object, path: str) -> None:
    with pytest.raises(NotJson) as info:
        freeze_json(bad)
    assert info.value.path == path
