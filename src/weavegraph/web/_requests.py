"""What a request to run a session carries, and what the two ways of serving runs promise.

A server either runs sessions in its own process (:class:`~weavegraph.web._runs.RunManager`) or
only puts requests in the PostgreSQL inbox for ``weavegraph worker`` processes
(:class:`~weavegraph.web._queue_runs.QueueRuns`, ``weavegraph serve --queue``). The handlers
talk to either through :class:`Runs`; neither decides a status the other would show otherwise.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from ..partial import NodePartial
from ..queue import Multitask
from ..sessions import NO_ANSWER
from ..state import VersionedState
from ..status import RunStatus
from ._body import ApiError

__all__ = [
    "IDEMPOTENCY_HEADER",
    "MAX_KEY_CHARS",
    "Accepted",
    "RunRequest",
    "Runs",
    "idempotency_key_of",
    "multitask_of",
]

IDEMPOTENCY_HEADER: Final = "idempotency-key"
"""The header that makes a retried ``POST /api/runs`` answer what the first one did."""
MAX_KEY_CHARS: Final = 255


@dataclass(frozen=True, slots=True, kw_only=True)
class RunRequest:
    """What a run starts from: a new state (or None to continue the stored session), and how a
    paused session continues (an answer, an edit first, other nodes to run)."""

    state: VersionedState | None = None
    answer: Any = NO_ANSWER
    update: NodePartial | None = None
    goto: Sequence[str] | None = None

    def describe(self) -> str:
        """How the run starts, for the server's log."""
        if self.goto is not None:
            return f"resuming at {', '.join(self.goto) or 'the end'}"
        if self.answer is not NO_ANSWER:
            return "answering its question"
        return "new state" if self.state is not None else "continuing the stored session"


@dataclass(frozen=True, slots=True, kw_only=True)
class Accepted:
    """A run request taken: its session, and its id in the queue's inbox (queue mode only)."""

    session_id: str
    request_id: int | None = None

    def to_json_value(self) -> dict[str, Any]:
        """The 202 answer's body."""
        body: dict[str, Any] = {
            "session_id": self.session_id,
            "events": f"/api/runs/{self.session_id}/events",
        }
        if self.request_id is not None:
            body["request_id"] = self.request_id
        return body


def multitask_of(value: object) -> Multitask:
    """The body's ``"multitask"`` (default ``reject``); 400 naming the allowed values."""
    if value is None:
        return Multitask.REJECT
    try:
        return Multitask(value)
    except ValueError:
        allowed = ", ".join(m.value for m in Multitask)
        raise ApiError(400, f'"multitask" must be one of {allowed}, got {value!r}') from None


def idempotency_key_of(headers: Mapping[str, str]) -> str | None:
    """The ``Idempotency-Key`` header (None when absent); 400 when empty or too long."""
    key = headers.get(IDEMPOTENCY_HEADER)
    if key is None:
        return None
    if not key.strip() or len(key) > MAX_KEY_CHARS:
        raise ApiError(400, f"Idempotency-Key must be 1 to {MAX_KEY_CHARS} characters")
    return key


class Runs(Protocol):
    """How a server runs sessions: in its own process, or through the queue's workers."""

    async def busy(self, session_id: str) -> bool:
        """Whether a run of the session is in progress (or queued for a worker)."""
        ...

    async def known(self, session_id: str) -> bool:
        """Whether the session exists for this server (stored, running or queued)."""
        ...

    async def managed(self, session_ids: Sequence[str]) -> dict[str, RunStatus]:
        """The status of each of ``session_ids`` that a run in progress (or the queue) sets."""
        ...

    async def replay(self, key: str, session_id: str | None) -> Accepted | None:
        """What the request first sent with ``key`` was answered, if one was."""
        ...

    async def submit(
        self, session_id: str, request: RunRequest, *, multitask: Multitask, key: str | None
    ) -> Accepted:
        """Start (or queue) a run; ``SessionBusy`` when it runs and ``multitask`` is reject."""
        ...

    async def cancel(self, session_id: str) -> bool:
        """Cancel the session's run; False when none is in progress or queued."""
        ...

    async def edit(self, session_id: str, partial: NodePartial) -> tuple[int, dict[str, Any]]:
        """Record a state edit (queue mode: queue it); the HTTP status and body to answer."""
        ...

    def events(
        self, session_id: str, last_event_id: int | None, *, live: bool = False
    ) -> AsyncIterator[tuple[dict[str, Any], str]]:
        """The session's events as SSE sends them (see ``RunManager.events``)."""
        ...

    def request_stop_all(self) -> None:
        """Server shutdown: runs of this process stop at their next step boundary."""
        ...

    async def shutdown(self) -> None:
        """Stop (and wait for) what this process runs."""
        ...
