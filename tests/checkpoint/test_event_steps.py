"""Each stored event records its step (SQLite schema version 6, PostgreSQL 5); a database from
before that version migrates with its events kept (their step unknown: NULL)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any, LiteralString, cast

import psycopg
import pytest

from weavegraph.checkpoint._migration import SQLITE_APPLICATION_ID, Migration, latest_version
from weavegraph.checkpoint.postgres import PostgresCheckpointer
from weavegraph.checkpoint.postgres._schema import POSTGRES_MIGRATIONS
from weavegraph.checkpoint.sqlite import SQLiteCheckpointer
from weavegraph.checkpoint.sqlite._schema import SQLITE_MIGRATIONS
from weavegraph.testing.conformance import make_checkpoint


def raw(text: str) -> LiteralString:
    """A test-built SQL string (schema names are generated here, never user input)."""
    return cast("LiteralString", text)


def _before_event_steps(migrations: tuple[Migration, ...]) -> tuple[Migration, ...]:
    """The migrations that come before the one adding ``events.step``."""
    index = next(i for i, m in enumerate(migrations) if "ADD COLUMN step" in "".join(m.statements))
    return migrations[:index]


def _events(*seqs: int) -> list[dict[str, Any]]:
    return [{"seq": seq, "message": f"m{seq}"} for seq in seqs]


async def _save_run(cp: SQLiteCheckpointer | PostgresCheckpointer) -> None:
    await cp.save(make_checkpoint("s", 0), builds_on=-1, events=_events(0))
    await cp.save(make_checkpoint("s", 1), builds_on=0, events=_events(1, 2))
    await cp.save(make_checkpoint("s", 2), builds_on=1)
    await cp.append_events("s", _events(3), builds_on=2)
    await cp.append_events("lonely", _events(0))  # no session: no step


EXPECTED = [("lonely", 0, None), ("s", 0, 0), ("s", 1, 1), ("s", 2, 1), ("s", 3, 2)]


async def test_sqlite_events_record_their_step(tmp_path: Path) -> None:
    db = tmp_path / "steps.db"
    async with await SQLiteCheckpointer.connect(f"sqlite://{db}") as cp:
        await _save_run(cp)
    with sqlite3.connect(db) as plain:
        rows = plain.execute("SELECT session_id, seq, step FROM events ORDER BY 1, 2").fetchall()
    assert rows == EXPECTED


async def test_sqlite_older_database_migrates_its_events(tmp_path: Path) -> None:
    db = tmp_path / "v2.db"
    plain = sqlite3.connect(db, isolation_level=None)
    for migration in _before_event_steps(SQLITE_MIGRATIONS):
        for statement in migration.statements:
            plain.execute(statement)
        if migration.convert is not None:
            migration.convert(plain)
        for statement in migration.then:
            plain.execute(statement)
        plain.execute("INSERT INTO weavegraph_schema (version) VALUES (?)", (migration.version,))
    plain.execute("INSERT INTO events (session_id, seq, data) VALUES ('old', 0, '{\"seq\":0}')")
    plain.close()
    async with await SQLiteCheckpointer.connect(f"sqlite://{db}") as cp:
        assert cp.schema_before == len(_before_event_steps(SQLITE_MIGRATIONS))
        assert await cp.schema_version() == latest_version(SQLITE_MIGRATIONS)
        assert await cp.load_events("old") == [{"seq": 0}]
        await cp.append_events("old", _events(1))
    with sqlite3.connect(db) as plain:
        rows = plain.execute("SELECT seq, step FROM events ORDER BY seq").fetchall()
    assert rows == [(0, None), (1, None)]
    with sqlite3.connect(db) as plain:  # the header now says the file is weavegraph's
        assert plain.execute("PRAGMA application_id").fetchone() == (SQLITE_APPLICATION_ID,)


@pytest.mark.postgres
async def test_postgres_events_record_their_step(postgres_url: str, postgres_schema: str) -> None:
    async with await PostgresCheckpointer.connect(postgres_url, schema=postgres_schema) as cp:
        await _save_run(cp)
    async with await psycopg.AsyncConnection.connect(postgres_url) as conn:
        cur = await conn.execute(
            raw(f'SELECT session_id, seq, step FROM "{postgres_schema}".events ORDER BY 1, 2')
        )
        assert await cur.fetchall() == EXPECTED


@pytest.mark.postgres
async def test_postgres_older_schema_migrates_its_events(
    postgres_url: str, postgres_schema: str
) -> None:
    quoted = f'"{postgres_schema}"'
    async with await psycopg.AsyncConnection.connect(postgres_url) as conn:
        await conn.execute(raw(f"CREATE SCHEMA {quoted}"))
        for migration in _before_event_steps(POSTGRES_MIGRATIONS):
            for statement in migration.statements:
                await conn.execute(raw(statement.replace("{schema}", quoted)))
            if migration.convert is not None:
                await migration.convert(conn, postgres_schema)
            for statement in migration.then:
                await conn.execute(raw(statement.replace("{schema}", quoted)))
            await conn.execute(
                raw(f"INSERT INTO {quoted}.weavegraph_schema (version) VALUES (%s)"),
                (migration.version,),
            )
        await conn.execute(
            raw(f"INSERT INTO {quoted}.events (session_id, seq, data) VALUES ('old', 0, %s)"),
            (b'{"seq":0}',),
        )
        await conn.commit()
    async with await PostgresCheckpointer.connect(postgres_url, schema=postgres_schema) as cp:
        assert cp.schema_before == len(_before_event_steps(POSTGRES_MIGRATIONS))
        assert await cp.schema_version() == latest_version(POSTGRES_MIGRATIONS)
        assert await cp.load_events("old") == [{"seq": 0}]
