"""Data conversions run by SQLite migrations (``Migration.convert``, see ``_schema``).

Version 2 replaces ``steps.extra_base`` (a delta over another step's ``extra``, so deleting that
step broke this one) by ``steps.extra_ref`` (a delta over a row of the session-owned
``extra_log``, see ``_extra``). The conversion rebuilds every step's ``extra`` from the old
chains (``_extra_plan.legacy_extras``, shared with PostgreSQL) and stores it the new way in
``steps_v2``; steps whose chain was already broken stay unloadable.
"""

from __future__ import annotations

import sqlite3
from typing import cast

from .. import _codec as codec
from .._extra_plan import LegacyRow, legacy_extras
from . import _extra as extras

_COPIED = (
    "session_id, step, created_at, ran_nodes, skipped_nodes, updated_channels, frontier, "
    "versions, cursor, msg_start, msg_count, err_start, err_count"
)


def convert_extra_to_snapshots(conn: sqlite3.Connection) -> None:
    """Fill ``steps_v2`` from version 1's ``steps``, re-encoding each step's ``extra``."""
    conn.execute(f"INSERT INTO steps_v2 ({_COPIED}) SELECT {_COPIED} FROM steps")
    sessions = [
        cast("str", sid)
        for (sid,) in conn.execute("SELECT DISTINCT session_id FROM steps").fetchall()
    ]
    for sid in sessions:
        _convert_session(conn, sid)


def _convert_session(conn: sqlite3.Connection, sid: str) -> None:
    rows = cast(
        "list[LegacyRow]",
        conn.execute(
            "SELECT step, extra_base, extra_data FROM steps WHERE session_id = ? ORDER BY step",
            (sid,),
        ).fetchall(),
    )
    planned: extras.Base | None = None
    for step, frozen in legacy_extras(rows):
        if frozen is None:
            continue  # its chain was broken before the migration: it stays unloadable
        ref, data, planned = extras.plan(conn, sid, "", planned, frozen, codec.dumps(frozen))
        conn.execute(
            "UPDATE steps_v2 SET extra_ref = ?, extra_data = ? WHERE session_id = ? AND step = ?",
            (ref, data, sid, step),
        )
