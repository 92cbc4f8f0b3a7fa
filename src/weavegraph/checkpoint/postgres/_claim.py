"""A worker's claim on a session, and the fence every claimed write passes (see ``weavegraph.queue``).

A save or event append for a session this process has claimed runs, in its one transaction:
:func:`check` (under the session row's lock: the claim token is still ours and the step builds on
the stored latest one; otherwise :class:`~weavegraph.errors.LeaseLost` and nothing is written),
the checkpoint's own statements, then :func:`extend` (the lease moves forward on the database's
clock, the step records the claim's epoch, the inbox requests the step applied are marked done).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ...errors import CheckpointError, LeaseLost
from ._sql import q

__all__ = ["Claim", "check", "extend"]


@dataclass(slots=True, kw_only=True)
class Claim:
    """This process's hold on one session: what the fence checks and what the lease extends."""

    session_id: str
    token: str
    epoch: int
    lease_s: float
    attempts: int = 1
    stale: bool = False
    """Taken over from a claim whose lease expired (the previous attempt died or was cut off)."""
    consume: list[int] = field(default_factory=list[int])
    """Inbox requests applied to the session: marked done by the next commit."""
    last_step: int = -1
    """The newest step committed under this claim."""
    cancel_requested: bool = False
    lost: bool = False


async def check(conn: Any, schema: str, claim: Claim, step: int | None) -> int:
    """Lock the session row and check the claim (and that ``step`` builds on the stored latest
    one); the stored latest step. LeaseLost when another claim holds the session."""
    row = await (
        await conn.execute(
            q(
                "SELECT claim_token, latest_step FROM {schema}.sessions WHERE id = %s FOR UPDATE",
                schema,
            ),
            (claim.session_id,),
        )
    ).fetchone()
    if row is None or row[0] != claim.token:
        claim.lost = True
        raise LeaseLost(claim.session_id, f"epoch {claim.epoch} was fenced out")
    latest = int(row[1])
    if step is not None and not latest <= step <= latest + 1:
        raise CheckpointError(
            f"step {step} of session {claim.session_id!r} does not build on the stored "
            f"latest step {latest}"
        )
    return latest


async def extend(conn: Any, schema: str, claim: Claim, step: int | None) -> None:
    """In the committing transaction: extend the lease, stamp the step with the claim's epoch,
    mark the applied inbox requests done; notes a pending cancel on ``claim``."""
    row = await (
        await conn.execute(
            q(
                "WITH s AS (UPDATE {schema}.sessions SET attempts = 0, "
                "lease_until = now() + make_interval(secs => %s) WHERE id = %s "
                "RETURNING cancel_requested), "
                "e AS (UPDATE {schema}.steps SET epoch = %s WHERE session_id = %s AND step = %s), "
                "i AS (UPDATE {schema}.inbox SET done_at = now() WHERE id = ANY(%s)) "
                "SELECT cancel_requested FROM s",
                schema,
            ),
            (
                claim.lease_s,
                claim.session_id,
                claim.epoch,
                claim.session_id,
                -1 if step is None else step,
                list(claim.consume),
            ),
        )
    ).fetchone()
    claim.cancel_requested = bool(row and row[0])
