"""The event model: what nodes and the framework emit, and its normalized JSON form.

Every event has the normalized shape ``{type, scope, message, timestamp, metadata, seq,
session_id}``, plus ``namespace`` for an event of a subgraph (``event.schema.json`` beside this
module is its JSON Schema). The constructors
below are the one place that decides how each kind of event looks, so the runner, the node
context and the tests agree on it.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final, Protocol, cast

import orjson

from .._iso import iso
from ..state import FrozenDict
from ..state._frozen import NotJson, freeze_mapping, text_problem
from ..status import STREAM_END_STATUSES, RunStatus

STREAM_END_SCOPE: Final = "__weavegraph_stream_end__"
"""Scope of the diagnostic event that is always a run's last event."""
INVOCATION_END_SCOPE: Final = "__weavegraph_invocation_end__"
"""Scope of the diagnostic ending one ``invoke_next`` of an iterative session (its stream goes on
until the session is finished)."""
ATTEMPT_RESTARTED_SCOPE: Final = "attempt_restarted"
"""Scope of the diagnostic stored when a run takes over a session whose previous claim expired
mid-run (its holder died or was cut off): the step in flight then runs again."""
LLM_CHUNK_SCOPE: Final = "chunk"
"""Scope of a streamed LLM chunk."""
LLM_FINAL_SCOPE: Final = "final"
"""Scope of the final LLM chunk (never the stream-end scope)."""
LLM_ERROR_SCOPE: Final = "error"
"""Scope of an LLM provider error."""


class EventType(StrEnum):
    """The four kinds of event."""

    NODE = "node"
    DIAGNOSTIC = "diagnostic"
    LLM = "llm"
    LIFECYCLE = "lifecycle"


class LifecycleKind(StrEnum):
    """Scopes of the opt-in framework events (``EventBus(..., lifecycle=True)``)."""

    RUN_START = "run_start"
    RUN_END = "run_end"
    STEP_START = "step_start"
    STEP_END = "step_end"
    NODE_START = "node_start"
    NODE_FINISH = "node_finish"
    CHECKPOINT_SAVED = "checkpoint_saved"
    INTERRUPT = "interrupt"


