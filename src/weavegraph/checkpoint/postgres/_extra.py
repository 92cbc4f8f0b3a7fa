"""How a PostgreSQL step stores its ``extra``: never in terms of another step, so any step can go.

The design is SQLite's (``sqlite/_extra``; both execute the plans of ``_extra_plan``): a step
row holds ``(extra_ref, extra_data)``:

- ``extra_ref`` NULL: ``extra_data`` is the whole ``extra`` (both NULL: a step whose ``extra`` was
  already lost before migration 2; it does not load);
- ``extra_ref`` set: it names a row of the session's ``extra_log`` holding a base ``extra``;
  ``extra_data`` is the delta from that base, NULL when equal to it.

``extra_log`` rows are immutable snapshots or deltas over an earlier row of the same session's log,
removed with the session (``ON DELETE CASCADE``) and collected by prune and vacuum once no step
reaches them. So ``DELETE FROM steps WHERE ...`` by hand leaves every other step loadable.

Concurrency: rows are only collected while their session row is locked (``FOR UPDATE``), and a save
holds that lock while it checks its base still exists and inserts the step pointing at it, so a
collection can never remove a base a save is building on. Log rows are never rewritten, so several
processes may each write deltas against a base of their own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

from ...errors import CheckpointError
from .. import _codec as codec
from .._extra_plan import MAX_CHAIN, Append, Base, Stored, plan_extra
from ._sql import fetchall, fetchone, q

__all__ = ["Base", "collect", "plan", "ref_exists", "resolve"]


async def plan(
    conn: Any,
    schema: str,
    sid: str,
    uid: str,
    base: Base | None,
    extra: Mapping[str, Any],
    full: bytes,
) -> Stored:
    """``(extra_ref, extra_data)`` for a step whose extra is ``extra`` (JSON ``full``).

    Executes :func:`_extra_plan.plan_extra`: appends an ``extra_log`` row when the current base no
    longer serves; returns the base to use next (None: none yet). The caller holds the session
    row's lock and checked ``base`` exists.
    """
    step = plan_extra(uid, base, extra, full)
    if isinstance(step, Append):
        return step.row(await _append(conn, schema, sid, step.base_ref, step.data))
    return step.row()


async def _append(conn: Any, schema: str, sid: str, base: int | None, data: bytes) -> int:
    row = await fetchone(
        conn,
        q(
            "INSERT INTO {schema}.extra_log (session_id, base, data) VALUES (%s, %s, %s) "
            "RETURNING id",
            schema,
        ),
        (sid, base, data),
    )
    return cast("int", row[0])


async def ref_exists(conn: Any, schema: str, sid: str, ref: int) -> bool:
    found = await fetchone(
        conn,
        q("SELECT 1 FROM {schema}.extra_log WHERE id = %s AND session_id = %s", schema),
        (ref, sid),
    )
    return found is not None


_CHAIN = (
    "WITH RECURSIVE chain(base, data, depth) AS ("
    "SELECT base, data, 0 FROM {schema}.extra_log WHERE id = %s AND session_id = %s "
    "UNION ALL SELECT e.base, e.data, c.depth + 1 FROM {schema}.extra_log e "
    "JOIN chain c ON e.id = c.base WHERE e.session_id = %s AND c.depth < %s) "
    "SELECT base, data FROM chain ORDER BY depth"
)
_CHAIN_LIMIT = MAX_CHAIN * 2 + 8


async def resolve(
    conn: Any, schema: str, location: str, sid: str, ref: int | None, data: bytes | None
) -> dict[str, Any] | None:
    """A step's ``extra`` from its row's two columns (one query); None when it cannot be built."""
    if ref is None:
        return None if data is None else cast("dict[str, Any]", codec.loads(bytes(data)))
    rows = await fetchall(conn, q(_CHAIN, schema), (ref, sid, sid, _CHAIN_LIMIT))
    chain = cast("Sequence[tuple[int | None, bytes]]", rows)
    if not chain or chain[-1][0] is not None:
        if len(chain) > _CHAIN_LIMIT:
            raise CheckpointError(f"{location}: the extra log chain of {sid!r} is too long")
        return None  # only hand-written SQL on extra_log removes a row a step reaches
    extra = cast("dict[str, Any]", codec.loads(bytes(chain[-1][1])))
    deltas = [bytes(delta) for _, delta in reversed(chain[:-1])]
    if data is not None:
        deltas.append(bytes(data))
    for delta in deltas:
        codec.apply_delta(extra, cast("Mapping[str, Any]", codec.loads(delta)))
    return extra


_LIVE = (
    "WITH RECURSIVE live(id) AS ("
    "SELECT extra_ref FROM {schema}.steps WHERE extra_ref IS NOT NULL AND session_id = ANY(%s) "
    "UNION SELECT e.base FROM {schema}.extra_log e JOIN live ON e.id = live.id "
    "WHERE e.base IS NOT NULL) "
    "DELETE FROM {schema}.extra_log WHERE session_id = ANY(%s) "
    "AND NOT EXISTS (SELECT 1 FROM live WHERE live.id = extra_log.id)"
)


async def collect(conn: Any, schema: str, sessions: Sequence[str]) -> int:
    """Delete the ``extra_log`` rows of ``sessions`` no step reaches; the caller locked them."""
    if not sessions:
        return 0
    cur = await conn.execute(q(_LIVE, schema), (list(sessions), list(sessions)))
    return cast("int", cur.rowcount)
