"""Data conversions run by SQLite migrations (``migrations.Migration.convert``).

Version 2 replaces ``steps.extra_base`` (a delta over another step's ``extra``, so deleting that
step broke this one) by ``steps.extra_ref`` (a delta over a row of the session-owned
``extra_log``, see ``_sqlite_extra``). The conversion rebuilds every step's ``extra`` from the old chains and stores
it the new way in ``steps_v2``; steps whose chain was already broken stay unloadable.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from typing import Any, cast

from . import _codec as codec
from . import _sqlite_extra as extras

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
        "list[tuple[int, int | None, bytes | None]]",
        conn.execute(
            "SELECT step, extra_base, extra_data FROM steps WHERE session_id = ? ORDER BY step",
            (sid,),
        ).fetchall(),
    )
    stored = {step: (base, data) for step, base, data in rows}
    resolved: dict[int, dict[str, Any] | None] = {}
    planned: extras.Base | None = None
    for step, _, _ in rows:
        extra = _legacy_extra(stored, resolved, step)
        if extra is None:
            continue  # its chain was broken before the migration: it stays unloadable
        frozen = codec.decode_extra(extra)
        ref, data, planned = extras.plan(conn, sid, "", planned, frozen, codec.dumps(frozen))
        conn.execute(
            "UPDATE steps_v2 SET extra_ref = ?, extra_data = ? WHERE session_id = ? AND step = ?",
            (ref, data, sid, step),
        )


def _legacy_extra(
    stored: Mapping[int, tuple[int | None, bytes | None]],
    resolved: dict[int, dict[str, Any] | None],
    step: int,
) -> dict[str, Any] | None:
    """Step ``step``'s extra under version 1 (a chain of deltas over earlier steps), memoized."""
    chain: list[int] = []
    current: int | None = step
    while current is not None and current not in resolved:
        chain.append(current)
        found = stored.get(current)
        if found is None or current in chain[:-1]:
            resolved.update(dict.fromkeys(chain))  # a missing base (or a cycle): unloadable
            return None
        current = found[0]
    extra = None if current is None else resolved[current]
    for link in reversed(chain):
        base, data = stored[link]
        if base is None:
            extra = None if data is None else cast("dict[str, Any]", codec.loads(data))
        elif extra is not None and data is not None:
            extra = codec.apply_delta(dict(extra), cast("Mapping[str, Any]", codec.loads(data)))
        resolved[link] = extra
    return resolved[step]
