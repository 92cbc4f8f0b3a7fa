"""The rows a save plan writes on SQLite: the step row and the event rows, inserted, never replaced.

Plain functions over a connection inside the caller's write transaction; the decisions (fence,
new step or re-save of the latest, what each event row holds) are ``checkpoint/_save_plan``'s. A
unique-key violation (a step or event ``seq`` already stored) becomes a ``CheckpointConflict``
and the caller's transaction rolls back, so nothing of the save is written.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any, cast

from .. import _codec as codec
from .._save_plan import EventRow, SavePlan, StepWrite, duplicate_seq, duplicate_step
from ._read import STEP_COLUMNS

__all__ = ["delete_events", "insert_events", "select_events", "write_step"]

_INSERT_STEP = (
    f"INSERT INTO steps (session_id, step, {STEP_COLUMNS}) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_REWRITE_STEP = (
    "UPDATE steps SET "
    + ", ".join(f"{column} = ?" for column in STEP_COLUMNS.split(", "))
    + " WHERE session_id = ? AND step = ?"
)
_INSERT_EVENT = "INSERT INTO events (session_id, seq, step, data) VALUES (?, ?, ?, ?)"


def write_step(
    conn: sqlite3.Connection, plan: SavePlan, sid: str, step: int, columns: tuple[Any, ...]
) -> None:
    """Write the step row as ``plan`` says (``columns``: STEP_COLUMNS' values)."""
    if plan.write is StepWrite.REWRITE and _rewrite(conn, sid, step, columns):
        return
    try:
        conn.execute(_INSERT_STEP, (sid, step, *columns))
    except sqlite3.IntegrityError as exc:
        if not plan.replaces:
            raise duplicate_step(sid, step) from exc
        _rewrite(conn, sid, step, columns)


def _rewrite(conn: sqlite3.Connection, sid: str, step: int, columns: tuple[Any, ...]) -> bool:
    """Rewrite the stored row of ``step``; False when there is none."""
    return conn.execute(_REWRITE_STEP, (*columns, sid, step)).rowcount > 0


def insert_events(conn: sqlite3.Connection, sid: str, rows: Sequence[EventRow]) -> None:
    """Insert event rows; a ``seq`` already stored refuses them (CheckpointConflict naming it)."""
    if not rows:
        return
    try:
        if len(rows) == 1:
            seq, step, data = rows[0]
            conn.execute(_INSERT_EVENT, (sid, seq, step, data))
        else:
            conn.executemany(_INSERT_EVENT, [(sid, seq, step, data) for seq, step, data in rows])
    except sqlite3.IntegrityError as exc:
        raise duplicate_seq(sid, _first_stored(conn, sid, rows)) from exc


def delete_events(conn: sqlite3.Connection, sid: str, rows: Sequence[EventRow]) -> None:
    """Delete the stored events with the seqs of ``rows`` (an unfenced append replaces them)."""
    conn.executemany(
        "DELETE FROM events WHERE session_id = ? AND seq = ?", [(sid, seq) for seq, _, _ in rows]
    )


def _first_stored(conn: sqlite3.Connection, sid: str, rows: Sequence[EventRow]) -> int:
    """The ``seq`` of ``rows`` that was stored before this insert (its rowid is older than those
    the failed ``executemany`` inserted before it stopped)."""
    oldest: tuple[int, int] | None = None
    for seq, _, _ in rows:
        found = conn.execute(
            "SELECT rowid FROM events WHERE session_id = ? AND seq = ?", (sid, seq)
        ).fetchone()
        if found is not None and (oldest is None or found[0] < oldest[0]):
            oldest = (cast("int", found[0]), seq)
    return rows[0][0] if oldest is None else oldest[1]


def select_events(
    conn: sqlite3.Connection, sid: str, after_seq: int, limit: int | None
) -> list[dict[str, Any]]:
    """Stored events after ``after_seq`` in seq order, at most ``limit``."""
    rows = conn.execute(
        "SELECT data FROM events WHERE session_id = ? AND seq > ? ORDER BY seq LIMIT ?",
        (sid, after_seq, -1 if limit is None else limit),
    ).fetchall()
    return [cast("dict[str, Any]", codec.loads(data)) for (data,) in rows]
