"""The event model: what nodes and the framework emit, and its normalized JSON form."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final, Protocol

import orjson

from ..state import FrozenDict

STREAM_END_SCOPE: Final = "__weavegraph_stream_end__"
"""Scope of the diagnostic event that is always a run's last event."""
LLM_FINAL_SCOPE: Final = "final"


class EventType(StrEnum):
    NODE = "node"
    DIAGNOSTIC = "diagnostic"
    LLM = "llm"
    LIFECYCLE = "lifecycle"


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """One event. ``seq`` increases by one per event within a session (usable as an SSE id)."""

    type: str
    scope: str
    message: str
    timestamp: datetime = field(default_factory=lambda: datetime.now(UTC))
    metadata: Mapping[str, Any] = field(default_factory=FrozenDict)
    seq: int | None = None
    session_id: str | None = None

    @property
    def is_stream_end(self) -> bool:
        return self.type == EventType.DIAGNOSTIC and self.scope == STREAM_END_SCOPE

    def to_json_value(self) -> dict[str, Any]:
        return {
            "type": str(self.type),
            "scope": self.scope,
            "message": self.message,
            "timestamp": self.timestamp.isoformat(),
            "metadata": dict(self.metadata),
            "seq": self.seq,
            "session_id": self.session_id,
        }

    def to_json_string(self) -> str:
        return orjson.dumps(self.to_json_value(), default=str).decode()

    def to_json_pretty(self) -> str:
        return orjson.dumps(self.to_json_value(), default=str, option=orjson.OPT_INDENT_2).decode()

    @classmethod
    def from_json_value(cls, value: Mapping[str, Any]) -> Event:
        return cls(
            type=value["type"],
            scope=value["scope"],
            message=value["message"],
            timestamp=datetime.fromisoformat(value["timestamp"]),
            metadata=value.get("metadata") or {},
            seq=value.get("seq"),
            session_id=value.get("session_id"),
        )


class EventEmitter(Protocol):
    """Where the runtime hands events. Must never block and never raise (EventBus implements it)."""

    lifecycle: bool
    """Whether lifecycle events are wanted (they are skipped entirely otherwise)."""

    def publish(self, event: Event) -> None: ...


class NullEmitter:
    """Drops everything: the default for quiet runs."""

    lifecycle = False

    def publish(self, event: Event) -> None:
        return None
