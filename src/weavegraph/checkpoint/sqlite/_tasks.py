"""Saved task results in SQLite: the finished tasks of a step still to commit.

Rows of ``task_results`` are keyed by ``(session_id, builds_on, idx)``: the step the tasks were
planned after and the task's index. A batch of results is one transaction on the writer thread
(the run loop hands over everything that finished while the previous batch was written: a group
commit). The step's checkpoint save deletes them in its own transaction (``drop``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from typing import Any, cast

from .. import _codec as codec

__all__ = ["drop", "load", "save"]


def save(conn: sqlite3.Connection, sid: str, builds_on: int, results: Mapping[int, Any]) -> None:
    conn.executemany(
        "INSERT OR REPLACE INTO task_results (session_id, builds_on, idx, result) "
        "VALUES (?, ?, ?, ?)",
        [(sid, builds_on, int(index), codec.dumps(result)) for index, result in results.items()],
    )


def load(conn: sqlite3.Connection, sid: str, builds_on: int) -> dict[int, Any]:
    rows = conn.execute(
        "SELECT idx, result FROM task_results WHERE session_id = ? AND builds_on = ?",
        (sid, builds_on),
    ).fetchall()
    return {cast("int", idx): codec.loads(blob) for idx, blob in rows}


def drop(conn: sqlite3.Connection, sid: str, keep: int | None) -> None:
    """Delete the session's saved task results, except those planned after step ``keep``."""
    if keep is None:
        conn.execute("DELETE FROM task_results WHERE session_id = ?", (sid,))
    else:
        conn.execute(
            "DELETE FROM task_results WHERE session_id = ? AND builds_on != ?", (sid, keep)
        )