_EMPTY: Final[Mapping[str, Any]] = FrozenDict()


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """One event. ``seq`` increases by one per event within a session (usable as an SSE id)."""

    type: str
    scope: str
    message: str
    timestamp: datetime = field(default_factory=_now)
    metadata: Mapping[str, Any] = field(default_factory=FrozenDict)
    seq: int | None = None
    session_id: str | None = None
    namespace: str | None = None
    """The subgraph the event comes from: the path of node ids (``research``,
    ``research/search``); None for the root graph."""

    @property
    def is_stream_end(self) -> bool:
        """Whether this is the run's final stream-end diagnostic.

        Only the framework's own: a node's diagnostic (it carries ``node_id``) that borrows the
        reserved scope must not end anyone's stream while the run goes on.
        """
        return (
            self.scope == STREAM_END_SCOPE
            and self.type == EventType.DIAGNOSTIC
            and "node_id" not in self.metadata
        )

    @property
    def node_id(self) -> str | None:
        """The emitting node, when there is one."""
        value = self.metadata.get("node_id")
        return value if isinstance(value, str) else None

    @property
    def step(self) -> int | None:
        """The superstep the event belongs to, when there is one."""
        value = self.metadata.get("step")
        return value if isinstance(value, int) else None

    def with_sequence(self, seq: int, session_id: str | None) -> Event:
        """This event numbered within a session (what the runtime does before publishing)."""
        return Event(
            type=self.type,
            scope=self.scope,
            message=self.message,
            timestamp=self.timestamp,
            metadata=self.metadata,
            seq=seq,
            session_id=session_id,
            namespace=self.namespace,
        )

    def to_json_value(self) -> dict[str, Any]:
        """The normalized JSON form (validates against ``event.schema.json``); ``namespace``
        only for an event of a subgraph."""
        value = {
            "type": str(self.type),
            "scope": self.scope,
            "message": self.message,
            "timestamp": iso(self.timestamp),
            "metadata": dict(self.metadata),
            "seq": self.seq,
            "session_id": self.session_id,
        }
        if self.namespace is not None:
            value["namespace"] = self.namespace
        return value

    def to_json_string(self) -> str:
        """The normalized form as compact JSON (non-JSON metadata values become strings)."""
        return orjson.dumps(self.to_json_value(), default=str).decode()

    def to_json_pretty(self) -> str:
        """The normalized form as indented JSON."""
        return orjson.dumps(self.to_json_value(), default=str, option=orjson.OPT_INDENT_2).decode()

    @classmethod
    def from_json_value(cls, value: Mapping[str, Any]) -> Event:
        """Rebuild an event from its normalized form (a stored or received event).

        Checked like every value that enters: a ValueError says which field is wrong.
        """
        if not isinstance(value, Mapping):  # pyright: ignore[reportUnnecessaryIsInstance]
            raise ValueError(f"malformed event JSON: not an object but {type(value).__name__}")
        text = {name: _text_field(value, name) for name in ("type", "scope", "message")}
        stamp = _text_field(value, "timestamp")
        try:
            timestamp = datetime.fromisoformat(stamp)
        except ValueError:
            raise ValueError(f"malformed event JSON: timestamp {stamp!r} is not ISO 8601") from None
        metadata: object = value.get("metadata") or {}
        if not isinstance(metadata, Mapping):
            raise ValueError("malformed event JSON: metadata must be an object")
        try:
            frozen = freeze_mapping(cast("Mapping[str, object]", metadata))
        except NotJson as exc:
            raise ValueError(f"malformed event JSON: metadata {exc}") from None
        seq: object = value.get("seq")
        if seq is not None and (type(seq) is not int or seq < 0):
            raise ValueError(f"malformed event JSON: seq must be an int >= 0, got {seq!r}")
        session_id: object = value.get("session_id")
        if session_id is not None:
            session_id = _text_field(value, "session_id")
        namespace: object = value.get("namespace")
        if namespace is not None:
            namespace = _text_field(value, "namespace")
        return cls(
            type=text["type"],
            scope=text["scope"],
            message=text["message"],
            timestamp=timestamp,
            metadata=frozen,
            seq=seq,
            session_id=session_id,
            namespace=namespace or None,
        )


def _text_field(value: Mapping[str, Any], name: str) -> str:
    item: object = value.get(name)
    if not isinstance(item, str):
        raise ValueError(f"malformed event JSON: {name} must be a string, got {item!r:.40}")
    problem = text_problem(item)
    if problem:
        raise ValueError(f"malformed event JSON: {name}: {problem}")
    return item


def is_stream_end_json(value: Mapping[str, Any]) -> bool:
    """:attr:`Event.is_stream_end` for an event's JSON form (a stored or received event)."""
    if value.get("type") != EventType.DIAGNOSTIC or value.get("scope") != STREAM_END_SCOPE:
        return False
    metadata = value.get("metadata")
    return not (isinstance(metadata, Mapping) and "node_id" in metadata)


def _meta(base: dict[str, Any], extra: Mapping[str, Any] | None) -> FrozenDict:
    if extra:
        # Framework keys win: a node cannot fake another node's id or step.
        merged = dict(extra)
        merged.update(base)
        return FrozenDict(merged)
    return FrozenDict(base)


def node_event(
    node_id: str,
    step: int,
    scope: str,
    message: str,
    metadata: Mapping[str, Any] | None = None,
    *,
    timestamp: datetime | None = None,
) -> Event:
    """An event a node emits (``ctx.emit``); metadata carries ``node_id`` and ``step``."""
    return Event(
        type=EventType.NODE,
        scope=scope,
        message=message,
        timestamp=timestamp or _now(),
        metadata=_meta({"node_id": node_id, "step": step}, metadata),
    )


def diagnostic_event(
    scope: str,
    message: str,
    *,
    node_id: str | None = None,
    step: int | None = None,
    metadata: Mapping[str, Any] | None = None,
    timestamp: datetime | None = None,
) -> Event:
    """A diagnostic (``ctx.emit_diagnostic`` or the framework's own)."""
    base: dict[str, Any] = {}
    if node_id is not None:
        base["node_id"] = node_id
    if step is not None:
        base["step"] = step
    return Event(
        type=EventType.DIAGNOSTIC,
        scope=scope,
        message=message,
        timestamp=timestamp or _now(),
        metadata=_meta(base, metadata) if base or metadata else _EMPTY,
    )


