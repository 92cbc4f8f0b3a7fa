"""What the group commit queues for PostgreSQL (:class:`PgSave`, :class:`PgAppend`), and how a save retried after a
lost COMMIT finds itself already committed (:func:`is_stored`).

The rows themselves are written a batch at a time (``_batch``); the decisions (fence, new step
or re-save of the latest, what each event row holds) are ``checkpoint/_save_plan``'s.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from ..._iso import iso
from ...errors import SessionBusy
from ...status import RunStatus
from .. import _codec as codec
from ..base import Checkpoint
from ._claim import Claim
from ._sql import fetchone, q

__all__ = ["PgAppend", "PgSave", "RowState", "is_stored", "refuse_unclaimed"]


class RowState(NamedTuple):
    """What a save plans from, of its session row: as locked, or as this process's last commit
    of it left it (``created``: the row's incarnation)."""

    latest: int
    msg_next: int
    err_next: int
    created: datetime
    uid: str
    """``created`` as the caches name the incarnation (ISO text)."""

    @classmethod
    def of(cls, latest: int, msg_next: int, err_next: int, created: datetime) -> RowState:
        return cls(latest, msg_next, err_next, created, iso(created))


@dataclass(slots=True)
class PgSave:
    """One save as the group commit queues it: the checkpoint (in its stored form), what it
    builds on and the events written with it. ``retried``: an earlier attempt lost its
    connection during COMMIT, so it may have committed (see :func:`is_stored`)."""

    checkpoint: Checkpoint
    builds_on: int | None = None
    events: Sequence[Mapping[str, Any]] = ()
    retried: bool = False
    claim: Claim | None = None
    """This process's claim on the session, which fences the save (without one, the save is
    refused while any claim is alive)."""
    consume: tuple[int, ...] = ()
    """The claim's applied inbox requests this save marks done."""
    cancel_requested: bool = False
    """Whether a cancel was requested, as the session row said under its lock."""
    renews: bool = False
    """Whether it renews its claim's lease (planned at ``planned_at``, ``time.monotonic``)."""
    planned_at: float = 0.0
    release: RunStatus | None = None
    """Give the claim back as this in the same commit (the step that ended the run, saved with
    its closing events: ``Claim.closing``)."""

    @property
    def key(self) -> str:
        """The session row this save locks (a subgraph's own)."""
        return self.checkpoint.session_id

    @property
    def claimed(self) -> bool:
        return self.claim is not None

    @property
    def extends(self) -> Claim | None:
        """The claim whose lease this save extends (a subgraph's save only passes the session's
        fence: its steps are its own)."""
        claim = self.claim
        return (
            claim if claim is not None and claim.session_id == self.checkpoint.session_id else None
        )


@dataclass(slots=True)
class PgAppend:
    """Events appended after a claimed session's latest step (a run's closing events), queued
    with the saves: fenced by ``builds_on`` and by the claim, in the batch's transaction."""

    claim: Claim
    builds_on: int
    events: Sequence[Mapping[str, Any]]
    retried: bool = False
    release: RunStatus | None = None
    """Give the claim back as this in the same commit (the run's last events: ``Claim.closing``)."""
    consume: tuple[int, ...] = ()
    """With ``release``: the claim's applied inbox requests, marked done."""

    @property
    def key(self) -> str:
        return self.claim.session_id


def refuse_unclaimed(session_id: str, claim_row: Sequence[Any]) -> None:
    """SessionBusy when ``claim_row`` (alive, holder, seconds left: the session row's claim,
    read under its lock) says another run holds the session: a write without it is refused."""
    alive, holder, expires_in = claim_row
    if alive:
        raise SessionBusy(session_id, holder=holder, expires_in=expires_in)


async def is_stored(conn: Any, schema: str, cp: Checkpoint) -> bool:
    """Whether ``cp``'s step row is stored as ``cp`` wrote it (same creation time and cursor).
    Asked only for a save retried after its COMMIT's answer was lost: it finds itself already
    committed (another writer's save of that step would have had to win the row lock first)."""
    row = await fetchone(
        conn,
        q(
            "SELECT created_at, cursor FROM {schema}.steps WHERE session_id = %s AND step = %s",
            schema,
        ),
        (cp.session_id, cp.step),
    )
    return (
        row is not None
        and row[0] == codec.utc(cp.created_at)
        and bytes(row[1]) == codec.dumps(cp.cursor)
    )
