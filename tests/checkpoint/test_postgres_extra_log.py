"""PostgreSQL: every step left after hand-written deletes of any subset loads; migration 1 -> 2.

A step's ``extra`` is stored whole or as one delta over a row of the session's ``extra_log``, so
``DELETE FROM steps WHERE created_at < now() - interval '30 days'`` never orphans another step.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any, LiteralString, cast

import psycopg
import pytest
from checkpoint_histories import Saved, check_survivors, load_all

from weavegraph.checkpoint import _codec as codec
from weavegraph.checkpoint._migration import latest_version
from weavegraph.checkpoint.base import Checkpoint
from weavegraph.checkpoint.postgres import PostgresCheckpointer
from weavegraph.checkpoint.postgres._schema import POSTGRES_MIGRATIONS
from weavegraph.testing.conformance import evolving_extra, evolving_history

pytestmark = pytest.mark.postgres

SESSIONS = ("a", "b")
STEPS = 60


def raw(text: str) -> LiteralString:
    """A test-built SQL string (schema names are generated here, never user input)."""
    return cast("LiteralString", text)


async def _sql(url: str, statement: str, params: Any = None) -> list[tuple[Any, ...]]:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cur = await conn.execute(raw(statement), params)
        return await cur.fetchall() if cur.description else []


@pytest.fixture
async def saved(postgres_url: str, postgres_schema: str) -> AsyncIterator[Saved]:
    async with await PostgresCheckpointer.connect(postgres_url, schema=postgres_schema) as cp:
        for sid in SESSIONS:
            for checkpoint in evolving_history(sid, STEPS):
                await cp.save(checkpoint)
        yield await load_all(cp, SESSIONS)


async def test_every_step_is_self_contained(
    postgres_url: str, postgres_schema: str, saved: Saved
) -> None:
    assert {key: cp.state for key, cp in saved.items()} == {
        (sid, cp.step): cp.state for sid in SESSIONS for cp in evolving_history(sid, STEPS)
    }
    schema = f'"{postgres_schema}"'
    kinds = dict(
        await _sql(
            postgres_url,
            f"SELECT base IS NULL, COUNT(*) FROM {schema}.extra_log WHERE session_id = 'a' "
            "GROUP BY 1",
        )
    )
    deltas = await _sql(
        postgres_url,
        f"SELECT COUNT(*) FROM {schema}.steps WHERE extra_ref IS NOT NULL "
        "AND extra_data IS NOT NULL",
    )
    # Several snapshots and log deltas over them; most steps store a delta over a log row.
    assert kinds[True] >= 2
    assert kinds[False] >= 2
    assert deltas[0][0] > 0


@pytest.mark.parametrize("seed", range(8))
async def test_random_deletes_leave_every_remaining_step_loadable(
    postgres_url: str, postgres_schema: str, saved: Saved, seed: int
) -> None:
    chooser = random.Random(seed)
    doomed = [key for key in saved if chooser.random() < chooser.choice((0.2, 0.5, 0.9))]
    async with await psycopg.AsyncConnection.connect(postgres_url) as conn:
        async with conn.cursor() as cur:
            await cur.executemany(
                raw(f'DELETE FROM "{postgres_schema}".steps WHERE session_id = %s AND step = %s'),
                doomed,
            )
        await conn.commit()
    async with await PostgresCheckpointer.connect(postgres_url, schema=postgres_schema) as cp:
        await check_survivors(cp, saved, doomed, SESSIONS, chooser)


async def test_unreached_log_rows_are_collected_and_go_with_the_session(
    postgres_url: str, postgres_schema: str, saved: Saved
) -> None:
    schema = f'"{postgres_schema}"'
    await _sql(postgres_url, f"DELETE FROM {schema}.steps WHERE step < 45")
    [(total,)] = await _sql(postgres_url, f"SELECT COUNT(*) FROM {schema}.extra_log")
    async with await PostgresCheckpointer.connect(postgres_url, schema=postgres_schema) as cp:
        await cp.vacuum()
        assert await load_all(cp, SESSIONS) == {k: v for k, v in saved.items() if k[1] >= 45}
    [(left,)] = await _sql(postgres_url, f"SELECT COUNT(*) FROM {schema}.extra_log")
    [(unreached,)] = await _sql(
        postgres_url,
        f"WITH RECURSIVE live(id) AS (SELECT extra_ref FROM {schema}.steps "
        f"WHERE extra_ref IS NOT NULL UNION SELECT e.base FROM {schema}.extra_log e "
        "JOIN live ON e.id = live.id) "
        f"SELECT COUNT(*) FROM {schema}.extra_log WHERE id NOT IN (SELECT id FROM live)",
    )
    assert unreached == 0
    assert 0 < left < total
    await _sql(postgres_url, f"DELETE FROM {schema}.sessions WHERE id = 'a'")
    counts = [
        (await _sql(postgres_url, f"SELECT COUNT(*) FROM {schema}.{table} WHERE session_id = 'a'"))
        for table in ("steps", "extra_log", "channel_log")
    ]
    assert counts == [[(0,)]] * 3


async def test_concurrent_writers_pruners_and_hand_deletes(
    postgres_url: str, postgres_schema: str
) -> None:
    """Two processes (pools) save the same sessions while steps are pruned, vacuumed and
    deleted by hand: every step that remains loads as it was saved."""
    expected = {sid: evolving_history(sid, STEPS) for sid in ("x", "y", "z")}
    first = await PostgresCheckpointer.connect(postgres_url, schema=postgres_schema)
    second = await PostgresCheckpointer.connect(postgres_url, schema=postgres_schema)
    schema = f'"{postgres_schema}"'

    async def writer(items: list[Checkpoint]) -> None:
        for checkpoint in items:
            await (first if checkpoint.step % 2 else second).save(checkpoint)

    async def maintainer() -> None:
        for round_ in range(12):
            await first.prune(keep_last=5 + round_)
            await second.vacuum()
            await _sql(postgres_url, f"DELETE FROM {schema}.steps WHERE step % 7 = {round_ % 7}")

    try:
        await asyncio.gather(*(writer(items) for items in expected.values()), maintainer())
        for cp in (first, second):
            loaded = await load_all(cp, tuple(expected))
            for (sid, step), checkpoint in loaded.items():
                assert checkpoint == expected[sid][step], (sid, step)
            for sid, items in expected.items():
                assert await cp.load_latest(sid) == items[-1]
    finally:
        await first.close()
        await second.close()


# --- migration from version 1 (extra deltas chained over previous steps) --------------------


async def _build_version_1(url: str, source: str, target: str) -> list[tuple[str, int]]:
    """A version-1 schema holding ``source``'s sessions, its extras chained step over step.

    Returns the steps whose chain was broken on purpose (their base row is missing).
    """
    columns = (
        "session_id, step, created_at, ran_nodes, skipped_nodes, updated_channels, frontier, "
        "versions, cursor, msg_start, msg_count, err_start, err_count"
    )
    src, dst = f'"{source}"', f'"{target}"'
    async with await psycopg.AsyncConnection.connect(url) as conn:
        await conn.execute(raw(f"CREATE SCHEMA {dst}"))
        for statement in POSTGRES_MIGRATIONS[0].statements:
            await conn.execute(raw(statement.replace("{schema}", dst)))
        await conn.execute(raw(f"INSERT INTO {dst}.weavegraph_schema (version) VALUES (1)"))
        session_columns = "id, created_at, updated_at, latest_step, msg_next, err_next, head, extra"  # version 1's columns (the source schema is the latest version)
        await conn.execute(
            raw(
                f"INSERT INTO {dst}.sessions ({session_columns}) "
                f"SELECT {session_columns} FROM {src}.sessions"
            )
        )
        for table in ("channel_log",):
            await conn.execute(raw(f"INSERT INTO {dst}.{table} SELECT * FROM {src}.{table}"))
        await conn.execute(
            raw(f"INSERT INTO {dst}.events SELECT session_id, seq, data FROM {src}.events")
        )
        await conn.execute(
            raw(f"INSERT INTO {dst}.steps ({columns}) SELECT {columns} FROM {src}.steps")
        )
        for sid in SESSIONS:
            previous: dict[str, Any] | None = None
            for step in range(STEPS):
                extra = evolving_extra(step)
                if previous is None or step % 10 == 0:
                    base, data = None, codec.dumps(extra)  # a snapshot
                else:
                    delta = codec.extra_delta(previous, extra)
                    base, data = step - 1, None if delta is None else codec.dumps(delta)
                await conn.execute(
                    raw(
                        f"UPDATE {dst}.steps SET extra_base = %s, extra_data = %s "
                        "WHERE session_id = %s AND step = %s"
                    ),
                    (base, data, sid, step),
                )
                previous = extra
        # Session b already lost step 12 to a hand-written delete: 13..19 were unloadable.
        await conn.execute(raw(f"DELETE FROM {dst}.steps WHERE session_id = 'b' AND step = 12"))
        await conn.commit()
    return [("b", step) for step in range(12, 20)]


async def test_migration_2_converts_a_version_1_schema(
    postgres_url: str, postgres_schema: str, saved: Saved
) -> None:
    target = f"{postgres_schema}_v1"
    try:
        broken = await _build_version_1(postgres_url, postgres_schema, target)
        async with await PostgresCheckpointer.connect(postgres_url, schema=target) as cp:
            assert cp.schema_before == 1
            assert await cp.schema_version() == latest_version(POSTGRES_MIGRATIONS)
            for sid, step in saved:
                found = await cp.load(sid, step)
                if (sid, step) in broken:
                    assert found is None  # lost before the migration
                else:
                    assert found == saved[(sid, step)], (sid, step)
        columns = await _sql(
            postgres_url,
            "SELECT column_name FROM information_schema.columns WHERE table_schema = %s "
            "AND table_name = 'steps' AND column_name LIKE 'extra%%' ORDER BY 1",
            (target,),
        )
        assert columns == [("extra_data",), ("extra_ref",)]
        # After the migration, hand-written deletes no longer break the remaining steps.
        await _sql(postgres_url, f'DELETE FROM "{target}".steps WHERE step % 4 = 1')
        async with await PostgresCheckpointer.connect(postgres_url, schema=target) as cp:
            for sid, step in saved:
                if step % 4 != 1 and (sid, step) not in broken:
                    assert await cp.load(sid, step) == saved[(sid, step)], (sid, step)
            await cp.save(replace(saved[("a", STEPS - 1)], step=STEPS))
            assert await cp.load("a", STEPS) == replace(saved[("a", STEPS - 1)], step=STEPS)
    finally:
        await _sql(postgres_url, f'DROP SCHEMA IF EXISTS "{target}" CASCADE')
