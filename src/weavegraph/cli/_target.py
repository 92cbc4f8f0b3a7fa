"""Loading ``MODULE:ATTR`` into a compiled App (and the runtime context its factory gives)."""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any, cast

from ..app import App
from ..errors import ConfigError
from ..graph.builder import GraphBuilder

_HELP = (
    "MODULE:ATTR must name a compiled App, a GraphBuilder, or a function without arguments "
    "returning either (or a pair (app, context): context reaches nodes as ctx.context), "
    "e.g. weavegraph.demo:demo_app or my_package.flows:build_graph."
)


def load_app(target: str) -> App:
    """Import ``MODULE:ATTR`` and turn what it names into an App (a ConfigError otherwise)."""
    return load_target(target)[0]


def load_target(target: str) -> tuple[App, Any]:
    """Import ``MODULE:ATTR``: the App it names and the runtime context (None unless a factory
    returned ``(app, context)``); a ConfigError otherwise.

    The working directory is importable, as with ``python -m``, so local modules just work.
    """
    module_name, sep, attr_path = target.partition(":")
    if not sep or not module_name or not attr_path:
        raise ConfigError(f"expected MODULE:ATTR, got {target!r}", help=_HELP)
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise ConfigError(f"cannot import module {module_name!r}: {exc}", help=_HELP) from exc
        raise
    value: Any = module
    for part in attr_path.split("."):
        try:
            value = getattr(value, part)
        except AttributeError:
            raise ConfigError(
                f"module {module_name!r} has no attribute {attr_path!r}", help=_HELP
            ) from None
    return _as_target(value, target)


def _as_target(value: object, target: str) -> tuple[App, Any]:
    if isinstance(value, App):
        return value, None
    if isinstance(value, GraphBuilder):
        return value.compile(), None
    if callable(value) and not isinstance(value, type):
        try:
            produced: object = value()
        except TypeError as exc:
            if "argument" in str(exc):
                raise ConfigError(f"{target} must take no arguments: {exc}", help=_HELP) from exc
            raise
        context: Any = None
        if isinstance(produced, tuple) and len(cast("tuple[Any, ...]", produced)) == 2:
            produced, context = cast("tuple[Any, Any]", produced)
        if isinstance(produced, App):
            return produced, context
        if isinstance(produced, GraphBuilder):
            return produced.compile(), context
        kind = type(cast(object, produced)).__name__
        raise ConfigError(f"{target}() returned a {kind}, not an App or GraphBuilder", help=_HELP)
    raise ConfigError(
        f"{target} is a {type(value).__name__}, not an App or GraphBuilder", help=_HELP
    )
