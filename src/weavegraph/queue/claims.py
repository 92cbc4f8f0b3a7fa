"""Claiming sessions, keeping and giving back the claim: the queue's SQL on the session rows.

:func:`claim` takes up to ``limit`` sessions with two index-backed ``FOR UPDATE SKIP LOCKED``
probes, expired leases first (their worker died or was cut off), then queued work by priority and
age. Each claim bumps the session's fencing epoch and sets a new random token and a lease on the
database's clock. :func:`heartbeat` extends a lease only while the token is still the session's;
:func:`release` gives the session back with its new status (queued again when requests arrived).
"""

from __future__ import annotations

from typing import Any, cast

from ..checkpoint.postgres._claim import Claim
from ..checkpoint.postgres._sql import q
from ..status import RunStatus

__all__ = ["claim", "heartbeat", "release"]

_SET_CLAIM = (
    "epoch = s.epoch + 1, claim_token = gen_random_uuid()::text, worker = %s, "
    "lease_until = now() + make_interval(secs => %s), attempts = s.attempts + 1, "
    "run_status = 'running'"
)
_RETURNING = "RETURNING s.id, s.epoch, s.claim_token, s.attempts"

_STALE = (
    "WITH picked AS (SELECT id FROM {schema}.sessions WHERE run_status = 'running' "
    "AND lease_until < now() ORDER BY lease_until LIMIT %s FOR UPDATE SKIP LOCKED) "
    f"UPDATE {{schema}}.sessions s SET {_SET_CLAIM} FROM picked WHERE s.id = picked.id {_RETURNING}"
)
_QUEUED = (
    "WITH picked AS (SELECT id FROM {schema}.sessions WHERE run_status = 'queued' "
    "AND available_at <= now() ORDER BY priority DESC, available_at, id LIMIT %s "
    "FOR UPDATE SKIP LOCKED) "
    f"UPDATE {{schema}}.sessions s SET {_SET_CLAIM} FROM picked WHERE s.id = picked.id {_RETURNING}"
)


async def claim(conn: Any, schema: str, worker: str, lease_s: float, limit: int) -> list[Claim]:
    """Up to ``limit`` new claims (stale leases first), in the caller's transaction."""
    found: list[Claim] = []
    for template, stale in ((_STALE, True), (_QUEUED, False)):
        want = limit - len(found)
        if want <= 0:
            break
        cur = await conn.execute(q(template, schema), (want, worker, lease_s))
        for sid, epoch, token, attempts in await cur.fetchall():
            found.append(
                Claim(
                    session_id=cast("str", sid), token=cast("str", token), epoch=int(epoch),
                    lease_s=lease_s, attempts=int(attempts), stale=stale,
                )
            )  # fmt: skip
    return found


async def heartbeat(conn: Any, schema: str, claim: Claim) -> bool:
    """Extend the lease while the claim is still the session's; False once it is not. Notes a
    requested cancel on ``claim``."""
    row = await (
        await conn.execute(
            q(
                "UPDATE {schema}.sessions SET lease_until = now() + make_interval(secs => %s) "
                "WHERE id = %s AND claim_token = %s RETURNING cancel_requested",
                schema,
            ),
            (claim.lease_s, claim.session_id, claim.token),
        )
    ).fetchone()
    if row is None:
        claim.lost = True
        return False
    claim.cancel_requested = bool(row[0])
    return True


async def release(
    conn: Any, schema: str, claim: Claim, status: RunStatus, error: str | None = None
) -> RunStatus | None:
    """Give the session back as ``status`` (``queued`` instead while requests wait, unless it
    is cancelled or dead); marks the claim's applied requests done. The status set, or None when
    the claim was no longer the session's."""
    row = await (
        await conn.execute(
            q(
                "WITH i AS (UPDATE {schema}.inbox SET done_at = now() WHERE id = ANY(%s)) "
                "UPDATE {schema}.sessions s SET claim_token = NULL, lease_until = NULL, "
                "worker = NULL, cancel_requested = false, attempts = 0, last_error = %s, "
                "available_at = now(), run_status = CASE WHEN %s NOT IN ('cancelled', 'dead') "
                "AND EXISTS (SELECT 1 FROM {schema}.inbox b WHERE b.session_id = s.id "
                "AND b.done_at IS NULL AND NOT b.id = ANY(%s)) THEN 'queued' ELSE %s END "
                "WHERE s.id = %s AND s.claim_token = %s RETURNING s.run_status",
                schema,
            ),
            (
                list(claim.consume),
                error,
                status.value,
                list(claim.consume),
                status.value,
                claim.session_id,
                claim.token,
            ),
        )
    ).fetchone()
    if row is None:
        return None
    claim.consume.clear()
    return RunStatus(row[0])


async def cancel_pending(conn: Any, schema: str, session_id: str) -> None:
    """Mark every waiting request of a cancelled or dead session done."""
    await conn.execute(
        q(
            "UPDATE {schema}.inbox SET done_at = now() WHERE session_id = %s AND done_at IS NULL",
            schema,
        ),
        (session_id,),
    )
