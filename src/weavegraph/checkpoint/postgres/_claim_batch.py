"""Claims and releases of many sessions, a batch in one transaction (through the group commit).

Runs that start or end together share commits like their saves do: :func:`send_claims` locks every
requested session row at once (made if new, in session id order) and claims those whose claim is
not alive, in one round trip (``_claim.set_claim``: epoch bump, new token, lease on the
database's clock); a session another claim holds is refused alone with ``SessionBusy`` naming its
holder. Sessions whose rows exist (this process committed them) are claimed by
:func:`claim_existing` the same way with one statement outside a transaction block (a
transaction's BEGIN, COMMIT and extra statements cost more of this process's time than the claims
themselves). :func:`release_all` gives many claims back with one statement; a claim that is no
longer its session's releases nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import orjson

from ...errors import SessionBusy
from ...status import RunStatus
from ._claim import RELEASE_SET, Claim, set_claim
from ._sql import IDS, fetchall, ids, q, recordset

__all__ = [
    "ClaimRequest",
    "ClaimRound",
    "ReleaseRequest",
    "claim_existing",
    "read_claims",
    "release_all",
    "send_claims",
]

# Makes the missing rows, then locks them all in session id order (a lock, not a new row
# version), saying who held each before.
_CREATE = (
    "INSERT INTO {schema}.sessions (id, created_at, updated_at, latest_step, head, extra) "
    "SELECT id, now(), now(), -1, '', '' FROM json_array_elements_text(%s::json) AS t (id) "
    "ORDER BY id ON CONFLICT (id) DO NOTHING"
)
_LOCK = (
    "SELECT id, claim_token, coalesce(lease_until >= now(), false), worker, "
    "extract(epoch FROM lease_until - now())::float8 FROM {schema}.sessions "
    f"WHERE id = ANY({IDS}) ORDER BY id FOR UPDATE"
)
# Claims those rows whose claim is not alive (the rows are locked: this sees what _LOCK saw).
# Here and in _RELEASE the ids are given again (``IDS``, an array in _RELEASE): joined only with
# the row set (which the server guesses is 100 rows) the table would be read whole by every batch.
_RETURNING = "RETURNING s.id, s.epoch, s.claim_token, s.attempts"
_TAKE = (
    f"UPDATE {{schema}}.sessions s SET {set_claim('u.holder', 'u.lease')} "
    f"FROM {recordset('id text, holder text, lease float8', 'u')} "
    f"WHERE s.id = u.id AND s.id = ANY({IDS}) AND NOT coalesce(s.claim_token IS NOT NULL "
    f"AND s.lease_until >= now(), false) {_RETURNING}"
)
# The claims of sessions whose rows exist, as one statement (its own transaction): the rows
# locked in session id order first (``taken`` reads ``locked``'s count, so it runs after it),
# then those whose claim is not alive claimed; each locked row with its claim if taken. A row
# another transaction changed meanwhile is read, and re-checked by the update, as it left it.
_CLAIM_EXISTING = (
    f"WITH locked AS ({_LOCK}), taken AS ({_TAKE.removesuffix(_RETURNING)} "
    f"AND (SELECT count(*) FROM locked) >= 0 {_RETURNING}) "
    "SELECT l.*, t.epoch, t.claim_token, t.attempts FROM locked AS l LEFT JOIN taken AS t USING (id)"
)
_LOCK_HELD = "SELECT id FROM {schema}.sessions WHERE id = ANY(%s) ORDER BY id FOR UPDATE"
# Gives claims back as their runs ended (``queued`` instead while requests wait, unless cancelled
# or dead) and marks their applied requests done.
_RELEASE = (
    "WITH i AS (UPDATE {schema}.inbox SET done_at = now() WHERE id = ANY(%s)) "
    f"UPDATE {{schema}}.sessions s SET {RELEASE_SET} "
    "FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[]) AS u (id, token, status, error) "
    "WHERE s.id = u.id AND s.id = ANY(%s) AND s.claim_token = u.token "
    "RETURNING s.id, u.token, s.run_status"
)


@dataclass(slots=True)
class ClaimRequest:
    """A run's request to claim ``session_id``; ``claim`` once granted."""

    session_id: str
    holder: str
    lease_s: float
    claim: Claim | None = None


@dataclass(slots=True)
class ReleaseRequest:
    """Give ``claim`` back as ``status``; ``result``: the status set (None: the claim was no
    longer the session's)."""

    claim: Claim
    status: RunStatus
    error: str | None = None
    result: RunStatus | None = None


@dataclass(slots=True)
class ClaimRound:
    """One round of a claim batch as sent: its requests by session id (with their index in the
    batch) and the cursors of its locked and taken rows, read once the transaction committed."""

    requests: dict[str, tuple[int, ClaimRequest]]
    locked: Any
    taken: Any


