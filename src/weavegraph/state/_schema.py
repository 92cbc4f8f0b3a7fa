"""Typed state schemas: a pydantic model, TypedDict or dataclass whose fields live in ``extra``.

Each field is stored under its own name in ``extra``, in the JSON form pydantic gives it (a
datetime as its ISO string, an enum as its value, a nested model as an object), so every
checkpointer round-trips it. Writes are validated field by field where they enter the run;
reading ``state.state`` validates the whole schema once per state and gives a frozen instance.
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

import typing_extensions
from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic_core import to_jsonable_python
from typing_extensions import is_typeddict

from ..errors import StateFieldError
from ._frozen import FrozenDict, FrozenList, NotJson, freeze_json

__all__ = ["StateField", "StateSchema"]

Kind = Literal["pydantic", "dataclass", "typeddict"]

# TypedDict qualifiers around a field's type (from typing or typing_extensions)
_WRAPPERS = tuple(
    getattr(module, name)
    for module in (typing, typing_extensions)
    for name in ("Required", "NotRequired", "ReadOnly")
    if hasattr(module, name)
)


@dataclass(frozen=True, slots=True, eq=False)
class StateField:
    """One field of a schema: how a write to it is validated, and its reducer (if any)."""

    name: str
    adapter: TypeAdapter[Any]
    item_adapter: TypeAdapter[Any] | None  # a list-like field's items (what an append writes)
    reducer: Callable[[Any, Any], Any] | None


class StateSchema:
    """The compiled form of a user's state class; build it with :meth:`of` (cached per class)."""

    __slots__ = ("_adapter", "_frozen_type", "fields", "kind", "type_")

    def __init__(self, type_: type[Any], kind: Kind, fields: Mapping[str, StateField]) -> None:
        self.type_ = type_
        self.kind: Kind = kind
        self.fields = fields
        self._adapter: TypeAdapter[Any] = TypeAdapter(type_)
        self._frozen_type = _frozen_type(type_, kind)

    def __repr__(self) -> str:
        return f"StateSchema({self.name}, fields={list(self.fields)})"

    @property
    def name(self) -> str:
        """The schema class's qualified name (``module.Class``)."""
        return f"{self.type_.__module__}.{self.type_.__qualname__}"

    @staticmethod
    def of(schema: object) -> StateSchema:
        """The schema of a pydantic model, TypedDict or dataclass; TypeError for anything else."""
        if not isinstance(schema, type):
            raise TypeError(
                "state must be a pydantic model, TypedDict or dataclass class, "
                f"got {type(schema).__name__} {schema!r}"
            )
        return _compile(schema)

    def reducers(self) -> dict[str, Callable[[Any, Any], Any]]:
        """The per-field reducers declared with ``Annotated[T, reducer]``, by field name."""
        return {name: f.reducer for name, f in self.fields.items() if f.reducer is not None}

    # --- writing ---------------------------------------------------------------------------

    def encode_update(self, update: Mapping[str, Any], node: str | None) -> dict[str, Any]:
        """``update`` validated field by field, in stored (JSON, frozen) form; ``None`` stays
        ``None`` (it deletes the stored value: the field reads back as its default)."""
        if not isinstance(update, Mapping):  # pyright: ignore[reportUnnecessaryIsInstance]
            raise StateFieldError(
                "?", node, f"update must be a mapping of field names, got {type(update).__name__}"
            )
        return {
            name: None if value is None else self.encode_field(name, value, node)
            for name, value in update.items()
        }

    def encode_field(self, name: str, value: object, node: str | None) -> Any:
        """One field's value, validated and in its stored form; StateFieldError names the field."""
        field = self.fields.get(name)
        if field is None:
            raise StateFieldError(
                name,
                node,
                f"{self.type_.__name__} has no such field (its fields: {', '.join(self.fields)})",
            )
        adapter = field.adapter
        try:
            validated = adapter.validate_python(value)
        except ValidationError as exc:
            if field.reducer is None or field.item_adapter is None:
                raise StateFieldError(name, node, _first_error(exc)) from None
            adapter = field.item_adapter  # one item for an appending reducer
            try:
                validated = adapter.validate_python(value)
            except ValidationError:
                raise StateFieldError(name, node, _first_error(exc)) from None
        try:
            return freeze_json(adapter.dump_python(validated, mode="json"))
        except NotJson as exc:
            raise StateFieldError(name, node, f"its JSON form is not JSON: {exc}") from None

    def encode_instance(self, instance: object) -> dict[str, Any]:
        """The stored form of every field of an instance of the schema (validated)."""
        try:
            validated = self._adapter.validate_python(instance)
        except ValidationError as exc:
            raise StateFieldError(_error_field(exc), None, _first_error(exc)) from None
        dumped = cast("dict[str, Any]", self._adapter.dump_python(validated, mode="json"))
        return {name: freeze_json(value) for name, value in dumped.items() if name in self.fields}

    # --- reading ---------------------------------------------------------------------------

    def read(self, extra: Mapping[str, Any]) -> Any:
        """A frozen, validated instance built from the fields stored in ``extra``."""
        data = {name: extra[name] for name in self.fields if name in extra}
        try:
            instance = self._adapter.validate_python(data, strict=False)
        except ValidationError as exc:
            raise StateFieldError(
                _error_field(exc), None, f"stored value does not validate: {_first_error(exc)}"
            ) from None
        return self._freeze(instance)

    def _freeze(self, instance: Any) -> Any:
        if self.kind == "typeddict":
            return FrozenDict({k: _freeze_value(v) for k, v in instance.items()})
        frozen: Any = instance
        if self._frozen_type is not None:
            frozen = object.__new__(self._frozen_type)
            if self.kind == "pydantic":
                for attr in (
                    "__pydantic_fields_set__",
                    "__pydantic_extra__",
                    "__pydantic_private__",
                ):
                    object.__setattr__(frozen, attr, getattr(instance, attr))
        for name in self.fields:
            object.__setattr__(frozen, name, _freeze_value(getattr(instance, name)))
        return frozen


