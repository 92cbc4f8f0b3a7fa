"""MODULE:ATTR loading: an App, a GraphBuilder, a zero-argument factory; clear errors otherwise."""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import pytest

import weavegraph as wg
from weavegraph.cli._target import load_app

_names = itertools.count()

FLOW = """
import weavegraph as wg

async def hello(snapshot, ctx):
    return wg.NodePartial(extra={"hello": True})

def build():
    builder = wg.GraphBuilder()
    builder.add_node("hello", hello)
    builder.add_edge(wg.START, "hello")
    builder.add_edge("hello", wg.END)
    return builder

builder = build()
app = build().compile()
not_a_graph = 42

def needs_argument(x):
    return build()

def returns_other():
    return "nope"

def broken():
    b = wg.GraphBuilder()
    b.add_node("a", hello)
    b.add_edge(wg.START, "a")
    b.add_edge("a", "ghost")
    return b
"""


@pytest.fixture
def flow_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    name = f"cli_flow_{next(_names)}"
    (tmp_path / f"{name}.py").write_text(FLOW)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    return name


@pytest.mark.parametrize("attr", ["app", "builder", "build"])
def test_loads_app_builder_and_factory(flow_module: str, attr: str) -> None:
    app = load_app(f"{flow_module}:{attr}")
    assert isinstance(app, wg.App)
    assert list(app.spec.nodes) == ["hello"]


@pytest.mark.parametrize(
    ("target", "fragment"),
    [
        ("no_colon_here", "expected MODULE:ATTR"),
        (":app", "expected MODULE:ATTR"),
        ("{module}:", "expected MODULE:ATTR"),
        ("{module}:missing", "has no attribute 'missing'"),
        ("{module}:not_a_graph", "is a int, not an App or GraphBuilder"),
        ("{module}:needs_argument", "must take no arguments"),
        ("{module}:returns_other", "returned a str"),
        ("no_such_module_xyz:app", "cannot import module"),
    ],
)
def test_bad_targets_are_config_errors(flow_module: str, target: str, fragment: str) -> None:
    with pytest.raises(wg.ConfigError, match=fragment) as info:
        load_app(target.format(module=flow_module))
    assert info.value.help


def test_invalid_graph_reports_the_compile_error(flow_module: str) -> None:
    with pytest.raises(wg.UnknownNode):
        load_app(f"{flow_module}:broken")


def test_demo_target_is_loadable() -> None:
    app = load_app("weavegraph.demo:demo_app")
    assert "collect" in app.spec.nodes
