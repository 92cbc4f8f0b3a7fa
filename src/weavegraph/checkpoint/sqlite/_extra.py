"""How a SQLite step stores its ``extra``: never in terms of another step, so any step can go.

Deleting any subset of ``steps`` rows by hand (the guide's ``DELETE FROM steps WHERE created_at <
...``, foreign keys off) leaves every remaining step loadable, because what a step's ``extra``
needs belongs to the session. Each step row holds ``(extra_ref, extra_data)``:

- ``extra_ref`` NULL: ``extra_data`` is the whole ``extra`` (small ones: a base is not worth it);
- ``extra_ref`` set: it names a row of ``extra_log`` (the session's, like ``channel_log``) holding
  a base ``extra``; ``extra_data`` is the delta from that base, NULL when equal to it.

An ``extra_log`` row is a full snapshot (``base`` NULL) or a delta over an earlier row of the same
log; rows are removed with their session (trigger) and collected by prune/vacuum once no step
reaches them (nor the session's head, which references a large ``extra`` the same way). Which of
these a step gets is decided, without I/O, by ``_extra_plan`` (shared with
PostgreSQL); this module only executes its plans and reads the log back.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from typing import Any, cast

from ...errors import CheckpointError
from .. import _codec as codec
from .._extra_plan import MAX_CHAIN, Append, Base, Stored, plan_extra

__all__ = ["Base", "collect", "plan", "ref_exists", "resolve"]


def plan(
    conn: sqlite3.Connection,
    sid: str,
    uid: str,
    base: Base | None,
    extra: Mapping[str, Any],
    full: bytes | codec.ExtraJson,
) -> Stored:
    """``(extra_ref, extra_data)`` for a step whose extra is ``extra`` (JSON ``full``).

    Executes :func:`_extra_plan.plan_extra`: writes an ``extra_log`` row when the current base no
    longer serves; returns the base to use next (None: none yet).
    """
    step = plan_extra(uid, base, extra, full)
    if isinstance(step, Append):
        return step.row(_append(conn, sid, step.base_ref, step.data))
    return step.row()


def _append(conn: sqlite3.Connection, sid: str, base: int | None, data: bytes) -> int:
    cursor = conn.execute(
        "INSERT INTO extra_log (session_id, base, data) VALUES (?, ?, ?)", (sid, base, data)
    )
    return cast("int", cursor.lastrowid)


def ref_exists(conn: sqlite3.Connection, sid: str, ref: int) -> bool:
    found = conn.execute(
        "SELECT 1 FROM extra_log WHERE id = ? AND session_id = ?", (ref, sid)
    ).fetchone()
    return found is not None


def resolve(
    conn: sqlite3.Connection, location: str, sid: str, ref: int | None, data: bytes | None
) -> dict[str, Any] | None:
    """A step's ``extra`` from its row's two columns; None when a log row it needs is gone."""
    if ref is None:
        return None if data is None else cast("dict[str, Any]", codec.loads(data))
    deltas: list[bytes] = [] if data is None else [data]
    current: int | None = ref
    for _ in range(MAX_CHAIN * 2 + 8):
        if current is None:
            extra = cast("dict[str, Any]", codec.loads(deltas.pop()))
            for delta in reversed(deltas):
                codec.apply_delta(extra, cast("Mapping[str, Any]", codec.loads(delta)))
            return extra
        row = conn.execute(
            "SELECT base, data FROM extra_log WHERE id = ? AND session_id = ?", (current, sid)
        ).fetchone()
        if row is None:
            return None  # only hand-written SQL on extra_log removes a row a step reaches
        current = cast("int | None", row[0])
        deltas.append(cast("bytes", row[1]))
    raise CheckpointError(f"{location}: the extra log chain of {sid!r} is too long")


# The head of a session with a large extra references a row too (``_read.HeadExtra``).
_HEAD_REF = "json_extract(CAST(head AS TEXT), '$.extra_ref')"
_LIVE = (
    "WITH RECURSIVE live(id) AS ("
    "SELECT extra_ref FROM steps WHERE extra_ref IS NOT NULL{steps_filter} "
    f"UNION SELECT {_HEAD_REF} FROM sessions WHERE {_HEAD_REF} IS NOT NULL{{heads_filter}} "
    "UNION SELECT e.base FROM extra_log e JOIN live ON e.id = live.id WHERE e.base IS NOT NULL) "
    "DELETE FROM extra_log WHERE {log_filter}id NOT IN (SELECT id FROM live)"
)


def collect(conn: sqlite3.Connection, sid: str | None = None) -> int:
    """Delete the ``extra_log`` rows no step nor head reaches (of session ``sid``, or of all)."""
    if sid is None:
        statement = _LIVE.format(steps_filter="", heads_filter="", log_filter="")
        return conn.execute(statement).rowcount
    statement = _LIVE.format(
        steps_filter=" AND session_id = ?",
        heads_filter=" AND id = ?",
        log_filter="session_id = ? AND ",
    )
    return conn.execute(statement, (sid, sid, sid)).rowcount
