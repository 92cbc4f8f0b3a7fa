"""The SQLite schema: its migrations, and reading and raising a database's version.

The layout is described in ``checkpoint/_migration``; the data conversions migrations run live in
``_migrate``.
"""

from __future__ import annotations

import sqlite3
from typing import cast

from ...errors import DatabaseSchemaTooNew, NotAWeavegraphDatabase
from .._migration import SCHEMA_TABLE, SQLITE_APPLICATION_ID, Migration, latest_version
from ._migrate import convert_extra_to_snapshots

__all__ = ["SQLITE_MIGRATIONS", "apply_migrations", "schema_state"]


SQLITE_MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        (
            f"""CREATE TABLE {SCHEMA_TABLE} (
                version INTEGER NOT NULL,
                applied_at TEXT NOT NULL DEFAULT (datetime('now')))""",
            """CREATE TABLE sessions (
                id TEXT PRIMARY KEY,
                created_at TEXT NOT NULL,
                updated_at TEXT NOT NULL,
                latest_step INTEGER NOT NULL,
                uid TEXT NOT NULL,
                msg_next INTEGER NOT NULL DEFAULT 0,
                err_next INTEGER NOT NULL DEFAULT 0,
                head BLOB NOT NULL)""",
            """CREATE TABLE session_extra (
                session_id TEXT PRIMARY KEY,
                extra BLOB NOT NULL)""",
            """CREATE TABLE steps (
                session_id TEXT NOT NULL,
                step INTEGER NOT NULL,
                created_at TEXT NOT NULL,
                ran_nodes TEXT NOT NULL,
                skipped_nodes TEXT NOT NULL,
                updated_channels TEXT NOT NULL,
                frontier TEXT NOT NULL,
                versions TEXT NOT NULL,
                cursor BLOB NOT NULL,
                msg_start INTEGER NOT NULL,
                msg_count INTEGER NOT NULL,
                err_start INTEGER NOT NULL,
                err_count INTEGER NOT NULL,
                extra_base INTEGER,
                extra_data BLOB,
                PRIMARY KEY (session_id, step))""",
            "CREATE INDEX steps_created_at ON steps (created_at)",
            "CREATE INDEX steps_extra_base ON steps (session_id, extra_base)",
            """CREATE TABLE channel_log (
                session_id TEXT NOT NULL,
                channel TEXT NOT NULL,
                idx INTEGER NOT NULL,
                item BLOB NOT NULL,
                PRIMARY KEY (session_id, channel, idx))""",
            """CREATE TABLE events (
                session_id TEXT NOT NULL,
                seq INTEGER NOT NULL,
                data BLOB NOT NULL,
                PRIMARY KEY (session_id, seq))""",
            """CREATE TRIGGER sessions_delete_cascade AFTER DELETE ON sessions BEGIN
                DELETE FROM steps WHERE session_id = OLD.id;
                DELETE FROM channel_log WHERE session_id = OLD.id;
                DELETE FROM session_extra WHERE session_id = OLD.id;
                DELETE FROM events WHERE session_id = OLD.id;
            END""",
        ),
    ),
    # 2: a step's extra is whole or a delta over a row of the session-owned ``extra_log``, never
    # over another step, so hand-written deletes of any steps leave the others loadable.
    Migration(
        2,
        (
            """CREATE TABLE extra_log (
                id INTEGER PRIMARY KEY,
                session_id TEXT NOT NULL,
                base INTEGER,
                data BLOB NOT NULL)""",
            "CREATE INDEX extra_log_session ON extra_log (session_id)",
            """CREATE TABLE steps_v2 (
                session_id TEXT NOT NULL,
                step INTEGER NOT NULL,
                created_at TEXT NOT NULL,
                ran_nodes TEXT NOT NULL,
                skipped_nodes TEXT NOT NULL,
                updated_channels TEXT NOT NULL,
                frontier TEXT NOT NULL,
                versions TEXT NOT NULL,
                cursor BLOB NOT NULL,
                msg_start INTEGER NOT NULL,
                msg_count INTEGER NOT NULL,
                err_start INTEGER NOT NULL,
                err_count INTEGER NOT NULL,
                extra_ref INTEGER,
                extra_data BLOB,
                PRIMARY KEY (session_id, step))""",
            # Dropped first: renaming a table under a trigger naming a dropped one fails.
            "DROP TRIGGER sessions_delete_cascade",
        ),
        convert=convert_extra_to_snapshots,
        then=(
            "DROP TABLE steps",
            "ALTER TABLE steps_v2 RENAME TO steps",
            "CREATE INDEX steps_created_at ON steps (created_at)",
            """CREATE TRIGGER sessions_delete_cascade AFTER DELETE ON sessions BEGIN
                DELETE FROM steps WHERE session_id = OLD.id;
                DELETE FROM channel_log WHERE session_id = OLD.id;
                DELETE FROM session_extra WHERE session_id = OLD.id;
                DELETE FROM extra_log WHERE session_id = OLD.id;
                DELETE FROM events WHERE session_id = OLD.id;
            END""",
        ),
    ),
    # 3: a subgraph's checkpoints are stored under ``<session id>/<namespace>`` keys (see
    # ``base.storage_key``); deleting a session's row deletes them too. The key range
    # ``[id || '/', id || '0')`` is exactly the keys starting with ``id/`` ('0' follows '/').
    Migration(
        3,
        (
            "DROP TRIGGER sessions_delete_cascade",
            """CREATE TRIGGER sessions_delete_cascade AFTER DELETE ON sessions BEGIN
                DELETE FROM steps WHERE session_id = OLD.id
                    OR (session_id > OLD.id || '/' AND session_id < OLD.id || '0');
                DELETE FROM channel_log WHERE session_id = OLD.id
                    OR (session_id > OLD.id || '/' AND session_id < OLD.id || '0');
                DELETE FROM session_extra WHERE session_id = OLD.id
                    OR (session_id > OLD.id || '/' AND session_id < OLD.id || '0');
                DELETE FROM extra_log WHERE session_id = OLD.id
                    OR (session_id > OLD.id || '/' AND session_id < OLD.id || '0');
                DELETE FROM events WHERE session_id = OLD.id;
                DELETE FROM sessions WHERE id > OLD.id || '/' AND id < OLD.id || '0';
            END""",
        ),
    ),
    # 4: a head whose extra is large references it as its step row does (an extra_log row and a
    # delta) instead of a whole copy in session_extra, so a step writes what it changed. No
    # statement: version-2/3 heads still load (session_extra is read until the session's next
    # save); the version keeps older releases, which would miss the extra, away.
    Migration(4, ()),
    # 5: the finished tasks of a step not yet committed (per-task durability, see ``_tasks``).
    Migration(
        5,
        (
            """CREATE TABLE task_results (
                session_id TEXT NOT NULL,
                builds_on INTEGER NOT NULL,
                idx INTEGER NOT NULL,
                result BLOB NOT NULL,
                PRIMARY KEY (session_id, builds_on, idx))""",
            "DROP TRIGGER sessions_delete_cascade",
            """CREATE TRIGGER sessions_delete_cascade AFTER DELETE ON sessions BEGIN
                DELETE FROM steps WHERE session_id = OLD.id
                    OR (session_id > OLD.id || '/' AND session_id < OLD.id || '0');
                DELETE FROM channel_log WHERE session_id = OLD.id
                    OR (session_id > OLD.id || '/' AND session_id < OLD.id || '0');
                DELETE FROM session_extra WHERE session_id = OLD.id
                    OR (session_id > OLD.id || '/' AND session_id < OLD.id || '0');
                DELETE FROM extra_log WHERE session_id = OLD.id
                    OR (session_id > OLD.id || '/' AND session_id < OLD.id || '0');
                DELETE FROM task_results WHERE session_id = OLD.id
                    OR (session_id > OLD.id || '/' AND session_id < OLD.id || '0');
                DELETE FROM events WHERE session_id = OLD.id;
                DELETE FROM sessions WHERE id > OLD.id || '/' AND id < OLD.id || '0';
            END""",
        ),
    ),
    # 6: each event records the step it was saved with (NULL: stored before version 6, or
    # appended to a session that had no step yet). The file header says it is weavegraph's
    # (``application_id``): the schema no longer fits its first page, which is all a file
    # truncated to one page keeps.
    Migration(
        6,
        (
            "ALTER TABLE events ADD COLUMN step INTEGER",
            f"PRAGMA application_id = {SQLITE_APPLICATION_ID}",
        ),
    ),
)


