"""Claiming queued sessions: the worker's probes on the session rows.

:func:`claim` takes up to ``limit`` sessions with two index-backed ``FOR UPDATE SKIP LOCKED``
probes, expired leases first (their holder died or was cut off), then queued work by priority and
age. What a claim sets (epoch, token, lease on the database's clock), the heartbeat and the
release are the one claim of ``checkpoint/postgres/_claim``, the same for every run.
"""

from __future__ import annotations

from typing import Any, cast

from ..checkpoint.postgres._claim import SET_CLAIM, Claim
from ..checkpoint.postgres._sql import q

__all__ = ["cancel_pending", "claim"]

_RETURNING = "RETURNING s.id, s.epoch, s.claim_token, s.attempts, picked.previous"

_STALE = (
    "WITH picked AS (SELECT id, worker AS previous FROM {schema}.sessions "
    "WHERE run_status = 'running' AND lease_until < now() ORDER BY lease_until LIMIT %s "
    "FOR UPDATE SKIP LOCKED) "
    f"UPDATE {{schema}}.sessions s SET {SET_CLAIM} FROM picked WHERE s.id = picked.id {_RETURNING}"
)
_QUEUED = (
    "WITH picked AS (SELECT id, NULL::text AS previous FROM {schema}.sessions "
    "WHERE run_status = 'queued' AND available_at <= now() "
    "ORDER BY priority DESC, available_at, id LIMIT %s FOR UPDATE SKIP LOCKED) "
    f"UPDATE {{schema}}.sessions s SET {SET_CLAIM} FROM picked WHERE s.id = picked.id {_RETURNING}"
)


async def claim(conn: Any, schema: str, worker: str, lease_s: float, limit: int) -> list[Claim]:
    """Up to ``limit`` new claims (stale leases first), in the caller's transaction."""
    found: list[Claim] = []
    for template, stale in ((_STALE, True), (_QUEUED, False)):
        want = limit - len(found)
        if want <= 0:
            break
        cur = await conn.execute(q(template, schema), (want, worker, lease_s))
        for sid, epoch, token, attempts, previous in await cur.fetchall():
            found.append(
                Claim(
                    session_id=cast("str", sid), token=cast("str", token), epoch=int(epoch),
                    lease_s=lease_s, attempts=int(attempts), stale=stale, holder=worker,
                    previous=cast("str | None", previous),
                )
            )  # fmt: skip
    return found


async def cancel_pending(conn: Any, schema: str, session_id: str) -> None:
    """Mark every waiting request of a cancelled or dead session done."""
    await conn.execute(
        q(
            "UPDATE {schema}.inbox SET done_at = now() WHERE session_id = %s AND done_at IS NULL",
            schema,
        ),
        (session_id,),
    )
