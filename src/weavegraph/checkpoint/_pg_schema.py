"""PostgreSQL schema handling: query templates bound to a schema, migrations, the version check."""

from __future__ import annotations

from typing import Any, LiteralString, cast

from ..errors import DatabaseSchemaTooNew, NotAWeavegraphDatabase
from . import _codec as codec
from .migrations import POSTGRES_MIGRATIONS, SCHEMA_TABLE, latest_version

# Every table weavegraph creates in its schema (maintenance reports and vacuums these).
TABLES = (SCHEMA_TABLE, "sessions", "steps", "extra_log", "channel_log", "events")


def q(template: str, schema: str) -> Any:
    """``template`` with ``{schema}`` replaced by the quoted schema name."""
    from psycopg import sql

    # Templates are this package's constants; only the schema name varies, quoted as an identifier.
    return sql.SQL(cast("LiteralString", template)).format(schema=sql.Identifier(schema))


def jsonb(value: object) -> Any:
    """A JSONB parameter serialized with orjson (the codec's rules)."""
    from psycopg.types.json import Jsonb

    return Jsonb(value, dumps=lambda v: codec.dumps(v).decode())


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