def schema_state(conn: sqlite3.Connection, location: str) -> int:
    """The schema version of an open database (0: empty); refuses foreign or newer ones."""
    tables = {
        cast("str", name)
        for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        ).fetchall()
    }
    if not tables:
        return 0
    if SCHEMA_TABLE not in tables:
        shown = ", ".join(sorted(tables)[:5])
        raise NotAWeavegraphDatabase(
            location, f"it has other tables ({shown}) and no {SCHEMA_TABLE}"
        )
    version = cast(
        "int | None", conn.execute(f"SELECT MAX(version) FROM {SCHEMA_TABLE}").fetchone()[0]
    )
    supported = latest_version(SQLITE_MIGRATIONS)
    if (version or 0) > supported:
        raise DatabaseSchemaTooNew(location, version or 0, supported)
    return version or 0


def apply_migrations(conn: sqlite3.Connection, location: str) -> int:
    """Apply the missing migrations in the caller's transaction; the version reached."""
    current = schema_state(conn, location)
    for migration in SQLITE_MIGRATIONS:
        if migration.version > current:
            for statement in migration.statements:
                conn.execute(statement)
            if migration.convert is not None:
                migration.convert(conn)
            for statement in migration.then:
                conn.execute(statement)
            conn.execute(f"INSERT INTO {SCHEMA_TABLE} (version) VALUES (?)", (migration.version,))
            current = migration.version
    return current
