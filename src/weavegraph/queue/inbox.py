"""Run requests: what ``enqueue``, ``serve --queue`` and ``sessions retry`` put in the inbox, and
what a worker reads back.

A request is ``start`` (an initial state for a new session; an existing one continues), ``answer``
(the answer to a pending ``ctx.interrupt``), ``update`` (``extra`` keys merged as their own step)
or ``cancel``. Each is stored in arrival order under the session's row lock, so a worker sees
requests in the order they were accepted. An idempotency key makes a retried request a no-op
that returns the first one's id. A request for a session that is running follows its multitask
policy: ``reject`` (``SessionBusy``), ``enqueue`` (run it after the current run), ``interrupt``
(stop the current run after its step in flight, then run this one) or ``rollback`` (the same,
and the session is first put back where the stopped run began, recorded as a new step; a session
that run created starts over from this request's state).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, cast

from ..checkpoint import _codec as codec
from ..checkpoint.postgres._sql import q
from ..errors import ConfigError, SessionBusy
from ..status import RunStatus

__all__ = ["KINDS", "Multitask", "Request", "pending", "put"]

KINDS = ("start", "answer", "update", "cancel")


class Multitask(StrEnum):
    """What a request does to a session that is already running."""

    REJECT = "reject"
    ENQUEUE = "enqueue"
    INTERRUPT = "interrupt"
    ROLLBACK = "rollback"


@dataclass(frozen=True, slots=True)
class Request:
    """One stored request: its id (arrival order), kind and JSON payload."""

    id: int
    kind: str
    payload: dict[str, Any]


def multitask_of(value: str | Multitask) -> Multitask:
    """``value`` as a policy, or a ConfigError naming the allowed ones."""
    try:
        return Multitask(value)
    except ValueError:
        allowed = ", ".join(m.value for m in Multitask)
        raise ConfigError(f"multitask must be one of {allowed}, got {value!r}") from None


async def put(
    conn: Any,
    schema: str,
    session_id: str,
    kind: str,
    payload: dict[str, Any],
    *,
    idempotency_key: str | None = None,
    multitask: Multitask = Multitask.REJECT,
) -> tuple[int, bool]:
    """Store a request (in the caller's transaction); ``(request id, is_new)``. The session is
    queued unless it is running; SessionBusy when it runs and the policy is ``reject``."""
    if kind not in KINDS:
        raise ConfigError(f"unknown request kind {kind!r} (expected one of {', '.join(KINDS)})")
    if idempotency_key is not None:
        found = await _by_key(conn, schema, session_id, idempotency_key)
        if found is not None:
            return found, False
    await conn.execute(
        q(
            "INSERT INTO {schema}.sessions (id, created_at, updated_at, latest_step, head, extra) "
            "VALUES (%s, now(), now(), -1, '', '') ON CONFLICT (id) DO NOTHING",
            schema,
        ),
        (session_id,),
    )
    row = await (
        await conn.execute(
            q("SELECT run_status FROM {schema}.sessions WHERE id = %s FOR UPDATE", schema),
            (session_id,),
        )
    ).fetchone()
    running = row is not None and row[0] == RunStatus.RUNNING
    if running and kind != "cancel" and multitask is Multitask.REJECT:
        raise SessionBusy(session_id)
    if multitask is Multitask.ROLLBACK and kind != "cancel":
        payload = {**payload, "rollback": True}
    cur = await conn.execute(
        q(
            "INSERT INTO {schema}.inbox (session_id, kind, payload, idempotency_key) "
            "VALUES (%s, %s, %s, %s) RETURNING id",
            schema,
        ),
        (session_id, kind, codec.dumps(payload), idempotency_key),
    )
    request_id = cast("int", (await cur.fetchone())[0])
    stop_current = kind == "cancel" or multitask in (Multitask.INTERRUPT, Multitask.ROLLBACK)
    if running:
        if stop_current:
            await conn.execute(
                q("UPDATE {schema}.sessions SET cancel_requested = true WHERE id = %s", schema),
                (session_id,),
            )
    else:
        await conn.execute(
            q(
                "UPDATE {schema}.sessions SET run_status = 'queued', available_at = now(), "
                "cancel_requested = false, attempts = 0, last_error = NULL WHERE id = %s",
                schema,
            ),
            (session_id,),
        )
    return request_id, True


async def _by_key(conn: Any, schema: str, session_id: str, key: str) -> int | None:
    row = await (
        await conn.execute(
            q("SELECT id, session_id FROM {schema}.inbox WHERE idempotency_key = %s", schema),
            (key,),
        )
    ).fetchone()
    if row is None:
        return None
    if row[1] != session_id:
        raise ConfigError(
            f"idempotency key {key!r} was already used for session {row[1]!r}, not {session_id!r}"
        )
    return cast("int", row[0])


async def pending(conn: Any, schema: str, session_id: str) -> list[Request]:
    """The session's requests not yet applied, oldest first."""
    cur = await conn.execute(
        q(
            "SELECT id, kind, payload FROM {schema}.inbox WHERE session_id = %s "
            "AND done_at IS NULL ORDER BY id",
            schema,
        ),
        (session_id,),
    )
    return [
        Request(int(rid), str(kind), cast("dict[str, Any]", codec.loads(bytes(data))))
        for rid, kind, data in await cur.fetchall()
    ]
