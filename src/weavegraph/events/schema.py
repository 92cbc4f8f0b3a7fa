"""The JSON Schema of the normalized event form, shipped inside the package."""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any, cast

import orjson


@functools.cache
def _load() -> bytes:
    return (
        resources.files(__package__ or "weavegraph.events")
        .joinpath("event.schema.json")
        .read_bytes()
    )


def event_schema() -> dict[str, Any]:
    """A fresh copy of the JSON Schema (draft 2020-12) every ``Event.to_json_value()`` satisfies."""
    return cast("dict[str, Any]", orjson.loads(_load()))
