"""PostgreSQL storage management and connecting: prune/stats/vacuum parity with SQLite, URLs."""

from __future__ import annotations

import asyncio
import logging
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from checkpoint_histories import evolving

from weavegraph.checkpoint._migration import latest_version
from weavegraph.checkpoint.base import Checkpoint
from weavegraph.checkpoint.postgres import PostgresCheckpointer
from weavegraph.checkpoint.postgres._schema import POSTGRES_MIGRATIONS, TABLES
from weavegraph.checkpoint.postgres._store import PgStore
from weavegraph.checkpoint.sqlite import SQLiteCheckpointer
from weavegraph.config import migrate
from weavegraph.errors import CheckpointError, ConfigError
from weavegraph.state import Message
from weavegraph.testing.conformance import make_checkpoint

OLD = datetime.now(UTC) - timedelta(days=40)


def replacing(sid: str, steps: int) -> list[Checkpoint]:
    """Each step's messages replace the previous ones (so old log items become garbage)."""
    return [
        make_checkpoint(sid, step, messages=[Message.user(f"{sid} only {step}")])
        for step in range(steps)
    ]


async def save_all(cp: PostgresCheckpointer | SQLiteCheckpointer, items: list[Checkpoint]) -> None:
    for checkpoint in items:
        await cp.save(checkpoint)


@pytest.fixture
async def pg(postgres_url: str, postgres_schema: str) -> PostgresCheckpointer:
    return await PostgresCheckpointer.connect(postgres_url, schema=postgres_schema)


@pytest.mark.postgres
async def test_prune_keeps_newest_steps_per_session(pg: PostgresCheckpointer) -> None:
    long, short = evolving("long", 10), evolving("short", 3)
    async with pg as cp:
        await save_all(cp, long)
        await save_all(cp, short)
        result = await cp.prune(keep_last=2)
        assert (result.steps_deleted, result.sessions_affected) == (8 + 1, 2)
        assert [i.step for i in await cp.history("long")] == [8, 9]
        assert [i.step for i in await cp.history("short")] == [1, 2]
        for checkpoint in (long[8], long[9], short[1], short[2]):
            loaded = await cp.load(checkpoint.session_id, checkpoint.step)
            assert loaded is not None
            assert loaded.state == checkpoint.state
        await cp.prune(keep_last=0)
        assert [i.step for i in await cp.history("long")] == [9]
        # Saving continues normally after maintenance, on deltas over the surviving rows.
        more = evolving("long", 12)[10:]
        await save_all(cp, more)
        for checkpoint in more:
            loaded = await cp.load("long", checkpoint.step)
            assert loaded is not None
            assert loaded.state == checkpoint.state


@pytest.mark.postgres
async def test_prune_older_than_keeps_latest_and_chains(pg: PostgresCheckpointer) -> None:
    async with pg as cp:
        recent = evolving("s", 8)
        await save_all(cp, evolving("s", 8, start=OLD)[:6])
        await save_all(cp, recent[6:])
        await save_all(cp, evolving("idle", 4, start=OLD))
        result = await cp.prune(older_than=timedelta(days=30))
        assert (result.steps_deleted, result.sessions_affected) == (6 + 3, 2)
        assert [i.step for i in await cp.history("s")] == [6, 7]
        assert [i.step for i in await cp.history("idle")] == [3]
        loaded = await cp.load("s", 6)
        assert loaded is not None
        assert loaded.state == recent[6].state
        nothing = await cp.prune(older_than=timedelta(days=30), keep_last=5)
        assert (nothing.steps_deleted, nothing.sessions_affected) == (0, 0)
        with pytest.raises(ValueError, match="older_than"):
            await cp.prune()
        with pytest.raises(ValueError, match="keep_last"):
            await cp.prune(keep_last=-1)


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("older_than", "keep_last"),
    [(None, 3), (timedelta(days=30), None), (timedelta(days=30), 4), (None, 1)],
)
async def test_prune_matches_sqlite(
    pg: PostgresCheckpointer,
    tmp_path: Path,
    older_than: timedelta | None,
    keep_last: int | None,
) -> None:
    """The same checkpoints pruned by both backends: the same result and the same survivors."""
    sessions = [
        evolving("a", 12, start=OLD),
        evolving("b", 5),
        evolving("c", 1, start=OLD),
        evolving("d", 9, start=OLD)[:5] + evolving("d", 9)[5:],
        replacing("e", 7),
    ]
    async with pg, await SQLiteCheckpointer.connect(f"sqlite://{tmp_path}/p.db") as lite:
        outcomes = []
        for cp in (pg, lite):
            for checkpoints in sessions:
                await save_all(cp, checkpoints)
            result = await cp.prune(older_than=older_than, keep_last=keep_last)
            kept = {s[0].session_id: [i.step for i in await cp.history(s[0].session_id)]
                    for s in sessions}  # fmt: skip
            outcomes.append((result, kept))
            assert result.log_items_deleted > 0 or not keep_last
            for checkpoints in sessions:
                for checkpoint in checkpoints:
                    loaded = await cp.load(checkpoint.session_id, checkpoint.step)
                    if checkpoint.step in kept[checkpoint.session_id]:
                        assert loaded is not None
                        assert loaded.state == checkpoint.state
                    else:
                        assert loaded is None
        assert outcomes[0] == outcomes[1]


