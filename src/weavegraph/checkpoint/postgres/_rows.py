"""The rows a save plan writes on PostgreSQL: the step row and the event rows, inserted, never
replaced.

Plain functions over a connection inside the caller's transaction; the decisions (fence, new step
or re-save of the latest, what each event row holds) are ``checkpoint/_save_plan``'s. Inserts use
``ON CONFLICT DO NOTHING ... RETURNING`` so a row already stored leaves the transaction usable
and is seen as a missing returned row. In pipeline mode (group commit) the inserts are sent at
once and :func:`verify` reads their answers afterwards: a step or event ``seq`` already stored is
then a ``CheckpointConflict`` and the caller's transaction rolls back, so nothing of the save is
written (the group commit then retries each save of the batch alone).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from .. import _codec as codec
from .._save_plan import EventRow, SavePlan, StepWrite, duplicate_seq, duplicate_step
from ..base import Checkpoint
from ._sql import q

__all__ = [
    "STEP_COLUMNS",
    "PgSave",
    "Written",
    "insert_events",
    "is_stored",
    "start_events",
    "start_step",
    "verify",
]

STEP_COLUMNS = (
    "created_at, ran_nodes, skipped_nodes, updated_channels, frontier, versions, cursor, "
    "msg_start, msg_count, err_start, err_count, extra_ref, extra_data"
)
_INSERT_STEP = (
    f"INSERT INTO {{schema}}.steps (session_id, step, {STEP_COLUMNS}) VALUES "
    "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
    "ON CONFLICT (session_id, step) DO NOTHING RETURNING step"
)
_REWRITE_STEP = (
    "UPDATE {schema}.steps SET "
    + ", ".join(f"{column} = %s" for column in STEP_COLUMNS.split(", "))
    + " WHERE session_id = %s AND step = %s"
)
_INSERT_EVENTS = (
    "INSERT INTO {schema}.events (session_id, seq, step, data) "
    "SELECT %s, e.seq, e.step, e.data "
    "FROM unnest(%s::bigint[], %s::integer[], %s::bytea[]) AS e (seq, step, data) "
    "ON CONFLICT (session_id, seq) DO NOTHING RETURNING seq"
)


@dataclass(slots=True)
class PgSave:
    """One save as the group commit queues it: the checkpoint (in its stored form), what it
    builds on and the events written with it. ``retried``: an earlier attempt lost its
    connection during COMMIT, so it may have committed (see :func:`is_stored`)."""

    checkpoint: Checkpoint
    builds_on: int | None = None
    events: Sequence[Mapping[str, Any]] = ()
    retried: bool = False


class Written(NamedTuple):
    """The inserts of one save whose answers :func:`verify` reads."""

    sid: str
    step: int
    plan: SavePlan
    columns: tuple[Any, ...]
    step_cursor: Any
    events_session: str
    events_cursor: Any


async def start_step(conn: Any, schema: str, sid: str, step: int, columns: tuple[Any, ...]) -> Any:
    """Send the step row's insert (``columns``: STEP_COLUMNS' values); its cursor."""
    return await conn.execute(q(_INSERT_STEP, schema), (sid, step, *columns))


async def start_events(conn: Any, schema: str, sid: str, rows: Sequence[EventRow]) -> Any:
    """Send the event rows' insert (one statement); its cursor, None when there are none."""
    if not rows:
        return None
    return await conn.execute(
        q(_INSERT_EVENTS, schema),
        (
            sid,
            [seq for seq, _, _ in rows],
            [step for _, step, _ in rows],
            [data for _, _, data in rows],
        ),
    )


async def verify(conn: Any, schema: str, written: Written) -> None:
    """Read the inserts' answers: a step row met is rewritten (a re-save of the latest step, or
    an unfenced save) or a conflict; an event seq met is always a conflict."""
    plan = written.plan
    if await written.step_cursor.fetchone() is None:
        if plan.write is not StepWrite.REWRITE and not plan.replaces:
            raise duplicate_step(written.sid, written.step)
        await conn.execute(q(_REWRITE_STEP, schema), (*written.columns, written.sid, written.step))
    if written.events_cursor is not None:
        await _check_events(written.events_cursor, written.events_session, plan.events)


async def insert_events(conn: Any, schema: str, sid: str, rows: Sequence[EventRow]) -> None:
    """Insert event rows now; a ``seq`` already stored refuses them all (CheckpointConflict)."""
    cursor = await start_events(conn, schema, sid, rows)
    if cursor is not None:
        await _check_events(cursor, sid, rows)


async def _check_events(cursor: Any, sid: str, rows: Sequence[EventRow]) -> None:
    inserted = {seq for (seq,) in await cursor.fetchall()}
    if len(inserted) != len(rows):
        raise duplicate_seq(sid, next(seq for seq, _, _ in rows if seq not in inserted))


async def is_stored(conn: Any, schema: str, cp: Checkpoint) -> bool:
    """Whether ``cp``'s step row is stored as ``cp`` wrote it (same creation time and cursor).
    Asked only for a save retried after its COMMIT's answer was lost: it finds itself already
    committed (another writer's save of that step would have had to win the row lock first)."""
    row = await (
        await conn.execute(
            q(
                "SELECT created_at, cursor FROM {schema}.steps WHERE session_id = %s AND step = %s",
                schema,
            ),
            (cp.session_id, cp.step),
        )
    ).fetchone()
    return (
        row is not None
        and row[0] == codec.utc(cp.created_at)
        and bytes(row[1]) == codec.dumps(cp.cursor)
    )
