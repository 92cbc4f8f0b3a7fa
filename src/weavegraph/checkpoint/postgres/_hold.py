"""An in-process run's claim: every run of a session on PostgreSQL holds it like a worker does.

The run loop claims the session for the length of a run (:func:`hold`, through
``PostgresCheckpointer.hold``): the same claim as a worker's (``_claim.SET_CLAIM``: epoch bump,
new token, lease on the database's clock), renewed at least every lease/3 (``_lease.Heartbeats``:
one task for all of the process's runs), fenced step commits, and at
the end the session given back with how the run ended. A session whose claim is alive elsewhere
is refused with ``SessionBusy`` naming its holder; an expired one (its holder died) is taken over.
A worker's claim is shared with the runs its owner drives (the tasks working under it,
``_claim_context``).
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
from typing import TYPE_CHECKING

from ...errors import SessionBusy
from ...status import RunStatus
from ._claim import Claim
from ._claim_context import current, working_under

if TYPE_CHECKING:
    from ._checkpointer import PostgresCheckpointer

__all__ = ["hold", "in_process_holder"]

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


@contextlib.asynccontextmanager
async def hold(cp: PostgresCheckpointer, session_id: str) -> AsyncGenerator[Claim]:
    """Hold ``session_id`` while inside; given back with ``claim.ended`` (else ``error``,
    ``cancelled`` for a cancelled run, ``stopped`` when the block just ended). Inside a worker's
    claim, that claim (its owner gives it back)."""
    existing = current(cp.claims, session_id)
    if existing is not None and existing.shared:
        yield existing
        return
    existing = existing or cp.claims.get(session_id)
    if existing is not None:
        raise SessionBusy(session_id, holder=f"{existing.holder}, another run in this process")
    claim = await _claimed(cp, session_id)
    try:
        with working_under(claim, cp.claims), cp.heartbeats.keeping(claim):
            yield claim
    except BaseException as exc:
        if claim.ended is None:
            cancelled = isinstance(exc, asyncio.CancelledError)
            claim.ended = RunStatus.CANCELLED if cancelled else RunStatus.ERROR
        raise
    finally:
        if claim.held:  # (else lost, or given back with the run's last events)
            await asyncio.shield(_give_back(cp, claim))


async def _claimed(cp: PostgresCheckpointer, session_id: str) -> Claim:
    """The claim, also when the run is cancelled while it is being taken: a claim that commits
    anyway is then given back at once (``cancelled``), never left to expire."""
    taking = asyncio.ensure_future(cp.claim(session_id))
    try:
        return await asyncio.shield(taking)
    except asyncio.CancelledError:
        giving_back = asyncio.ensure_future(_give_back_taken(cp, taking))
        cp.giving_back.add(giving_back)  # (the checkpointer closes only once it is done)
        giving_back.add_done_callback(cp.giving_back.discard)
        await asyncio.shield(giving_back)
        raise


async def _give_back_taken(cp: PostgresCheckpointer, taking: asyncio.Future[Claim]) -> None:
    with contextlib.suppress(Exception):
        claim = await taking
        claim.ended = RunStatus.CANCELLED
        await _give_back(cp, claim)


async def _give_back(cp: PostgresCheckpointer, claim: Claim) -> None:
    """Release the claim with how the run ended; a failure only costs the lease's length (the
    claim expires and the session can be claimed again)."""
    if not claim.held:
        return
    status = claim.ended or RunStatus.STOPPED
    try:
        await cp.release(claim, status)
    except Exception as exc:
        _log.warning(
            "session %s: its claim could not be given back (it expires in %.0f s): %s",
            claim.session_id,
            claim.lease_s,
            exc,
        )
