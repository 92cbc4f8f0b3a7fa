"""Which claim fences a write: the claim of the task that makes it, never another of the session.

A process may hold two claims of one session for a moment: a worker cut off long enough for its
claim to expire may claim the session again before its old task has noticed. Each task must
then write under its own claim (the old one is refused with ``LeaseLost``), never under the
newer one: so the claim a task works under is kept in a context variable (per checkpointer and
session), set by whoever took the claim (a worker's owner, ``_hold``) and inherited by the tasks
it starts. The checkpointer's
``claims`` still lists the newest claim of each session this process holds (an in-process run
is refused while another run here holds the session).
"""

from __future__ import annotations

import contextlib
from collections.abc import Generator, MutableMapping
from contextvars import ContextVar

from ._claim import Claim

__all__ = ["current", "working_under"]

_CLAIMS: ContextVar[dict[tuple[int, str], Claim]] = ContextVar("weavegraph_claims")
"""The claims of this task, by checkpointer (its registry's id) and session."""


def current(registry: MutableMapping[str, Claim], session_id: str) -> Claim | None:
    """The claim this task writes ``session_id`` under through the checkpointer whose claims
    are ``registry`` (None: the task holds no claim on it there)."""
    claims = _CLAIMS.get(None)
    return None if claims is None else claims.get((id(registry), session_id))


@contextlib.contextmanager
def working_under(claim: Claim, registry: MutableMapping[str, Claim]) -> Generator[Claim]:
    """While inside, this task (and the tasks it starts) writes the session under ``claim``
    through the checkpointer whose claims are ``registry``, which lists it until a newer claim
    of the session replaces it."""
    token = _CLAIMS.set({**_CLAIMS.get({}), (id(registry), claim.session_id): claim})
    registry[claim.session_id] = claim
    try:
        yield claim
    finally:
        _CLAIMS.reset(token)
        if registry.get(claim.session_id) is claim:
            del registry[claim.session_id]
