"""PostgreSQL specifics: concurrent migrations, dropped connections, many writers, refusals."""

from __future__ import annotations

import asyncio
from typing import Any, LiteralString, cast

import psycopg
import pytest

from weavegraph.checkpoint._migration import latest_version
from weavegraph.checkpoint.postgres import PostgresCheckpointer, migrate_postgres
from weavegraph.checkpoint.postgres._schema import POSTGRES_MIGRATIONS
from weavegraph.errors import DatabaseSchemaTooNew, NotAWeavegraphDatabase
from weavegraph.state import Message
from weavegraph.testing.conformance import make_checkpoint

pytestmark = pytest.mark.postgres

LATEST = latest_version(POSTGRES_MIGRATIONS)


async def test_concurrent_connects_migrate_once(postgres_url: str, postgres_schema: str) -> None:
    checkpointers = await asyncio.gather(
        *(PostgresCheckpointer.connect(postgres_url, schema=postgres_schema) for _ in range(6))
    )
    try:
        assert sorted(cp.schema_before for cp in checkpointers) == [0, *[LATEST] * 5]
        async with await psycopg.AsyncConnection.connect(postgres_url) as conn:
            cur = await conn.execute(
                raw(f'SELECT version FROM "{postgres_schema}".weavegraph_schema ORDER BY 1')
            )
            assert await cur.fetchall() == [(v,) for v in range(1, LATEST + 1)]
    finally:
        for cp in checkpointers:
            await cp.close()
    again = await migrate_postgres(postgres_url, schema=postgres_schema)
    assert (again.before, again.after) == (LATEST, LATEST)


async def test_survives_terminated_connections(postgres_url: str, postgres_schema: str) -> None:
    """Its pooled connections are killed server-side; the next operations reconnect."""
    separator = "&" if "?" in postgres_url else "?"
    url = f"{postgres_url}{separator}application_name={postgres_schema}"
    async with await PostgresCheckpointer.connect(url, schema=postgres_schema) as cp:
        await cp.save(make_checkpoint("s", 0))
        async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as admin:
            cur = await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
                (postgres_schema,),
            )
            assert len(await cur.fetchall()) >= 1
        await cp.save(make_checkpoint("s", 1))
        latest = await cp.load_latest("s")
        assert latest is not None
        assert latest.step == 1


async def test_survives_every_pooled_connection_terminated_at_once(
    postgres_url: str, postgres_schema: str
) -> None:
    """All of its pooled connections are cut together: the retry does not meet another one."""
    separator = "&" if "?" in postgres_url else "?"
    url = f"{postgres_url}{separator}application_name={postgres_schema}"
    async with await PostgresCheckpointer.connect(url, schema=postgres_schema) as cp:
        await cp.save(make_checkpoint("s", 0))

        async def hold(conn: Any) -> None:
            await conn.execute("SELECT pg_sleep(0.2)")

        await asyncio.gather(*(cp.execute(hold) for _ in range(4)))  # four pooled connections
        async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as admin:
            cur = await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
                (postgres_schema,),
            )
            assert len(await cur.fetchall()) >= 4
        await cp.save(make_checkpoint("s", 1), builds_on=0)
        latest = await cp.load_latest("s")
        assert latest is not None
        assert latest.step == 1


async def test_many_writers_keep_latest_monotonic(postgres_url: str, postgres_schema: str) -> None:
    """Two pools (as two processes would) save interleaved steps of one session."""
    first = await PostgresCheckpointer.connect(postgres_url, schema=postgres_schema)
    second = await PostgresCheckpointer.connect(postgres_url, schema=postgres_schema)
    try:
        saves = [
            (first if step % 2 else second).save(
                make_checkpoint("shared", step, messages=[Message.user(str(step))])
            )
            for step in reversed(range(30))
        ]
        await asyncio.gather(*saves)
        for cp in (first, second):
            latest = await cp.load_latest("shared")
            assert latest is not None
            assert latest.step == 29
            assert [i.step for i in await cp.history("shared")] == list(range(30))
        loaded = await second.load("shared", 12)
        assert loaded is not None
        assert [m.content for m in loaded.state.messages] == ["12"]
    finally:
        await first.close()
        await second.close()


async def test_newer_schema_is_refused(postgres_url: str, postgres_schema: str) -> None:
    async with await PostgresCheckpointer.connect(postgres_url, schema=postgres_schema):
        pass
    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as conn:
        await conn.execute(
            raw(f'INSERT INTO "{postgres_schema}".weavegraph_schema (version) VALUES (42)')
        )
    with pytest.raises(DatabaseSchemaTooNew, match="42"):
        await PostgresCheckpointer.connect(postgres_url, schema=postgres_schema)


async def test_foreign_tables_are_refused_untouched(
    postgres_url: str, postgres_schema: str
) -> None:
    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as conn:
        await conn.execute(raw(f'CREATE SCHEMA "{postgres_schema}"'))
        await conn.execute(raw(f'CREATE TABLE "{postgres_schema}".sessions (token TEXT)'))
    with pytest.raises(NotAWeavegraphDatabase, match="sessions"):
        await PostgresCheckpointer.connect(postgres_url, schema=postgres_schema)
    async with await psycopg.AsyncConnection.connect(postgres_url) as conn:
        cur = await conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
            (postgres_schema,),
        )
        assert await cur.fetchall() == [("sessions",)]


def raw(text: str) -> LiteralString:
    """A test-built SQL string (schema names are generated here, never user input)."""
    return cast("LiteralString", text)
