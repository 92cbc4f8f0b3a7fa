"""Storage management for SQLite (``weavegraph db stats|prune|vacuum``): synchronous, one transaction.

``prune`` keeps exactly the newest ``keep_last`` steps per session (the guide's hand-written SQL
keeps step numbers from a global top-N instead) and never deletes a session's latest step. No step
depends on another, so nothing needs rewriting; afterwards the log items and ``extra_log`` rows no
remaining step uses are deleted (``vacuum`` collects unreached ``extra_log`` rows too, e.g. after
the guide's hand-written deletes).
"""

from __future__ import annotations

import os
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from .. import _codec as codec
from ..base import (
    NAMESPACE_SEPARATOR,
    PruneResult,
    PruneRolledBack,
    StorageStats,
    check_prune_args,
    finish_prune,
)
from . import _extra as extras
from ._read import ERRORS, MESSAGES
from ._store import SQLiteStore


def file_bytes(path: str) -> int:
    """Size on disk of a database file and its WAL (0 for an in-memory database)."""
    total = 0
    for name in (path, f"{path}-wal"):
        if path != ":memory:" and os.path.exists(name):
            total += os.path.getsize(name)
    return total


# Sessions, not the rows a session's subgraphs keep in the same table.
_ROOT_SESSIONS = f"sessions WHERE instr(id, '{NAMESPACE_SEPARATOR}') = 0"


def stats(store: SQLiteStore, path: str) -> StorageStats:
    def work(conn: sqlite3.Connection) -> tuple[int, ...]:
        return tuple(
            cast("int", conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
            for table in (_ROOT_SESSIONS, "steps", "events", "channel_log")
        )

    sessions, steps, events, log_items = store.transaction(work, write=False)
    return StorageStats(
        location=store.location,
        sessions=sessions,
        steps=steps,
        events=events,
        log_items=log_items,
        bytes=file_bytes(path),
    )


def prune(
    store: SQLiteStore, older_than: timedelta | None, keep_last: int | None, dry_run: bool = False
) -> PruneResult:
    """Delete steps older than ``older_than`` or beyond the newest ``keep_last`` of their session
    (``dry_run``: the same transaction, rolled back)."""
    check_prune_args(older_than, keep_last)
    conditions: list[str] = []
    params: list[Any] = []
    if older_than is not None:
        conditions.append("st.created_at < ?")
        params.append(codec.to_sqlite_time(datetime.now(UTC) - older_than))
    if keep_last is not None:
        conditions.append("st.rn > ?")
        params.append(keep_last)
    select = (
        "SELECT st.session_id, st.step FROM (SELECT session_id, step, created_at, "
        "ROW_NUMBER() OVER (PARTITION BY session_id ORDER BY step DESC) AS rn FROM steps) st "
        "LEFT JOIN sessions s ON s.id = st.session_id "
        f"WHERE (s.latest_step IS NULL OR st.step <> s.latest_step) AND ({' OR '.join(conditions)})"
    )

    def work(conn: sqlite3.Connection) -> PruneResult:
        conn.execute(
            "CREATE TEMP TABLE IF NOT EXISTS prune_doomed "
            "(session_id TEXT NOT NULL, step INTEGER NOT NULL, PRIMARY KEY (session_id, step))"
        )
        conn.execute("DELETE FROM prune_doomed")
        conn.execute(f"INSERT INTO prune_doomed (session_id, step) {select}", params)
        sessions = [
            cast("str", sid)
            for (sid,) in conn.execute("SELECT DISTINCT session_id FROM prune_doomed").fetchall()
        ]
        deleted = conn.execute(
            "DELETE FROM steps WHERE (session_id, step) IN "
            "(SELECT session_id, step FROM prune_doomed)"
        ).rowcount
        log_deleted = sum(_collect_log(conn, sid) for sid in sessions)
        for sid in sessions:
            extras.collect(conn, sid)
        conn.execute("DELETE FROM prune_doomed")
        return finish_prune(
            PruneResult(
                steps_deleted=deleted,
                sessions_affected=len(sessions),
                log_items_deleted=log_deleted,
            ),
            dry_run,
        )

    try:
        return store.transaction(work)
    except PruneRolledBack as rolled_back:
        return rolled_back.result
    finally:
        store.forget_heads()


def _collect_log(conn: sqlite3.Connection, sid: str) -> int:
    """Delete log items before every remaining window of the session (the head's included)."""
    row = conn.execute("SELECT head FROM sessions WHERE id = ?", (sid,)).fetchone()
    if row is None:
        return 0
    head = cast("dict[str, Any]", codec.loads(row[0]))
    deleted = 0
    for channel, column in ((MESSAGES, "msg_start"), (ERRORS, "err_start")):
        (oldest,) = conn.execute(
            f"SELECT MIN({column}) FROM steps WHERE session_id = ?", (sid,)
        ).fetchone()
        keep_from = min(cast("int", head[channel][0]), oldest if oldest is not None else 1 << 62)
        deleted += conn.execute(
            "DELETE FROM channel_log WHERE session_id = ? AND channel = ? AND idx < ?",
            (sid, channel, keep_from),
        ).rowcount
    return deleted


def checkpoint_wal(store: SQLiteStore) -> None:
    """Move the WAL's content into the database file and truncate the WAL.

    A background checkpoint of this process (or another process's) makes TRUNCATE answer busy at
    once instead of waiting: it is tried again for up to two seconds, then left to the next one.
    """
    for _ in range(100):
        busy = store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        if not busy:
            return
        time.sleep(0.02)


def vacuum(store: SQLiteStore, path: str) -> tuple[int, int]:
    """Rebuild the file to return free pages to the OS; ``(bytes_before, bytes_after)``."""
    before = file_bytes(path)
    store.transaction(extras.collect)
    store.forget_heads()
    checkpoint_wal(store)
    store.conn.execute("VACUUM")
    checkpoint_wal(store)
    return before, file_bytes(path)