@pytest.mark.postgres
async def test_prune_while_saving(pg: PostgresCheckpointer) -> None:
    """Saves during prunes: every step that remains loads as it was saved.

    ``extra`` changes every fourth step, so most steps point at an older row holding it: a save
    building on a row that a concurrent prune deletes would leave an unloadable step.
    """
    checkpoints = {
        sid: [
            make_checkpoint(sid, step, extra={"phase": step // 4, "pad": "p" * 40})
            for step in range(40)
        ]
        for sid in ("x", "y", "z")
    }
    async with pg as cp:

        async def writer(items: list[Checkpoint]) -> None:
            for checkpoint in items:
                await cp.save(checkpoint)

        async def check_all() -> None:
            # Saves never delete or rewrite other steps, so this is sound while they run.
            for sid, items in checkpoints.items():
                for info in await cp.history(sid):
                    loaded = await cp.load(sid, info.step)
                    assert loaded is not None, (sid, info.step)
                    assert loaded.state == items[info.step].state

        async def pruner() -> None:
            for round_ in range(25):
                await cp.prune(keep_last=2 + round_ % 3)
                await check_all()

        await asyncio.gather(*(writer(items) for items in checkpoints.values()), pruner())
        await check_all()
        for sid in checkpoints:
            assert (await cp.history(sid))[-1].step == 39


@pytest.mark.postgres
async def test_prune_waits_for_a_save_in_flight(
    pg: PostgresCheckpointer, postgres_url: str, postgres_schema: str
) -> None:
    """A save holding the session's lock has built a step on a row prune would delete.

    Prune must wait for that save and choose its steps afterwards; otherwise it deletes the
    row the new step's ``extra`` points at.
    """
    same = {"phase": "unchanged"}
    items = [make_checkpoint("s", step, extra=same) for step in range(10)]
    store = PgStore(postgres_schema, "test")
    async with pg as cp, await psycopg.AsyncConnection.connect(postgres_url) as conn:
        for checkpoint in items[:8]:
            async with conn.transaction():
                await store.save(conn, checkpoint)
        async with conn.transaction():
            await store.save(conn, items[8])  # its extra points at step 0 (never changed)
            pruning = asyncio.create_task(cp.prune(keep_last=2))
            # autocommit: pg_stat_activity is snapshotted once per transaction, so each poll
            # must be its own transaction or it keeps seeing the moment before prune waited.
            async with await psycopg.AsyncConnection.connect(
                postgres_url, autocommit=True
            ) as watcher:
                deadline = asyncio.get_running_loop().time() + 30
                while not pruning.done():
                    # Fail instead of hanging: prune cannot finish while this transaction is open.
                    assert asyncio.get_running_loop().time() < deadline, "prune never waited"
                    cur = await watcher.execute(
                        "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                        "AND query LIKE %s",
                        (f'%"{postgres_schema}".sessions%FOR UPDATE%',),
                    )
                    if await cur.fetchone() is not None:
                        break
                    await asyncio.sleep(0.01)
        result = await pruning
        assert result.steps_deleted == 7
        await cp.save(items[9])
        assert [i.step for i in await cp.history("s")] == [7, 8, 9]
        for step in (7, 8, 9):
            loaded = await cp.load("s", step)
            assert loaded is not None
            assert loaded.state == items[step].state


@pytest.mark.postgres
async def test_stats_vacuum_and_version(pg: PostgresCheckpointer, postgres_schema: str) -> None:
    async with pg as cp:
        empty = await cp.stats()
        assert (empty.sessions, empty.steps, empty.events, empty.log_items) == (0, 0, 0, 0)
        await save_all(cp, evolving("s", 6))
        await cp.append_events("s", [{"seq": n, "message": "m"} for n in range(4)])
        stats = await cp.stats()
        assert (stats.sessions, stats.steps, stats.events, stats.log_items) == (1, 6, 4, 6)
        assert stats.bytes > empty.bytes > 0
        assert postgres_schema in stats.location
        await cp.prune(keep_last=1)
        before, after = await cp.vacuum()
        assert before > 0
        assert after > 0
        assert await cp.schema_version() == latest_version(POSTGRES_MIGRATIONS)
        # The pool still hands out transactional connections after VACUUM's autocommit one.
        await cp.save(evolving("s", 7)[6])
        assert (await cp.stats()).steps == 2


@pytest.mark.postgres
async def test_schema_from_the_url(postgres_url: str, postgres_schema: str) -> None:
    separator = "&" if "?" in postgres_url else "?"
    url = f"{postgres_url}{separator}schema={postgres_schema}&application_name=wg"
    async with await PostgresCheckpointer.connect(url) as cp:
        assert cp.schema == postgres_schema
        await cp.save(make_checkpoint("s", 0))
    async with await psycopg.AsyncConnection.connect(postgres_url) as conn:
        cur = await conn.execute(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = %s",
            (postgres_schema,),
        )
        assert await cur.fetchone() == (len(TABLES),)
    result = await migrate(url)
    latest = latest_version(POSTGRES_MIGRATIONS)
    assert (result.before, result.after) == (latest, latest)
    assert postgres_schema in result.location
    with pytest.raises(ConfigError, match="does not match"):
        await PostgresCheckpointer.connect(url, schema="other")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_unreachable_server_fails_at_once(caplog: pytest.LogCaptureFixture) -> None:
    """A clear CheckpointError naming the server, and no pool warnings while it retries."""
    port = _closed_port()
    caplog.set_level(logging.WARNING)
    with pytest.raises(CheckpointError) as raised:
        await PostgresCheckpointer.connect(f"postgresql://nobody:secret@127.0.0.1:{port}/db")
    message = str(raised.value)
    assert f"127.0.0.1:{port}/db" in message
    assert "refused" in message.lower()
    assert "secret" not in message
    assert isinstance(raised.value.__cause__, psycopg.OperationalError)
    assert [r for r in caplog.records if r.name.startswith("psycopg")] == []
