"""``weavegraph serve --queue``: a server that runs nothing itself.

Every run request (a start, an answer, a state edit, a cancel) goes into the PostgreSQL inbox
(:class:`~weavegraph.queue.QueueClient`) for ``weavegraph worker`` processes on any machine;
streams read the stored event log, woken by ``NOTIFY`` (or Redis) when a worker commits. Whether
a session is busy, and how it is shown, is what the queue's session row says, so any number of
such servers show the same thing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from ..checkpoint.postgres import PostgresCheckpointer
from ..errors import SessionNotFound
from ..events import log as event_log
from ..partial import NodePartial
from ..queue import Multitask, QueueClient
from ..sessions import NO_ANSWER
from ..status import RunStatus
from ._requests import Accepted, RunRequest

__all__ = ["QueueRuns"]

_BUSY = frozenset({RunStatus.QUEUED, RunStatus.RUNNING})


class QueueRuns:
    """Run requests through the queue's inbox; events from the stored log."""

    def __init__(
        self, checkpointer: PostgresCheckpointer, *, stale_after: float | None = None
    ) -> None:
        self._checkpointer = checkpointer
        self._client = QueueClient(checkpointer)
        self._stale_after = event_log.stale_after_default() if stale_after is None else stale_after

    async def _status(self, session_id: str) -> RunStatus | None:
        return (await self._client.run_statuses([session_id])).get(session_id)

    async def busy(self, session_id: str) -> bool:
        return await self._status(session_id) in _BUSY

    async def known(self, session_id: str) -> bool:
        try:
            await self._client.status(session_id)
        except SessionNotFound:
            return False
        return True

    async def managed(self, session_ids: Sequence[str]) -> dict[str, RunStatus]:
        return await self._client.run_statuses(session_ids)

    async def replay(self, key: str, session_id: str | None) -> Accepted | None:
        found = await self._client.find(key)
        if found is None:
            return None
        request_id, first_session = found
        if session_id is not None and session_id != first_session:
            return None  # the inbox refuses it with a message naming both sessions
        return Accepted(session_id=first_session, request_id=request_id)

    async def submit(
        self, session_id: str, request: RunRequest, *, multitask: Multitask, key: str | None
    ) -> Accepted:
        """Put the request in the inbox (SessionBusy for a running session under reject)."""
        if request.answer is not NO_ANSWER or request.update is not None or request.goto:
            request_id = await self._client.enqueue(
                session_id,
                answer=None if request.answer is NO_ANSWER else request.answer,
                update=None if request.update is None else request.update.to_json_value(),
                goto=request.goto,
                idempotency_key=key,
                multitask=multitask,
            )
        else:
            request_id = await self._client.enqueue(
                session_id, request.state, idempotency_key=key, multitask=multitask
            )
        return Accepted(session_id=session_id, request_id=request_id)

    async def cancel(self, session_id: str) -> bool:
        if not await self.busy(session_id):
            return False
        await self._client.cancel(session_id)
        return True

    async def edit(self, session_id: str, partial: NodePartial) -> tuple[int, dict[str, Any]]:
        """Queue the edit: a worker records it as its own step, then the session goes on."""
        request_id = await self._client.update(session_id, partial.to_json_value())
        return 202, {"session_id": session_id, "request_id": request_id}

    async def events(
        self, session_id: str, last_event_id: int | None, *, live: bool = False
    ) -> AsyncIterator[tuple[dict[str, Any], str]]:
        """The session's stored events after ``last_event_id``, then each one a worker stores,
        until a stream end with nothing queued or running. Without ``last_event_id``: from the
        start of its run in progress or queued, else of its last run. (Live LLM chunks stay on
        the worker: only stored events are sent.)"""
        del live
        after = last_event_id
        if after is None:
            upcoming = await self._upcoming(session_id)
            after = await event_log.last_run_start(
                self._checkpointer, session_id, upcoming=upcoming
            )
        async for event, _stored in event_log.follow(
            self._checkpointer,
            session_id,
            after=after,
            running=lambda: self.busy(session_id),
            stale_after=self._stale_after,
        ):
            yield event, "stored" if isinstance(event.get("seq"), int) else "live"

    async def _upcoming(self, session_id: str) -> bool:
        """Whether a run is queued, or claimed with its request not yet applied (its events
        come after the log's last stream end)."""
        status = await self._client.status(session_id)
        return status.status is RunStatus.QUEUED or (
            status.status is RunStatus.RUNNING and status.pending_requests > 0
        )

    def request_stop_all(self) -> None:
        """Nothing runs here: the workers keep running."""

    async def shutdown(self) -> None:
        """Nothing runs here: the workers keep running."""
