"""Tools: JSON Schema from type hints via pydantic, description from the docstring, validated calls."""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal

import pydantic
import pytest

import weavegraph as wg


class Point(pydantic.BaseModel):
    x: float
    y: float


def distance(a: Point, b: Point, unit: Literal["m", "km"] = "m") -> float:
    """Distance between two points."""
    return ((a.x - b.x) ** 2 + (a.y - b.y) ** 2) ** 0.5


async def search(
    query: Annotated[str, pydantic.Field(description="what to look for")], limit: int = 5
) -> list[str]:
    """Search the notes.

    Returns the matching titles.
    """
    await asyncio.sleep(0)
    return [query] * limit


def test_schema_comes_from_hints_defaults_and_docstring() -> None:
    schema = wg.llm.tool_schema(search)
    assert schema["name"] == "search"
    assert schema["description"] == "Search the notes.\n\nReturns the matching titles."
    params = schema["parameters"]
    assert params["type"] == "object"
    assert params["required"] == ["query"]
    assert params["properties"]["query"]["description"] == "what to look for"
    assert params["properties"]["limit"] == {"default": 5, "title": "Limit", "type": "integer"}


def test_nested_models_and_literals_are_described() -> None:
    params = wg.llm.tool_schema(distance)["parameters"]
    assert params["properties"]["unit"]["enum"] == ["m", "km"]
    assert "Point" in params["$defs"]


async def test_calling_validates_and_converts_arguments() -> None:
    tool = wg.llm.tool(distance)
    assert await tool.call({"a": {"x": 0, "y": 0}, "b": {"x": 3, "y": 4}}) == "5.0"
    assert await wg.llm.tool(search).call({"query": "q", "limit": 2}) == '["q","q"]'
    with pytest.raises(pydantic.ValidationError):
        await tool.call({"a": {"x": 0}})


def no_doc(x: int) -> int:
    return x


def no_hint(x) -> int:  # type: ignore[no-untyped-def]
    """Doc."""
    return 1


def star(*items: int) -> int:
    """Doc."""
    return len(items)


@pytest.mark.parametrize(
    ("fn", "problem"), [(no_doc, "docstring"), (no_hint, "type hint"), (star, "*items")]
)
def test_unusable_functions_are_config_errors(fn: object, problem: str) -> None:
    with pytest.raises(wg.ConfigError, match=problem.replace("*", r"\*")):
        wg.llm.tool(fn)  # type: ignore[arg-type]


def test_a_description_can_be_given_and_names_must_be_unique() -> None:
    assert wg.llm.tool(no_doc, description="Echo x.").description == "Echo x."
    with pytest.raises(wg.ConfigError, match="share the name"):
        wg.prebuilt.tool_node([search, wg.llm.tool(search)])
