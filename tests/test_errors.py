"""The error tree: stable codes, help, builtin refinements, attributes, and the drawn tree."""

from __future__ import annotations

import inspect
import re

import pytest

import weavegraph as wg
from weavegraph import errors

ERROR_CLASSES = [getattr(errors, name) for name in errors.__all__]

COMPILE_ERRORS = [
    wg.MissingEntry,
    wg.UnknownNode,
    wg.EdgeFromEnd,
    wg.CycleDetected,
    wg.UnreachableNodes,
    wg.NoPathToEnd,
    wg.DuplicateEdge,
    wg.DuplicateNode,
]


def test_every_error_is_in_the_tree_and_public() -> None:
    for cls in ERROR_CLASSES:
        assert issubclass(cls, wg.WeavegraphError), cls
        assert getattr(wg, cls.__name__) is cls
    defined = {
        name
        for name, obj in vars(errors).items()
        if inspect.isclass(obj) and issubclass(obj, Exception) and obj.__module__ == errors.__name__
    }
    assert defined == set(errors.__all__)


def test_codes_are_stable_unique_and_namespaced() -> None:
    codes = [cls.code for cls in ERROR_CLASSES]
    assert len(codes) == len(set(codes))
    assert all(re.fullmatch(r"weavegraph(::[a-z_]+)+", code) for code in codes), codes
    # a few codes are documented; pin them
    assert wg.UnknownNode.code == "weavegraph::graph::unknown_node"
    assert wg.NodeRunError.code == "weavegraph::run::node_failed"


def test_docstring_tree_names_every_class() -> None:
    doc = errors.__doc__ or ""
    for cls in ERROR_CLASSES:
        assert re.search(rf"\b{cls.__name__}\b", doc), f"{cls.__name__} missing from the tree"


@pytest.mark.parametrize("cls", COMPILE_ERRORS)
def test_compile_errors_are_value_errors_with_help(cls: type[wg.GraphCompileError]) -> None:
    assert issubclass(cls, wg.GraphCompileError)
    assert issubclass(cls, ValueError)
    assert cls.help.strip()


def test_builtin_refinements() -> None:
    assert issubclass(wg.NonJsonValue, TypeError)
    assert issubclass(wg.NonJsonValue, wg.StateError)
    assert issubclass(wg.SessionNotFound, KeyError)
    assert issubclass(wg.ConfigError, ValueError)
    assert issubclass(wg.InvalidSessionId, wg.SessionError)
    # KeyError's str() would add quotes; a weavegraph error reads as its message
    assert str(wg.SessionNotFound("s1")) == "no session 's1'"


def test_compile_error_attributes_and_nodes() -> None:
    assert wg.UnknownNode("x").node == "x"
    assert wg.UnknownNode("x").nodes == ("x",)
    assert wg.EdgeFromEnd("a").target == "a"
    assert wg.EdgeFromEnd("a").nodes == (wg.END, "a")  # diagnostics show the offending edge
    assert wg.EdgeFromEnd().nodes == (wg.END,)
    assert "END" in str(wg.EdgeFromEnd())
    cycle = wg.CycleDetected(["a", "b"])
    assert (cycle.cycle, cycle.nodes) == (("a", "b"), ("a", "b"))
    assert str(cycle) == "unconditional cycle: a -> b -> a"
    assert wg.UnreachableNodes(["a", "b"]).nodes == ("a", "b")
    assert wg.NoPathToEnd(["c"]).nodes == ("c",)
    edge = wg.DuplicateEdge("a", "b")
    assert (edge.source, edge.target, edge.nodes) == ("a", "b", ("a", "b"))
    assert wg.DuplicateNode("a").nodes == ("a",)
    assert wg.MissingEntry().nodes == ()


def test_problems_default_to_self_and_with_problems_attaches_all() -> None:
    first, second = wg.MissingEntry(), wg.DuplicateNode("a")
    assert first.problems == [first]
    assert first.with_problems([first, second]) is first
    assert first.problems == [first, second]


def test_run_errors_carry_node_step_and_cause() -> None:
    original = ZeroDivisionError("boom")
    with pytest.raises(wg.RunError) as info:
        raise wg.NodeRunError("a", 3, str(original)) from original
    err = info.value
    assert isinstance(err, wg.NodeRunError)
    assert (err.node, err.step, err.nodes) == ("a", 3, ("a",))
    assert err.__cause__ is original
    routing = wg.RoutingError("r", 2, "unknown node 'x'")
    assert (routing.node, routing.step) == ("r", 2)
    limit = wg.StepLimitExceeded("s", 1001)
    assert (limit.session_id, limit.step) == ("s", 1001)


def test_help_can_be_overridden_per_instance() -> None:
    err = wg.ConfigError("bad url", help="use sqlite://file.db")
    assert err.help == "use sqlite://file.db"
    assert wg.ConfigError("bad url").help == wg.ConfigError.help != err.help


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda cls: cls.__name__)
def test_every_error_class_has_its_own_help(cls: type[wg.WeavegraphError]) -> None:
    # SPEC §5.4: each error has a stable code and a help text (shown by diagnostics.render).
    assert cls.help.strip(), f"{cls.__name__} has no help text"
    assert "help" in vars(cls), f"{cls.__name__} only inherits its parent's help"