@functools.cache
def _compile(schema: type[Any]) -> StateSchema:
    kind: Kind
    if issubclass(schema, BaseModel):
        kind = "pydantic"
        hints = {
            name: _with_metadata(info.annotation, info.metadata)
            for name, info in schema.model_fields.items()
        }
    elif is_typeddict(schema):
        kind = "typeddict"
        hints = typing.get_type_hints(schema, include_extras=True)
    elif dataclasses.is_dataclass(schema):
        kind = "dataclass"
        all_hints = typing.get_type_hints(schema, include_extras=True)
        hints = {f.name: all_hints[f.name] for f in dataclasses.fields(schema) if f.init}
    else:
        raise TypeError(
            f"state must be a pydantic model, TypedDict or dataclass class, got {schema!r}"
        )
    fields = {name: _field(name, hint) for name, hint in hints.items()}
    return StateSchema(schema, kind, fields)


def _with_metadata(annotation: Any, metadata: Sequence[Any]) -> Any:
    return typing.Annotated[annotation, *metadata] if metadata else annotation


def _field(name: str, hint: Any) -> StateField:
    """Split ``Annotated[T, reducer, ...]``: the callable is the reducer, the rest validates."""
    reducer: Callable[[Any, Any], Any] | None = None
    base = hint
    while True:
        origin = typing.get_origin(base)
        if origin in _WRAPPERS:
            base = typing.get_args(base)[0]
            continue
        if origin is typing.Annotated:
            args = typing.get_args(base)
            kept: list[Any] = []
            for meta in args[1:]:
                if callable(meta) and not isinstance(meta, type) and reducer is None:
                    reducer = cast("Callable[[Any, Any], Any]", meta)
                else:
                    kept.append(meta)
            base = _with_metadata(args[0], kept)
            if not kept:
                continue
        break
    return StateField(name, TypeAdapter(base), _item_adapter(base), reducer)


def _item_adapter(annotation: Any) -> TypeAdapter[Any] | None:
    inner = annotation
    if typing.get_origin(inner) is typing.Annotated:
        inner = typing.get_args(inner)[0]
    origin = typing.get_origin(inner)
    args = typing.get_args(inner)
    if origin in (list, Sequence, set, frozenset) and len(args) == 1:
        return TypeAdapter(args[0])
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return TypeAdapter(args[0])
    return None


def _frozen_type(schema: type[Any], kind: Kind) -> type[Any] | None:
    """A subclass of ``schema`` whose instances refuse assignment (None: already frozen)."""
    if kind == "typeddict":
        return None
    if kind == "pydantic":
        model = cast("type[BaseModel]", schema)
        if model.model_config.get("frozen"):
            return None
        namespace: dict[str, Any] = {
            "model_config": {**model.model_config, "frozen": True},
            "__eq__": _eq_as(schema),
            "__hash__": None,
        }
    else:
        params = cast("Any", schema).__dataclass_params__
        if params.frozen:
            return None
        namespace = {"__setattr__": _refuse_assignment, "__delattr__": _refuse_assignment}
        namespace["__eq__"] = _eq_as(schema)
        namespace["__hash__"] = None
    if hasattr(schema, "__slots__") and kind == "dataclass":
        namespace["__slots__"] = ()
    namespace["__module__"] = schema.__module__
    namespace["__qualname__"] = schema.__qualname__
    return type(schema.__name__, (schema,), namespace)


def _eq_as(schema: type) -> Callable[[Any, Any], Any]:
    """Equality with plain instances of ``schema`` (field by field), as the user would expect."""
    names = tuple(_field_names(schema))

    def __eq__(self: Any, other: object) -> Any:
        if not isinstance(other, schema):
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in names)

    return __eq__


def _field_names(schema: type) -> list[str]:
    if issubclass(schema, BaseModel):
        return list(schema.model_fields)
    return [f.name for f in dataclasses.fields(cast("Any", schema))]


def _refuse_assignment(self: object, *_args: object) -> None:
    raise dataclasses.FrozenInstanceError(
        f"{type(self).__name__} read from the state is frozen; "
        "write fields with NodePartial(update={...})"
    )


def _freeze_value(value: Any) -> Any:
    """Plain lists and dicts frozen (recursively), so a node cannot change what others read."""
    if type(value) is list:
        return FrozenList(_freeze_value(item) for item in cast("list[Any]", value))
    if type(value) is dict:
        return FrozenDict({k: _freeze_value(v) for k, v in cast("dict[str, Any]", value).items()})
    return value


def _first_error(exc: ValidationError) -> str:
    errors = exc.errors(include_url=False)
    if not errors:
        return str(exc)
    first = errors[0]
    where = ".".join(str(part) for part in first.get("loc", ()))
    message = str(first.get("msg", "invalid"))
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{message} at {where}{more}" if where else f"{message}{more}"


def _error_field(exc: ValidationError) -> str:
    errors = exc.errors(include_url=False)
    loc = errors[0].get("loc", ()) if errors else ()
    return str(loc[0]) if loc else "?"


def to_json_fields(value: Mapping[str, Any]) -> dict[str, Any]:
    """A TypedDict value (a plain dict) in stored form, without a schema to validate against."""
    return {key: freeze_json(to_jsonable_python(item)) for key, item in value.items()}