def llm_event(
    scope: str,
    text: str,
    *,
    node_id: str,
    step: int,
    stream_id: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    timestamp: datetime | None = None,
) -> Event:
    """An LLM chunk, final chunk or error (scope ``chunk``, ``final`` or ``error``)."""
    if scope not in (LLM_CHUNK_SCOPE, LLM_FINAL_SCOPE, LLM_ERROR_SCOPE):
        raise ValueError(f"LLM event scope must be chunk, final or error, got {scope!r}")
    base: dict[str, Any] = {"node_id": node_id, "step": step}
    if stream_id is not None:
        base["stream_id"] = stream_id
    return Event(
        type=EventType.LLM,
        scope=scope,
        message=text,
        timestamp=timestamp or _now(),
        metadata=_meta(base, metadata),
    )


def lifecycle_event(
    kind: LifecycleKind,
    message: str,
    *,
    step: int | None = None,
    node_id: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    timestamp: datetime | None = None,
) -> Event:
    """A framework event (run/step/node start and end, checkpoint saved, interrupt).

    Durations go in metadata as ``duration_ms`` (``weavegraph.testing`` ignores that key when it
    compares runs).
    """
    base: dict[str, Any] = {}
    if node_id is not None:
        base["node_id"] = node_id
    if step is not None:
        base["step"] = step
    return Event(
        type=EventType.LIFECYCLE,
        scope=str(kind),
        message=message,
        timestamp=timestamp or _now(),
        metadata=_meta(base, metadata),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamEnd:
    """What a stream-end event says: which session, how it ended, at which step."""

    session_id: str
    status: RunStatus
    step: int


_STREAM_END_RE: Final = re.compile(
    rf"^session=(?P<session>\S*) status=(?P<status>{'|'.join(sorted(STREAM_END_STATUSES))})"
    r" step=(?P<step>\d+)$"
)


def stream_end_event(
    session_id: str,
    status: RunStatus | str,
    step: int,
    *,
    seq: int | None = None,
    timestamp: datetime | None = None,
) -> Event:
    """The run's last event: a diagnostic ``session=<id> status=<status> step=<n>``."""
    status = RunStatus(status)
    if status not in STREAM_END_STATUSES:
        raise ValueError(
            f"a stream ends completed, error, cancelled, interrupted or stopped, not {status}"
        )
    return Event(
        type=EventType.DIAGNOSTIC,
        scope=STREAM_END_SCOPE,
        message=f"session={session_id} status={status.value} step={step}",
        timestamp=timestamp or _now(),
        metadata=FrozenDict({"status": status.value, "step": step}),
        seq=seq,
        session_id=session_id,
    )


def parse_stream_end(event: Event) -> StreamEnd | None:
    """Read a stream-end event's message; ``None`` for any other event."""
    if not event.is_stream_end:
        return None
    match = _STREAM_END_RE.match(event.message)
    if match is None:
        return None
    return StreamEnd(
        session_id=match["session"],
        status=RunStatus(match["status"]),
        step=int(match["step"]),
    )


class EventEmitter(Protocol):
    """Where the runtime hands events. Must never block and never raise (EventBus implements it)."""

    lifecycle: bool
    """Whether lifecycle events are wanted (they are skipped entirely otherwise)."""

    def publish(self, event: Event) -> None:
        """Hand ``event`` on and return at once, whoever listens and however slowly."""
        ...


class NullEmitter:
    """Drops everything: the default for quiet runs."""

    lifecycle = False

    def publish(self, event: Event) -> None:
        return None


def __getattr__(name: str) -> object:
    if name == "StreamStatus":  # the status vocabulary moved to weavegraph.status
        warnings.warn(
            "StreamStatus is deprecated; use weavegraph.status.RunStatus",
            DeprecationWarning,
            stacklevel=2,
        )
        return RunStatus
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
