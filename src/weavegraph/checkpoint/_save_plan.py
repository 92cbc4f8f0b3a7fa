"""What a save writes, decided without I/O: the fence check, the step row, the head move, the events.

Every backend reads the session's stored latest step (PostgreSQL under the session row's lock,
SQLite inside its write transaction) and asks :func:`plan_save` or :func:`plan_append` what to do;
the backends only execute the answer, so the rules below hold the same everywhere.

The fence (``builds_on``):

- ``None``: no check (callers that do not track what is stored);
- ``-1``: the session must not exist yet;
- ``k >= 0``: the session's stored latest step must be exactly ``k``.

Otherwise :class:`~weavegraph.errors.CheckpointConflict` is raised before anything is written.

The step row (:class:`StepWrite`) and the head:

- ``INSERT``: a step above the stored latest (or the first of a new session) is inserted and the
  head moves to it;
- ``REWRITE``: the step *is* the stored latest: a re-save of the same step (the run's decisions
  between steps: a static pause, a resume answer). Its row is rewritten (inserted again if a
  hand-written DELETE removed it) and the head with it. The fence keeps this safe: a save building
  on ``k`` that rewrites ``k`` finds ``k`` still the latest;
- without a fence, an older step than the latest is inserted into the history; the head stays.

Steps and events are inserted, never upserted: with a fence, a step row that already exists makes
the save a conflict, and an event ``seq`` that already exists always does for a save. Only
unfenced writes (callers that do not track what is stored) replace what they meet, as they always
did: an unfenced save rewrites a stored step row, an unfenced ``append_events`` a stored seq. Each event row records the step it belongs to: the saved step, or for
:func:`plan_append` the session's latest step (None when there is no session).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias, TypeVar

from ..errors import CheckpointConflict, CheckpointError
from . import _codec as codec

__all__ = [
    "REMEMBERED_SESSIONS",
    "AppendPlan",
    "EventRow",
    "SavePlan",
    "StepWrite",
    "check_builds_on",
    "check_fence",
    "duplicate_seq",
    "duplicate_step",
    "event_rows",
    "plan_append",
    "plan_save",
    "remember",
]

EventRow: TypeAlias = tuple[int, int | None, bytes]
"""One stored event: ``(seq, step, data)`` (``data``: the event's JSON)."""


class StepWrite(enum.Enum):
    """How the step row is written (see the module docstring)."""

    INSERT = "insert"
    REWRITE = "rewrite"


@dataclass(frozen=True, slots=True)
class SavePlan:
    """What one save writes: the step row, whether the head moves to it, and the event rows.

    ``replaces``: an INSERT meeting a stored row of that step rewrites it (unfenced saves only);
    otherwise that is a conflict.
    """

    write: StepWrite
    moves_head: bool
    replaces: bool
    events: Sequence[EventRow] = ()


_PLANS = {
    (write, moves, replaces): SavePlan(write, moves, replaces)
    for write in StepWrite
    for moves in (True, False)
    for replaces in (True, False)
}


def check_builds_on(builds_on: int | None) -> None:
    """A ValueError unless ``builds_on`` is None, -1 or a step number."""
    if builds_on is None:
        return
    if isinstance(builds_on, bool) or not isinstance(builds_on, int) or builds_on < -1:  # pyright: ignore[reportUnnecessaryIsInstance]
        raise ValueError(
            f"builds_on must be None, -1 (a new session) or a step >= 0, got {builds_on!r}"
        )


def check_fence(session_id: str, builds_on: int | None, stored: int | None) -> None:
    """Raise CheckpointConflict unless the stored latest step ``stored`` (None: no session) is
    what ``builds_on`` expects."""
    if builds_on is None:
        return
    if builds_on == -1:
        if stored is not None:
            raise CheckpointConflict(session_id, -1, stored)
    elif stored != builds_on:
        raise CheckpointConflict(session_id, builds_on, stored)


def plan_save(
    session_id: str,
    step: int,
    builds_on: int | None,
    stored: int | None,
    events: Sequence[Mapping[str, Any]] = (),
) -> SavePlan:
    """What saving ``step`` of ``session_id`` writes, given its stored latest step ``stored``.

    Raises CheckpointConflict (the fence) or ValueError (a save older than what it builds on).
    """
    if builds_on is not None and step < builds_on:
        raise ValueError(f"a save of step {step} cannot build on the later step {builds_on}")
    check_fence(session_id, builds_on, stored)
    write = StepWrite.REWRITE if step == stored else StepWrite.INSERT
    plan = _PLANS[write, stored is None or step >= stored, builds_on is None]
    if not events:
        return plan
    return SavePlan(
        plan.write, plan.moves_head, plan.replaces, event_rows(session_id, events, step)
    )


@dataclass(frozen=True, slots=True)
class AppendPlan:
    """What ``append_events`` writes: ``rows``; ``replaces``: stored events with these seqs are
    deleted first (an unfenced append, as appends always did; fenced ones never replace)."""

    rows: Sequence[EventRow]
    replaces: bool


def plan_append(
    session_id: str,
    builds_on: int | None,
    stored: int | None,
    events: Sequence[Mapping[str, Any]],
) -> AppendPlan:
    """What ``append_events`` writes (each row recording the latest step), after the fence."""
    check_fence(session_id, builds_on, stored)
    return AppendPlan(event_rows(session_id, events, stored), replaces=builds_on is None)


def event_rows(
    session_id: str, events: Sequence[Mapping[str, Any]], step: int | None
) -> list[EventRow]:
    """Each event as a row; a CheckpointError for an event without an int ``seq`` >= 0, and a
    CheckpointConflict for a ``seq`` given twice."""
    rows: list[EventRow] = []
    seen: set[int] = set()
    for index, event in enumerate(events):
        seq = event.get("seq")
        if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
            raise CheckpointError(
                f"event #{index} of session {session_id!r} cannot be stored: its 'seq' must be "
                f"an int >= 0, got {seq!r}"
            )
        if seq in seen:
            raise duplicate_seq(session_id, seq)
        seen.add(seq)
        rows.append((seq, step, codec.dumps(event)))
    return rows


def duplicate_seq(session_id: str, seq: int) -> CheckpointConflict:
    """The conflict raised when event ``seq`` is already stored (or given twice)."""
    return CheckpointConflict(
        session_id,
        None,
        None,
        reason=f"event seq {seq} is already stored; events are never replaced",
    )


def duplicate_step(session_id: str, step: int) -> CheckpointConflict:
    """The conflict raised when a step row that a save inserts already exists."""
    return CheckpointConflict(
        session_id, None, None, reason=f"step {step} is already stored; steps are never replaced"
    )


REMEMBERED_SESSIONS = 10_000
"""How many sessions a store keeps the bookkeeping of (the row and head it last wrote or read),
to plan their next saves without reading them first. Beyond that the session remembered
longest is forgotten (its next save reads its row again), so a long-lived process holds a
bounded amount however many sessions it has run."""

V = TypeVar("V")


def remember(cache: dict[str, V], key: str, value: V, forget: Callable[[str], None]) -> None:
    """``cache[key] = value`` as its newest entry; once ``cache`` holds more than
    :data:`REMEMBERED_SESSIONS`, ``forget`` the session remembered longest (in all the store's
    caches)."""
    cache.pop(key, None)
    cache[key] = value
    if len(cache) > REMEMBERED_SESSIONS:
        forget(next(iter(cache)))
