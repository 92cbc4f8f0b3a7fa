"""Tools: plain Python functions a model may call, described to it by a JSON Schema from pydantic.

A tool is a sync or async function with type hints and a docstring. Its name is the function's
name, its description the docstring, its parameters' schema what pydantic derives from the hints
(``Annotated[int, pydantic.Field(description=...)]`` documents one parameter). Calling it
validates the model's arguments against the same schema first.
"""

from __future__ import annotations

import asyncio
import inspect
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
import pydantic
import pydantic_core

from ..errors import ConfigError

__all__ = ["Tool", "as_tools", "tool", "tool_schema"]


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Tool:
    """A function a model may call: its ``name``, ``description`` (the docstring) and
    ``parameters`` (the JSON Schema of its arguments object)."""

    name: str
    description: str
    parameters: Mapping[str, Any]
    fn: Callable[..., Any] = field(repr=False)
    _arguments: type[pydantic.BaseModel] = field(repr=False)

    def schema(self) -> dict[str, Any]:
        """``{"name", "description", "parameters"}``: what adapters turn into their provider's
        tool format."""
        return {"name": self.name, "description": self.description, "parameters": self.parameters}

    async def call(self, arguments: Mapping[str, Any]) -> str:
        """Validate ``arguments``, call the function (a sync one in a worker thread) and return
        its result as text: a string as is, anything else as JSON.

        Raises ``pydantic.ValidationError`` for arguments that do not fit the schema, and whatever
        the function raises.
        """
        validated = self._arguments.model_validate(dict(arguments))
        kwargs = {name: getattr(validated, name) for name in type(validated).model_fields}
        if inspect.iscoroutinefunction(self.fn):
            result: object = await self.fn(**kwargs)
        else:
            result = await asyncio.to_thread(self.fn, **kwargs)
        if isinstance(result, str):
            return result
        return orjson.dumps(pydantic_core.to_jsonable_python(result)).decode()


def tool(
    fn: Callable[..., Any], *, name: str | None = None, description: str | None = None
) -> Tool:
    """Describe ``fn`` as a :class:`Tool` (its name and docstring unless given).

    Raises ConfigError when a parameter has no type hint, the function takes ``*args`` or
    ``**kwargs``, or there is no description: the model needs all three to call it well.
    """
    tool_name = name or getattr(fn, "__name__", "")
    if not tool_name or not tool_name.isidentifier():
        raise ConfigError(f"a tool needs a name made of letters, digits and _; got {tool_name!r}")
    text = description if description is not None else inspect.getdoc(fn)
    if not text:
        raise ConfigError(
            f"tool {tool_name!r} has no docstring: the model reads it to know what the tool does",
            help="Add a docstring to the function, or pass description=... to wg.llm.tool().",
        )
    arguments = _arguments_model(fn, tool_name)
    schema = arguments.model_json_schema()
    schema.pop("title", None)
    return Tool(name=tool_name, description=text, parameters=schema, fn=fn, _arguments=arguments)


def tool_schema(fn: Callable[..., Any] | Tool) -> dict[str, Any]:
    """The ``{"name", "description", "parameters"}`` description of a tool function."""
    return (fn if isinstance(fn, Tool) else tool(fn)).schema()


def as_tools(tools: Iterable[Callable[..., Any] | Tool] | None) -> tuple[Tool, ...]:
    """Functions and :class:`Tool` objects as Tools; ConfigError for two tools with one name."""
    converted = tuple(item if isinstance(item, Tool) else tool(item) for item in tools or ())
    names = [item.name for item in converted]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"two tools share the name {duplicates[0]!r}; tool names must be unique")
    return converted


def _arguments_model(fn: Callable[..., Any], tool_name: str) -> type[pydantic.BaseModel]:
    """A pydantic model whose fields are ``fn``'s parameters (their hints and defaults)."""
    try:
        signature = inspect.signature(fn)
        hints = typing.get_type_hints(fn, include_extras=True)
    except (TypeError, ValueError, NameError) as exc:
        raise ConfigError(f"tool {tool_name!r}: cannot read its signature: {exc}") from exc
    fields: dict[str, Any] = {}
    for param in signature.parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise ConfigError(
                f"tool {tool_name!r} takes *{param.name}: a tool's parameters must be named"
            )
        if param.name not in hints:
            raise ConfigError(
                f"tool {tool_name!r}: parameter {param.name!r} has no type hint",
                help="The JSON Schema the model sees comes from the type hints; add one.",
            )
        default = ... if param.default is param.empty else param.default
        fields[param.name] = (hints[param.name], default)
    try:
        model = pydantic.create_model(f"{tool_name}_arguments", **fields)
        model.model_json_schema()
    except (pydantic.PydanticSchemaGenerationError, pydantic.PydanticUserError, TypeError) as exc:
        raise ConfigError(f"tool {tool_name!r}: its parameters have no JSON Schema: {exc}") from exc
    return model
