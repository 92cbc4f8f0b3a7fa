"""Storage management for PostgreSQL (``weavegraph db stats|prune|vacuum``), SQLite's semantics.

``prune`` keeps exactly the newest ``keep_last`` steps per session and never deletes a session's
latest step; no step depends on another, so the survivors need no rewriting. It locks the rows of
the sessions it prunes (as saves do) before choosing the steps, so a concurrent save cannot have
its new latest step deleted, then collects the ``extra_log`` rows no remaining step reaches (a
save checks its base row under the same lock). ``vacuum`` collects them for every session first.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast

from .. import _codec as codec
from ..base import NAMESPACE_SEPARATOR, PruneResult, StorageStats, check_prune_args, finish_prune
from . import _extra as extras
from ._schema import TABLES
from ._store import ERRORS, MESSAGES, PgStore

# Sessions, not the rows a session's subgraphs keep in the same table.
_ROOT_SESSIONS = f"sessions WHERE strpos(id, '{NAMESPACE_SEPARATOR}') = 0"
_COUNTED = (("sessions", _ROOT_SESSIONS), ("steps", "steps"), ("events", "events"),
            ("log_items", "channel_log"))  # fmt: skip


async def stats(store: PgStore, conn: Any) -> StorageStats:
    counts: dict[str, int] = {}
    for field, table in _COUNTED:
        row = await store.fetchone(conn, f"SELECT COUNT(*) FROM {{schema}}.{table}")
        counts[field] = cast("int", row[0])
    return StorageStats(location=store.location, bytes=await total_bytes(store, conn), **counts)


async def total_bytes(store: PgStore, conn: Any) -> int:
    """``pg_total_relation_size`` of the weavegraph tables: rows, indexes and TOAST."""
    row = await (
        await conn.execute(
            "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relname = ANY(%s) AND c.relkind = 'r'",
            (store.schema, list(TABLES)),
        )
    ).fetchone()
    return int(row[0])


def _doomed_select(older_than: timedelta | None, keep_last: int | None) -> tuple[str, list[Any]]:
    """The steps to delete among sessions ``= ANY(%s)`` (the first parameter, added by callers)."""
    conditions: list[str] = []
    params: list[Any] = []
    if older_than is not None:
        conditions.append("st.created_at < %s")
        params.append(datetime.now(UTC) - older_than)
    if keep_last is not None:
        conditions.append("st.rn > %s")
        params.append(keep_last)
    select = (
        "SELECT st.session_id, st.step FROM (SELECT session_id, step, created_at, "
        "ROW_NUMBER() OVER (PARTITION BY session_id ORDER BY step DESC) AS rn "
        "FROM {schema}.steps WHERE %s::text[] IS NULL OR session_id = ANY(%s::text[])) st "
        "JOIN {schema}.sessions s ON s.id = st.session_id "
        f"WHERE st.step <> s.latest_step AND ({' OR '.join(conditions)})"
    )
    return select, params


async def prune(
    store: PgStore,
    conn: Any,
    older_than: timedelta | None,
    keep_last: int | None,
    dry_run: bool = False,
) -> PruneResult:
    """Delete steps older than ``older_than`` or beyond the newest ``keep_last`` of their session
    (``dry_run``: the same transaction, rolled back)."""
    check_prune_args(older_than, keep_last)
    select, params = _doomed_select(older_than, keep_last)
    candidates = await store.fetchall(
        conn, f"SELECT DISTINCT session_id FROM ({select}) d", (None, None, *params)
    )
    if not candidates:
        return PruneResult(
            steps_deleted=0, sessions_affected=0, log_items_deleted=0, dry_run=dry_run
        )
    # Lock in a fixed order (saves lock one row each, so this cannot deadlock with them), then
    # choose the steps again: the latest steps may have moved before the lock was taken.
    locked = [
        cast("str", sid)
        for (sid,) in await store.fetchall(
            conn,
            "SELECT id FROM {schema}.sessions WHERE id = ANY(%s) ORDER BY id FOR UPDATE",
            ([cast("str", sid) for (sid,) in candidates],),
        )
    ]
    await conn.execute(
        "CREATE TEMP TABLE weavegraph_prune (session_id TEXT NOT NULL, step INTEGER NOT NULL, "
        "PRIMARY KEY (session_id, step)) ON COMMIT DROP"
    )
    await conn.execute(
        store.q(f"INSERT INTO weavegraph_prune (session_id, step) {select}"),
        (locked, locked, *params),
    )
    affected = await conn.execute(
        store.q(
            "DELETE FROM {schema}.steps s USING weavegraph_prune d "
            "WHERE s.session_id = d.session_id AND s.step = d.step RETURNING s.session_id"
        )
    )
    sessions = sorted({cast("str", sid) for (sid,) in await affected.fetchall()})
    log_deleted = 0
    for sid in sessions:
        log_deleted += await _collect_log(store, conn, sid)
    await extras.collect(conn, store.schema, sessions)
    result = PruneResult(
        steps_deleted=affected.rowcount,
        sessions_affected=len(sessions),
        log_items_deleted=log_deleted,
    )
    return finish_prune(result, dry_run)


async def _collect_log(store: PgStore, conn: Any, sid: str) -> int:
    """Delete log items before every remaining window of the session (the head's included)."""
    row = await store.fetchone(conn, "SELECT head FROM {schema}.sessions WHERE id = %s", (sid,))
    head = cast("dict[str, Any]", codec.loads(bytes(row[0])))
    deleted = 0
    for channel, column in ((MESSAGES, "msg_start"), (ERRORS, "err_start")):
        (oldest,) = await store.fetchone(
            conn, f"SELECT MIN({column}) FROM {{schema}}.steps WHERE session_id = %s", (sid,)
        )
        keep_from = min(cast("int", head[channel][0]), oldest if oldest is not None else 1 << 62)
        cur = await conn.execute(
            store.q(
                "DELETE FROM {schema}.channel_log WHERE session_id = %s AND channel = %s "
                "AND idx < %s"
            ),
            (sid, channel, keep_from),
        )
        deleted += cur.rowcount
    return deleted


async def collect_extra_log(store: PgStore, conn: Any) -> int:
    """Delete every ``extra_log`` row no step reaches, the sessions' rows locked as prune does.

    Returns the tables' total size in bytes before.
    """
    before = await total_bytes(store, conn)
    locked = await store.fetchall(
        conn,
        "SELECT id FROM {schema}.sessions WHERE id IN "
        "(SELECT DISTINCT session_id FROM {schema}.extra_log) ORDER BY id FOR UPDATE",
    )
    await extras.collect(conn, store.schema, [cast("str", sid) for (sid,) in locked])
    return before


async def vacuum(store: PgStore, conn: Any) -> int:
    """VACUUM ANALYZE the weavegraph tables on an autocommit connection; their bytes after."""
    for table in TABLES:
        await conn.execute(store.q(f"VACUUM ANALYZE {{schema}}.{table}"))
    return await total_bytes(store, conn)