async def send_claims(conn: Any, schema: str, requests: Sequence[ClaimRequest]) -> list[ClaimRound]:
    """Queue the claims of ``requests`` in the caller's transaction (in pipeline mode: nothing
    sent needs a result first, so the batch and its COMMIT go in one round trip); a session
    requested twice is claimed by the earlier request, the later one goes in the next round
    (and is refused, seeing the first one's claim). :func:`read_claims` reads the outcome."""
    rounds: list[ClaimRound] = []
    pending = list(enumerate(requests))
    while pending:
        now_round: dict[str, tuple[int, ClaimRequest]] = {}
        later: list[tuple[int, ClaimRequest]] = []
        for index, request in pending:
            if request.session_id in now_round:
                later.append((index, request))
            else:
                now_round[request.session_id] = (index, request)
        keys = ids(sorted(now_round))
        takers = orjson.dumps([
            [sid, request.holder, request.lease_s]
            for sid, (_, request) in sorted(now_round.items())
        ]).decode()  # fmt: skip
        await conn.execute(q(_CREATE, schema), (keys,))
        locked = await conn.execute(q(_LOCK, schema), (keys,))
        taken = await conn.execute(q(_TAKE, schema), (takers, keys))
        rounds.append(ClaimRound(now_round, locked, taken))
        pending = later
    return rounds


async def read_claims(rounds: Sequence[ClaimRound], count: int) -> list[Exception | None]:
    """The outcome of :func:`send_claims` once committed: each request's claim set, or, per
    request of the ``count`` sent, SessionBusy when another claim on it is alive."""
    refused: list[Exception | None] = [None] * count
    for sent in rounds:
        before = {cast("str", row[0]): row[1:] for row in await sent.locked.fetchall()}
        taken = {cast("str", row[0]): row[1:] for row in await sent.taken.fetchall()}
        for sid, (index, request) in sent.requests.items():
            refused[index] = _granted(request, before[sid], taken.get(sid))
    return refused


async def claim_existing(
    conn: Any, schema: str, requests: Sequence[ClaimRequest]
) -> tuple[list[Exception | None], list[int]]:
    """Claim ``requests`` (each session asked once) whose session rows exist, in one statement
    outside a transaction block (one round trip, no BEGIN or COMMIT to send); their refusals as
    :func:`read_claims` says, and the indexes of the requests whose row was missing (nothing
    was done for them: :func:`send_claims` makes their rows)."""
    by_id = {request.session_id: (index, request) for index, request in enumerate(requests)}
    keys = ids(sorted(by_id))
    takers = orjson.dumps([
        [sid, request.holder, request.lease_s] for sid, (_, request) in sorted(by_id.items())
    ]).decode()  # fmt: skip
    rows = await fetchall(conn, q(_CLAIM_EXISTING, schema), (keys, takers, keys))
    refused: list[Exception | None] = [None] * len(requests)
    for row in rows:
        index, request = by_id.pop(cast("str", row[0]))
        refused[index] = _granted(request, row[1:5], None if row[5] is None else row[5:])
    return refused, sorted(index for index, _ in by_id.values())


def _granted(
    request: ClaimRequest, before: Sequence[Any], taken: Sequence[Any] | None
) -> Exception | None:
    """Set ``request.claim`` from its row as ``taken`` (epoch, token, attempts), given the row as
    locked ``before`` (token, alive, holder, seconds left); SessionBusy naming the holder when it
    was not taken."""
    previous_token, _alive, previous, expires_in = before
    if taken is None:
        return SessionBusy(
            request.session_id, holder=cast("str | None", previous), expires_in=expires_in
        )
    epoch, token, attempts = taken
    stale = previous_token is not None
    request.claim = Claim(
        session_id=request.session_id, token=cast("str", token), epoch=int(epoch),
        lease_s=request.lease_s, attempts=int(attempts), stale=stale, holder=request.holder,
        previous=cast("str | None", previous) if stale else None, shared=False,
    )  # fmt: skip
    return None


async def release_all(conn: Any, schema: str, requests: Sequence[ReleaseRequest]) -> None:
    """Give the claims back in the caller's transaction (rows locked in session id order, as
    every batch locks them); each request's ``result`` says what was set."""
    consumed = [rid for r in requests for rid in r.claim.consume]
    held = sorted({r.claim.session_id for r in requests})
    await conn.execute(q(_LOCK_HELD, schema), (held,))
    columns = (
        [r.claim.session_id for r in requests],
        [r.claim.token for r in requests],
        [r.status.value for r in requests],
        [r.error for r in requests],
    )
    rows = await fetchall(conn, q(_RELEASE, schema), (consumed, consumed, *columns, held))
    released = {(sid, token): RunStatus(status) for sid, token, status in rows}
    for request in requests:
        request.result = released.get((request.claim.session_id, request.claim.token))
        if request.result is not None:
            request.claim.consume.clear()
