"""Schema versions of the SQL backends: ordered migrations, applied at connect and by ``migrate()``.

Each backend has a list of ``Migration(version, statements)``; a database records the versions it
has in the ``weavegraph_schema`` table. Connecting applies what is missing (SQLite: in one
``BEGIN IMMEDIATE`` transaction; PostgreSQL: in one transaction under ``pg_advisory_xact_lock``, so
processes starting together are safe). A database whose version is newer than the last migration
here is refused (``DatabaseSchemaTooNew``) and left untouched, as is a file that is not a weavegraph
database (``NotAWeavegraphDatabase``).

Layout (both backends; PostgreSQL uses TIMESTAMPTZ, JSONB for name lists and BYTEA for payloads):

- ``sessions``: one row per session: ``id``, ``created_at``, ``updated_at``, ``latest_step``, the
  latest checkpoint's small fields (``head``), the session's log lengths. ``session_extra`` holds
  the latest ``extra`` (rewritten only when it changes).
- ``steps``: one row per committed step, primary key ``(session_id, step)``: ``created_at``, what
  ran / was skipped / was updated, frontier, versions, cursor, the step's windows into the channel
  log, and its ``extra``. Version 2 (both backends): whole, or a delta over a row of
  ``extra_log`` (``extra_ref``), never over another step, so deleting any steps by hand leaves
  the others loadable.
- ``extra_log``: the session's ``extra`` snapshots and deltas over them, append-only; rows no
  step reaches are collected by prune and vacuum.
- ``channel_log``: the session's messages and errors, append-only, keyed by
  ``(session_id, channel, idx)``. Rows belong to the session, not to a step.
- ``events``: the session's stored events by ``seq``.
- SQLite: a trigger on ``DELETE FROM sessions`` removes the session's rows everywhere, so the
  seed's ``DELETE FROM sessions WHERE id = ?`` works even with foreign keys off (the sqlite3 shell).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ._sqlite_migrate import convert_extra_to_snapshots

__all__ = [
    "POSTGRES_MIGRATIONS",
    "SCHEMA_TABLE",
    "SQLITE_MIGRATIONS",
    "Migration",
    "MigrationResult",
    "latest_version",
    "migrate",
]

SCHEMA_TABLE = "weavegraph_schema"


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema version: the statements that bring the previous version to ``version``.

    ``convert``, when set, runs after ``statements`` to move the data (SQLite: ``convert(conn)``;
    PostgreSQL: ``await convert(conn, schema)``), then the ``then`` statements run; all in the
    migration's one transaction.
    """

    version: int
    statements: tuple[str, ...]
    convert: Callable[..., Any] | None = None
    then: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class MigrationResult:
    """What ``migrate()`` did: the schema version before and after, and where."""

    location: str
    before: int
    after: int

    @property
    def applied(self) -> int:
        return self.after - self.before


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
)


async def _convert_postgres_2(conn: Any, schema: str) -> None:
    # Imported here: the PostgreSQL modules import this one.
    from ._pg_migrate import convert_extra_to_log

    await convert_extra_to_log(conn, schema)


# ``{schema}`` is replaced by the quoted schema name (psycopg.sql.Identifier).
POSTGRES_MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        (
            f"""CREATE TABLE {{schema}}.{SCHEMA_TABLE} (
                version INTEGER NOT NULL,
                applied_at TIMESTAMPTZ NOT NULL DEFAULT now())""",
            """CREATE TABLE {schema}.sessions (
                id TEXT PRIMARY KEY,
                created_at TIMESTAMPTZ NOT NULL,
                updated_at TIMESTAMPTZ NOT NULL,
                latest_step INTEGER NOT NULL,
                msg_next INTEGER NOT NULL DEFAULT 0,
                err_next INTEGER NOT NULL DEFAULT 0,
                head BYTEA NOT NULL,
                extra BYTEA NOT NULL)""",
            """CREATE TABLE {schema}.steps (
                session_id TEXT NOT NULL REFERENCES {schema}.sessions (id) ON DELETE CASCADE,
                step INTEGER NOT NULL,
                created_at TIMESTAMPTZ NOT NULL,
                ran_nodes JSONB NOT NULL,
                skipped_nodes JSONB NOT NULL,
                updated_channels JSONB NOT NULL,
                frontier JSONB NOT NULL,
                versions JSONB NOT NULL,
                cursor BYTEA NOT NULL,
                msg_start INTEGER NOT NULL,
                msg_count INTEGER NOT NULL,
                err_start INTEGER NOT NULL,
                err_count INTEGER NOT NULL,
                extra_base INTEGER,
                extra_data BYTEA,
                PRIMARY KEY (session_id, step))""",
            "CREATE INDEX steps_created_at ON {schema}.steps (created_at)",
            "CREATE INDEX steps_extra_base ON {schema}.steps (session_id, extra_base)",
            """CREATE TABLE {schema}.channel_log (
                session_id TEXT NOT NULL REFERENCES {schema}.sessions (id) ON DELETE CASCADE,
                channel TEXT NOT NULL,
                idx INTEGER NOT NULL,
                item BYTEA NOT NULL,
                PRIMARY KEY (session_id, channel, idx))""",
            """CREATE TABLE {schema}.events (
                session_id TEXT NOT NULL,
                seq BIGINT NOT NULL,
                data BYTEA NOT NULL,
                PRIMARY KEY (session_id, seq))""",
        ),
    ),
    # 2: as SQLite's 2: a step's extra is whole or a delta over a row of the session-owned
    # ``extra_log``, never over another step, so hand-written deletes of steps break nothing.
    Migration(
        2,
        (
            """CREATE TABLE {schema}.extra_log (
                id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                session_id TEXT NOT NULL REFERENCES {schema}.sessions (id) ON DELETE CASCADE,
                base BIGINT,
                data BYTEA NOT NULL)""",
            "CREATE INDEX extra_log_session ON {schema}.extra_log (session_id)",
            "ALTER TABLE {schema}.steps ADD COLUMN extra_ref BIGINT",
        ),
        convert=_convert_postgres_2,
        then=("ALTER TABLE {schema}.steps DROP COLUMN extra_base",),
    ),
)


def latest_version(migrations: tuple[Migration, ...]) -> int:
    """The schema version the code writes."""
    return migrations[-1].version if migrations else 0


async def migrate(db_url: str) -> MigrationResult:
    """Bring the database at ``db_url`` (sqlite://... or postgresql://...) to the latest schema.

    Refuses a foreign, corrupt or newer database without changing it. Used by
    ``weavegraph db migrate``; connecting a checkpointer does the same implicitly.
    """
    if db_url.startswith(("postgres://", "postgresql://")):
        from .postgres import migrate_postgres

        return await migrate_postgres(db_url)
    from .sqlite import migrate_sqlite

    return await migrate_sqlite(db_url)
