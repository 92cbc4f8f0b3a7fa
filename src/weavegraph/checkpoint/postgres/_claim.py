"""A claim on a session, and the fence every claimed write passes (see ``weavegraph.queue``).

Workers claim queued sessions (``queue/claims``); every other run of a session on PostgreSQL
claims it for the run's duration (``_hold``). Either way the claim is the one decision here: the
fencing epoch goes up by one, a new random token, a lease on the database's clock
(:data:`SET_CLAIM`); :func:`heartbeat` extends it while the token matches, and releasing gives
the session back with how its run ended (``_claim_batch``).

A save or event append for a session this process has claimed is checked by :func:`verify`
under the session row's lock (the claim token is still ours and the step builds on the stored
latest one; otherwise :class:`~weavegraph.errors.LeaseLost` and nothing of it is written). A
claimed save joins the group commit like any other (``_batch``): in the same transaction the
lease moves forward on the database's clock, the step records the claim's epoch and the inbox
requests the step applied are marked done. Claims and releases of many sessions are batched too
(``_claim_batch``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final, cast

import orjson

from ...errors import CheckpointError, ConfigError, LeaseLost
from ...status import RunStatus
from ._sql import IDS, fetchall, ids, q

__all__ = [
    "DEFAULT_LEASE_S",
    "RELEASED",
    "RELEASE_SET",
    "SET_CLAIM",
    "Claim",
    "check",
    "check_lease",
    "heartbeat",
    "heartbeats",
    "set_claim",
    "verify",
]

DEFAULT_LEASE_S = 30.0
"""How long a claim lives without a heartbeat (seconds); heartbeats come every third of it."""


def check_lease(lease_s: float) -> None:
    """ConfigError unless ``lease_s`` is a usable lease (heartbeats come every third of it)."""
    if not lease_s > 0.3:
        raise ConfigError(f"the lease must be longer than 0.3 s, got {lease_s}")


def set_claim(holder: str, lease: str) -> str:
    """What claiming does to a session row ``s``, given SQL for the holder's name and the lease
    (seconds)."""
    return (
        f"epoch = s.epoch + 1, claim_token = gen_random_uuid()::text, worker = {holder}, "
        f"lease_until = now() + make_interval(secs => {lease}), attempts = s.attempts + 1, "
        "run_status = 'running'"
    )


SET_CLAIM = set_claim("%s", "%s")
"""What claiming does to a session row ``s`` (parameters: the holder's name, the lease)."""

RELEASED: Final = {
    "claim_token": "NULL",
    "lease_until": "NULL",
    "worker": "NULL",
    "cancel_requested": "false",
    "attempts": "0",
    "last_error": "u.error",
    "available_at": "now()",
    "run_status": "CASE WHEN u.status NOT IN ('cancelled', 'dead') AND EXISTS (SELECT 1 FROM "
    "{schema}.inbox b WHERE b.session_id = s.id AND b.done_at IS NULL AND NOT b.id = ANY(%s)) "
    "THEN 'queued' ELSE u.status END",
}
"""What giving a claim back does to its session row ``s``, column by column, given ``u``: the
run's ``status`` (``queued`` instead while requests wait, unless it is cancelled or dead) and its
last ``error``. The parameter: the inbox requests the same statement marks done (it still sees
them pending)."""
RELEASE_SET: Final = ", ".join(f"{column} = {value}" for column, value in RELEASED.items())
""":data:`RELEASED` as an UPDATE's SET list."""


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
    holder: str = ""
    """Who holds it (a worker's name, or ``host:pid`` and the program of an in-process run)."""
    previous: str | None = None
    """For a claim taken over (``stale``): who held the expired claim."""
    shared: bool = True
    """Whether any run of the session in this process writes under it (a worker's claim, which
    its owner releases); an in-process run's claim is that run's alone."""
    announced: bool = False
    """Whether the takeover was announced in the session's event log (``attempt_restarted``)."""
    ended: RunStatus | None = None
    """How the run ended: an in-process run's claim is given back with it."""
    closing: bool = False
    """The run's last events are being stored: an in-process run's claim is given back
    (``ended``) in their commit."""
    released: bool = False
    """Given back already (with the run's last events)."""
    renewed_at: float = field(default_factory=time.monotonic)
    """When its lease was last set (``time.monotonic``): by the claim, a heartbeat or a commit."""

    @property
    def held(self) -> bool:
        """Still this process's to give back: neither lost nor given back already."""
        return not (self.lost or self.released)

    def takeover(self) -> str | None:
        """Once, for a claim taken over from an expired one: who held that one; else None."""
        if not self.stale or self.announced:
            return None
        self.announced = True
        return self.previous or "an earlier claim"


def verify(claim: Claim, token: str | None, latest: int, step: int | None) -> None:
    """The fence, given the session row read under its lock (``token``: its claim token,
    ``latest``: its latest step): LeaseLost unless the claim is still the session's; a
    CheckpointError unless ``step`` (None: no step) builds on ``latest``."""
    if token != claim.token:
        claim.lost = True
        raise LeaseLost(claim.session_id, f"epoch {claim.epoch} was fenced out")
    if step is not None and not latest <= step <= latest + 1:
        raise CheckpointError(
            f"step {step} of session {claim.session_id!r} does not build on the stored "
            f"latest step {latest}"
        )


BEAT = 1 / 3
"""A claim's lease is renewed each time this share of it ran down: by its heartbeat (every
``lease * BEAT`` seconds) and by a commit that finds it that far down."""


def renewal(claim: Claim, now: float) -> float | None:
    """The lease a commit under ``claim`` planned at ``now`` (``time.monotonic``) sets (seconds
    from then); None while less than :data:`BEAT` of it ran down since it was last set (the row
    is then left as it is). The committed save sets ``claim.renewed_at``."""
    if now - claim.renewed_at < claim.lease_s * BEAT:
        return None
    return claim.lease_s


async def check(conn: Any, schema: str, claim: Claim, step: int | None) -> int:
    """Lock the session row and :func:`verify` the claim; the stored latest step."""
    row = await (
        await conn.execute(
            q(
                "SELECT claim_token, latest_step FROM {schema}.sessions WHERE id = %s FOR UPDATE",
                schema,
            ),
            (claim.session_id,),
        )
    ).fetchone()
    token, latest = (None, -1) if row is None else (row[0], int(row[1]))
    verify(claim, token, latest, step)
    return latest


_HEARTBEATS = (
    "UPDATE {schema}.sessions AS s SET lease_until = now() + make_interval(secs => u.lease) "
    "FROM json_to_recordset(%s::json) AS u (id text, token text, lease float8) "
    f"WHERE s.id = u.id AND s.id = ANY({IDS}) AND s.claim_token = u.token "
    "RETURNING s.id, s.cancel_requested"
)


async def heartbeats(conn: Any, schema: str, held: Sequence[Claim]) -> None:
    """Extend the leases of ``held`` (at most one claim per session) in one statement, noting a
    requested cancel on each; a claim that is no longer its session's is marked ``lost``."""
    rows = [{"id": c.session_id, "token": c.token, "lease": c.lease_s} for c in held]
    params = (orjson.dumps(rows).decode(), ids(c.session_id for c in held))
    found = await fetchall(conn, q(_HEARTBEATS, schema), params)
    alive = {cast("str", sid): bool(cancel) for sid, cancel in found}
    now = time.monotonic()
    for claim in held:
        if claim.session_id in alive:
            claim.renewed_at = now
            claim.cancel_requested = alive[claim.session_id]
        else:
            claim.lost = True


async def heartbeat(conn: Any, schema: str, claim: Claim) -> bool:
    """Extend the lease while the claim is still the session's; False once it is not (the
    claim is then ``lost``). Notes a requested cancel on ``claim``."""
    await heartbeats(conn, schema, (claim,))
    return not claim.lost
