"""An in-process run's claim: every run of a session on PostgreSQL holds it like a worker does.

The run loop claims the session for the length of a run (:func:`hold`, through
``PostgresCheckpointer.hold``): the same claim as a worker's (``_claim.SET_CLAIM``: epoch bump,
new token, lease on the database's clock), a heartbeat every lease/3, fenced step commits, and at
the end the session given back with how the run ended. A session whose claim is alive elsewhere
is refused with ``SessionBusy`` naming its holder; an expired one (its holder died) is taken over.
A worker's claim is shared with the runs its owner drives (the tasks working under it,
``_claimed``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import sys
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from ...errors import SessionBusy
from ...status import RunStatus
from . import _claim as claims
from ._claim import SET_CLAIM, Claim
from ._claimed import current, working_under
from ._lease import Lease
from ._sql import q

if TYPE_CHECKING:
    from ._checkpointer import PostgresCheckpointer

__all__ = ["claim_session", "hold", "in_process_holder"]

_log = logging.getLogger(__name__)


def in_process_holder() -> str:
    """How an in-process run names itself as a claim's holder: ``host:pid (program)``; the
    program is the command (``weavegraph``) or the module run with ``python -m``."""
    argv = sys.orig_argv
    if "-m" in argv[:-1]:
        program = argv[argv.index("-m") + 1]
    else:
        program = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python"
    return f"{socket.gethostname()}:{os.getpid()} ({program or 'python'})"


async def claim_session(
    conn: Any, schema: str, session_id: str, holder: str, lease_s: float
) -> Claim:
    """Claim ``session_id`` (its row made if new), in the caller's transaction; SessionBusy
    while another claim on it is alive."""
    await conn.execute(
        q(
            "INSERT INTO {schema}.sessions (id, created_at, updated_at, latest_step, head, extra) "
            "VALUES (%s, now(), now(), -1, '', '') ON CONFLICT (id) DO NOTHING",
            schema,
        ),
        (session_id,),
    )
    token, alive, previous, expires_in = await (
        await conn.execute(
            q(
                "SELECT claim_token, lease_until >= now(), worker, "
                "extract(epoch FROM lease_until - now())::float8 "
                "FROM {schema}.sessions WHERE id = %s FOR UPDATE",
                schema,
            ),
            (session_id,),
        )
    ).fetchone()
    if token is not None and alive:
        raise SessionBusy(session_id, holder=cast("str | None", previous), expires_in=expires_in)
    epoch, new_token, attempts = await (
        await conn.execute(
            q(
                f"UPDATE {{schema}}.sessions s SET {SET_CLAIM} WHERE s.id = %s "
                "RETURNING s.epoch, s.claim_token, s.attempts",
                schema,
            ),
            (holder, lease_s, session_id),
        )
    ).fetchone()
    return Claim(
        session_id=session_id, token=cast("str", new_token), epoch=int(epoch), lease_s=lease_s,
        attempts=int(attempts), stale=token is not None, holder=holder,
        previous=cast("str | None", previous) if token is not None else None, shared=False,
    )  # fmt: skip


@contextlib.asynccontextmanager
async def hold(cp: PostgresCheckpointer, session_id: str) -> AsyncGenerator[Claim]:
    """Hold ``session_id`` while inside; given back with ``claim.ended`` (else ``error``,
    ``cancelled`` for a cancelled run, ``stopped`` when the block just ended). Inside a worker's
    claim, that claim (its owner gives it back)."""
    existing = current(session_id)
    if existing is not None and existing.shared:
        yield existing
        return
    existing = existing or cp.claims.get(session_id)
    if existing is not None:
        raise SessionBusy(session_id, holder=f"{existing.holder}, another run in this process")
    claim = await cp.execute(
        lambda conn: claim_session(conn, cp.schema, session_id, cp.holder, cp.lease_s)
    )
    try:
        with working_under(claim, cp.claims), Lease(cp.execute, cp.schema, claim):
            yield claim
    except BaseException as exc:
        if claim.ended is None:
            cancelled = isinstance(exc, asyncio.CancelledError)
            claim.ended = RunStatus.CANCELLED if cancelled else RunStatus.ERROR
        raise
    finally:
        await asyncio.shield(_give_back(cp, claim))


async def _give_back(cp: PostgresCheckpointer, claim: Claim) -> None:
    """Release the claim with how the run ended; a failure only costs the lease's length (the
    claim expires and the session can be claimed again)."""
    if claim.lost:
        return
    status = claim.ended or RunStatus.STOPPED
    try:
        await cp.execute(lambda conn: claims.release(conn, cp.schema, claim, status))
    except Exception as exc:
        _log.warning(
            "session %s: its claim could not be given back (it expires in %.0f s): %s",
            claim.session_id,
            claim.lease_s,
            exc,
        )
