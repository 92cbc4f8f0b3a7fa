"""The pool's connections prepare their statements; a pooler that loses them switches them off."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from weavegraph.checkpoint.postgres import PostgresCheckpointer
from weavegraph.testing.conformance import make_checkpoint

pytestmark = pytest.mark.postgres

STEPS = 6


@asynccontextmanager
async def every_pooled(cp: PostgresCheckpointer) -> AsyncIterator[list[Any]]:
    """Every connection the pool has open, checked out at once."""
    pool = cp._pool  # pyright: ignore[reportPrivateUsage]
    conns = [await pool.getconn() for _ in range(pool.get_stats()["pool_size"])]
    try:
        yield conns
    finally:
        for conn in conns:
            await pool.putconn(conn)


async def prepared_counts(cp: PostgresCheckpointer) -> list[int]:
    async with every_pooled(cp) as conns:
        counts: list[int] = []
        for conn in conns:
            row = await (
                await conn.execute("SELECT count(*) FROM pg_prepared_statements")
            ).fetchone()
            counts.append(row[0])
        return counts


async def save_steps(cp: PostgresCheckpointer, sid: str, steps: range) -> None:
    for number in steps:
        await cp.save(make_checkpoint(sid, number, extra={"at": number}), builds_on=number - 1)


def with_parameter(url: str, parameter: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}{parameter}"


async def test_repeated_statements_are_prepared_on_the_pooled_connections(
    cp: PostgresCheckpointer,
) -> None:
    await save_steps(cp, "s", range(STEPS))
    assert sum(await prepared_counts(cp)) > 0
    assert (await cp.load_latest("s")).state.extra["at"] == STEPS - 1  # type: ignore[union-attr]


async def test_the_url_can_switch_prepared_statements_off(
    postgres_url: str, postgres_schema: str
) -> None:
    url = with_parameter(postgres_url, "prepared_statements=off")
    cp = await PostgresCheckpointer.connect(url, schema=postgres_schema)
    try:
        await save_steps(cp, "s", range(STEPS))
        assert not any(await prepared_counts(cp))
        assert (await cp.load_latest("s")).state.extra["at"] == STEPS - 1  # type: ignore[union-attr]
    finally:
        await cp.close()


async def test_statements_a_pooler_lost_are_run_again_unprepared_and_no_longer_prepared(
    cp: PostgresCheckpointer, caplog: pytest.LogCaptureFixture
) -> None:
    await save_steps(cp, "s", range(STEPS))
    # What a transaction-mode pooler does: the next transaction runs on a server connection
    # that never saw this client's prepared statements. (libpq directly: psycopg must not know.)
    async with every_pooled(cp) as conns:
        for conn in conns:
            conn.pgconn.exec_(b"DEALLOCATE ALL")
    with caplog.at_level(logging.WARNING, logger="weavegraph.checkpoint.postgres._prepared"):
        await save_steps(cp, "s", range(STEPS, 2 * STEPS))
        await save_steps(cp, "t", range(STEPS))
    lost = [r for r in caplog.records if "lost a prepared statement" in r.getMessage()]
    assert len(lost) == 1, caplog.text
    assert "prepared_statements=off" in lost[0].getMessage()
    assert not any(await prepared_counts(cp))  # none prepared since
    history = await cp.history("s")
    assert [info.step for info in history] == list(range(2 * STEPS))
    assert (await cp.load_latest("t")).state.extra["at"] == STEPS - 1  # type: ignore[union-attr]
