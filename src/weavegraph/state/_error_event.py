"""Entries of the ``errors`` channel: recoverable problems and the record of fatal ones."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from ._frozen import EMPTY_DICT, freeze_mapping, repair_text, text_problem


def _check_text(field: str, value: object) -> None:
    # Errors are stored with their step; text that cannot be encoded is refused where it enters.
    if type(value) is str and not value.isascii():
        problem = text_problem(value)
        if problem:
            raise ValueError(f"ErrorEvent.{field} cannot be stored: {problem}")


@dataclass(frozen=True, slots=True, kw_only=True)
class ErrorEvent:
    """One error: where it happened (scope, node, step), what it says, and what raised it."""

    message: str
    scope: str = "node"
    node_id: str | None = None
    step: int | None = None
    error_type: str | None = None
    traceback: str | None = None
    tags: tuple[str, ...] = ()
    context: Mapping[str, Any] = field(default=EMPTY_DICT)

    def __post_init__(self) -> None:
        message = cast(object, self.message)  # checked: nodes are untyped user code
        if not isinstance(message, str):
            raise TypeError(f"ErrorEvent.message must be a string, got {type(message).__name__}")
        for name in ("message", "scope", "node_id", "error_type", "traceback"):
            _check_text(name, getattr(self, name))
        object.__setattr__(self, "tags", tuple(self.tags))
        for tag in self.tags:
            _check_text("tags", tag)
        context = freeze_mapping(self.context) if self.context else EMPTY_DICT
        object.__setattr__(self, "context", context)

    @classmethod
    def from_exception(
        cls,
        exc: BaseException,
        *,
        scope: str = "node",
        node_id: str | None = None,
        step: int | None = None,
        traceback: str | None = None,
    ) -> ErrorEvent:
        """Describe an exception as an error entry."""
        # Any exception must be describable: text that cannot be stored is repaired, not refused.
        return cls(
            message=repair_text(str(exc) or type(exc).__name__),
            scope=scope,
            node_id=node_id,
            step=step,
            error_type=repair_text(type(exc).__qualname__),
            traceback=repair_text(traceback) if traceback is not None else None,
        )

    def to_json_value(self) -> dict[str, Any]:
        """The JSON form; fields that are unset (None or empty) are left out."""
        value: dict[str, Any] = {"message": self.message, "scope": self.scope}
        for name in ("node_id", "step", "error_type", "traceback"):
            item = getattr(self, name)
            if item is not None:
                value[name] = item
        if self.tags:
            value["tags"] = list(self.tags)
        if self.context:
            value["context"] = self.context
        return value

    @classmethod
    def from_json_value(cls, value: Mapping[str, Any]) -> ErrorEvent:
        """The inverse of :meth:`to_json_value` (KeyError if ``message`` is missing)."""
        return cls(
            message=value["message"],
            scope=value.get("scope", "node"),
            node_id=value.get("node_id"),
            step=value.get("step"),
            error_type=value.get("error_type"),
            traceback=value.get("traceback"),
            tags=tuple(value.get("tags") or ()),
            context=value.get("context") or EMPTY_DICT,
        )
