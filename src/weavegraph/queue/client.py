"""``QueueClient``: putting run requests in the inbox, and reading how queued sessions stand.

What ``AppRunner.enqueue``, ``weavegraph serve --queue`` and ``weavegraph sessions retry`` use.
Every request commits first and is announced (``NOTIFY``) after, so a worker never wakes up for
work it cannot see yet.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from ..checkpoint.base import Checkpointer
from ..checkpoint.postgres import PostgresCheckpointer
from ..checkpoint.postgres._notify import notify_work, work_channel
from ..checkpoint.postgres._sql import q
from ..errors import CheckpointError, ConfigError, SessionNotFound, StateError
from ..partial import NodePartial
from ..runtime.values import NO_ANSWER, validate_session_id
from ..state import VersionedState, freeze_json
from ..status import RunStatus
from . import inbox
from .inbox import Multitask, multitask_of

__all__ = ["QueueClient", "QueueStatus"]


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueStatus:
    """A session as the queue sees it (``status`` None: no worker ever managed it)."""

    session_id: str
    status: RunStatus | None
    epoch: int
    attempts: int
    worker: str | None
    lease_until: datetime | None
    last_error: str | None
    pending_requests: int


class QueueClient:
    """Run requests for the sessions of one PostgreSQL database (schema)."""

    def __init__(self, checkpointer: Checkpointer) -> None:
        if not isinstance(checkpointer, PostgresCheckpointer):
            raise ConfigError(
                f"the queue lives in PostgreSQL, not in a {type(checkpointer).__name__}: "
                "use a PostgresCheckpointer (AppRunner(app, 'postgres'))"
            )
        self.checkpointer = checkpointer

    async def enqueue(
        self,
        session_id: str,
        state: VersionedState | str | None = None,
        *,
        answer: Any = NO_ANSWER,
        update: Mapping[str, Any] | None = None,
        goto: Sequence[str] | None = None,
        idempotency_key: str | None = None,
        multitask: Multitask | str = Multitask.REJECT,
    ) -> int:
        """Queue a run of ``session_id``: a new session starts from ``state``, an existing one
        continues; with ``answer``, the answer to its pending ``ctx.interrupt`` (optionally with
        an ``update`` applied first, or continuing at ``goto`` nodes, as ``AppRunner.resume``).
        Returns the request's id (the first one's, for a repeated ``idempotency_key``)."""
        validate_session_id(session_id)
        policy = multitask_of(multitask)
        if answer is not NO_ANSWER or update is not None or goto is not None:
            payload = _answer_payload(None if answer is NO_ANSWER else answer, update, goto)
            return await self._put(session_id, "answer", payload, idempotency_key, policy)
        if isinstance(state, str):
            state = VersionedState.new_with_user_message(state)
        payload = {"state": None if state is None else state.to_json_value()}
        return await self._put(session_id, "start", payload, idempotency_key, policy)

    async def update(
        self,
        session_id: str,
        update: Mapping[str, Any],
        *,
        idempotency_key: str | None = None,
        multitask: Multitask | str = Multitask.ENQUEUE,
    ) -> int:
        """Queue an edit of the state (``{"messages"?, "extra"?, "errors"?}``, as
        ``NodePartial.from_json_value`` reads it), recorded as its own step; then the session
        continues."""
        validate_session_id(session_id)
        NodePartial.from_json_value(update)  # refused here, not later on a worker
        try:
            frozen = freeze_json(dict(update))
        except ValueError as exc:
            raise StateError(f"the update cannot be stored: {exc}") from None
        return await self._put(
            session_id, "update", {"update": frozen}, idempotency_key, multitask_of(multitask)
        )

    async def cancel(self, session_id: str, *, idempotency_key: str | None = None) -> int:
        """Cancel the session: a running one stops after its step in flight commits."""
        validate_session_id(session_id)
        return await self._put(session_id, "cancel", {}, idempotency_key, Multitask.ENQUEUE)

    async def retry(self, session_id: str) -> bool:
        """Queue a ``dead``, ``error`` or ``cancelled`` session again; False if it is none."""
        validate_session_id(session_id)
        cp = self.checkpointer

        async def work(conn: Any) -> bool:
            cur = await conn.execute(
                q(
                    "UPDATE {schema}.sessions SET run_status = 'queued', attempts = 0, "
                    "available_at = now(), last_error = NULL WHERE id = %s "
                    "AND run_status IN ('dead', 'error', 'cancelled') RETURNING id",
                    cp.schema,
                ),
                (session_id,),
            )
            return await cur.fetchone() is not None

        requeued = await cp.execute(work)
        if requeued:
            await self._announce(session_id)
        return requeued

    async def find(self, idempotency_key: str) -> tuple[int, str] | None:
        """The request stored under ``idempotency_key``: ``(request id, session id)``, or None."""
        cp = self.checkpointer

        async def work(conn: Any) -> Any:
            cur = await conn.execute(
                q(
                    "SELECT id, session_id FROM {schema}.inbox WHERE idempotency_key = %s",
                    cp.schema,
                ),
                (idempotency_key,),
            )
            return await cur.fetchone()

        row = await cp.execute(work)
        return None if row is None else (int(row[0]), str(row[1]))

    async def run_statuses(self, session_ids: Sequence[str]) -> dict[str, RunStatus]:
        """How the queue sees each of ``session_ids`` that a worker manages (or is queued)."""
        cp = self.checkpointer

        async def work(conn: Any) -> Any:
            cur = await conn.execute(
                q(
                    "SELECT id, run_status FROM {schema}.sessions WHERE id = ANY(%s) "
                    "AND run_status IS NOT NULL",
                    cp.schema,
                ),
                (list(session_ids),),
            )
            return await cur.fetchall()

        return {str(sid): RunStatus(status) for sid, status in await cp.execute(work)}

    async def status(self, session_id: str) -> QueueStatus:
        """How the queue sees ``session_id`` (SessionNotFound if it is not stored)."""
        validate_session_id(session_id)
        cp = self.checkpointer

        async def work(conn: Any) -> Any:
            cur = await conn.execute(
                q(
                    "SELECT run_status, epoch, attempts, worker, lease_until, last_error, "
                    "(SELECT count(*) FROM {schema}.inbox i WHERE i.session_id = s.id "
                    "AND i.done_at IS NULL) FROM {schema}.sessions s WHERE id = %s",
                    cp.schema,
                ),
                (session_id,),
            )
            return await cur.fetchone()

        row = await cp.execute(work)
        if row is None:
            raise SessionNotFound(session_id)
        status, epoch, attempts, worker, lease, error, waiting = row
        return QueueStatus(
            session_id=session_id, status=None if status is None else RunStatus(status),
            epoch=int(epoch), attempts=int(attempts), worker=worker,
            lease_until=cast("datetime | None", lease), last_error=error,
            pending_requests=int(waiting),
        )  # fmt: skip

    async def _put(
        self,
        session_id: str,
        kind: str,
        payload: dict[str, Any],
        key: str | None,
        policy: Multitask,
    ) -> int:
        import psycopg

        cp = self.checkpointer
        for attempt in (1, 2):
            try:
                request_id, _new = await cp.execute(
                    lambda conn: inbox.put(
                        conn, cp.schema, session_id, kind, payload,
                        idempotency_key=key, multitask=policy,
                    )
                )  # fmt: skip
                break
            except CheckpointError as exc:
                # Two requests with one idempotency key at once: the second finds the first.
                if attempt == 2 or not isinstance(exc.__cause__, psycopg.errors.UniqueViolation):
                    raise
        else:  # pragma: no cover - the loop breaks or raises
            raise AssertionError("unreachable")
        await self._announce(session_id)
        return request_id

    async def _announce(self, session_id: str) -> None:
        """Wake the workers (after the commit): NOTIFY, and Redis when configured."""
        cp = self.checkpointer
        await cp.execute(lambda conn: notify_work(conn, cp.schema, session_id))
        await cp.notifier.publish(work_channel(cp.schema), [session_id])


def _answer_payload(
    answer: Any, update: Mapping[str, Any] | None, goto: Sequence[str] | None
) -> dict[str, Any]:
    """An answer request's payload, checked here rather than later on a worker."""
    try:
        payload: dict[str, Any] = {"answer": freeze_json(answer)}
    except ValueError as exc:
        raise StateError(f"the answer cannot be stored: {exc}") from None
    if update is not None:
        NodePartial.from_json_value(update)
        try:
            payload["update"] = freeze_json(dict(update))
        except ValueError as exc:
            raise StateError(f"the update cannot be stored: {exc}") from None
    if goto is not None:
        payload["goto"] = [str(node) for node in goto]
    return payload
