"""The PostgreSQL schema: its migrations, applied under an advisory lock, and the version check.

The layout is described in ``checkpoint/_migration`` (the same as SQLite's, with PostgreSQL types);
the data conversions migrations run live in ``_migrate``.
"""

from __future__ import annotations

from typing import Any, cast

from ...errors import DatabaseSchemaTooNew, NotAWeavegraphDatabase
from .._migration import SCHEMA_TABLE, Migration, latest_version
from ._migrate import convert_extra_to_log
from ._queue_schema import QUEUE_MIGRATION
from ._sql import q

__all__ = ["POSTGRES_MIGRATIONS", "TABLES", "migrate", "version"]

# Every table weavegraph creates in its schema (maintenance reports and vacuums these).
TABLES = (
    SCHEMA_TABLE, "sessions", "steps", "extra_log", "channel_log", "events", "task_results",
    "inbox",
)  # fmt: skip

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
        convert=convert_extra_to_log,
        then=("ALTER TABLE {schema}.steps DROP COLUMN extra_base",),
    ),
    # 3: a subgraph's checkpoints are stored under ``<session id>/<namespace>`` keys (see
    # ``base.storage_key``); deleting a session's row deletes them too (their other rows follow
    # by the foreign keys). Keys compare bytewise ("C"): the range ``[id || '/', id || '0')`` is
    # exactly the keys starting with ``id/``, read through its own index.
    Migration(
        3,
        (
            'CREATE INDEX sessions_keys_bytewise ON {schema}.sessions (id COLLATE "C")',
            """CREATE FUNCTION {schema}.weavegraph_delete_subgraphs() RETURNS trigger
                LANGUAGE plpgsql AS $$
                BEGIN
                    IF strpos(OLD.id, '/') = 0 THEN
                        DELETE FROM {schema}.sessions
                        WHERE id COLLATE "C" > OLD.id || '/' AND id COLLATE "C" < OLD.id || '0';
                    END IF;
                    RETURN NULL;
                END $$""",
            """CREATE TRIGGER sessions_delete_subgraphs AFTER DELETE ON {schema}.sessions
                FOR EACH ROW EXECUTE FUNCTION {schema}.weavegraph_delete_subgraphs()""",
        ),
    ),
    # 4: as SQLite's 5: the finished tasks of a step not yet committed (per-task durability).
    Migration(
        4,
        (
            """CREATE TABLE {schema}.task_results (
                session_id TEXT NOT NULL REFERENCES {schema}.sessions (id) ON DELETE CASCADE,
                builds_on INTEGER NOT NULL,
                idx INTEGER NOT NULL,
                result BYTEA NOT NULL,
                PRIMARY KEY (session_id, builds_on, idx))""",
        ),
    ),
    # 5: as SQLite's 6: each event records the step it was saved with.
    Migration(5, ("ALTER TABLE {schema}.events ADD COLUMN step INTEGER",)),
    # 6: the work queue (``weavegraph.queue``): a session row is the unit of work. ``run_status``
    # is NULL for a session no worker manages; ``epoch`` grows with every claim and is recorded on
    # the steps a claim commits; lease times come from the database's clock.
    Migration(6, QUEUE_MIGRATION),
    # 7: room in each page of ``sessions`` for the next version of its rows: a commit rewrites
    # its session's row, and with the indexed columns left alone the new version goes in the
    # same page without index entries (a HOT update).
    Migration(7, ("ALTER TABLE {schema}.sessions SET (fillfactor = 50)",)),
)


async def migrate(conn: Any, schema: str, location: str) -> int:
    """Apply the missing migrations under an advisory lock; returns the version found before."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"weavegraph:{schema}",))
    await conn.execute(q("CREATE SCHEMA IF NOT EXISTS {schema}", schema))
    current = await version(conn, schema, location)
    for migration in POSTGRES_MIGRATIONS:
        if migration.version > current:
            for statement in migration.statements:
                await conn.execute(q(statement, schema))
            if migration.convert is not None:
                await migration.convert(conn, schema)
            for statement in migration.then:
                await conn.execute(q(statement, schema))
            await conn.execute(
                q(f"INSERT INTO {{schema}}.{SCHEMA_TABLE} (version) VALUES (%s)", schema),
                (migration.version,),
            )
    return current


async def version(conn: Any, schema: str, location: str) -> int:
    """The schema's version (0: no weavegraph tables); refuses foreign and newer schemas."""
    rows = await (
        await conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,)
        )
    ).fetchall()
    tables = {cast("str", name) for (name,) in rows}
    if SCHEMA_TABLE not in tables:
        clash = tables & set(TABLES)
        if clash:
            raise NotAWeavegraphDatabase(
                location, f"it has tables {sorted(clash)} but no {SCHEMA_TABLE}"
            )
        return 0
    row = await (
        await conn.execute(q(f"SELECT MAX(version) FROM {{schema}}.{SCHEMA_TABLE}", schema))
    ).fetchone()
    found = cast("int | None", row[0]) or 0
    supported = latest_version(POSTGRES_MIGRATIONS)
    if found > supported:
        raise DatabaseSchemaTooNew(location, found, supported)
    return found
