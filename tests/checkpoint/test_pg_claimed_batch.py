"""Claimed saves in the PostgreSQL group commit: each is fenced by its own claim inside the
shared transaction, a fenced-out one fails alone, and every other one commits exactly once with
its lease renewed (once a third of it ran down) and its step stamped with the claim's epoch."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import ExitStack
from typing import Any, LiteralString, cast

import pytest

import weavegraph as wg
from weavegraph.checkpoint.postgres import PostgresCheckpointer
from weavegraph.checkpoint.postgres._rows import PgSave
from weavegraph.queue import QueueClient
from weavegraph.testing.conformance import make_checkpoint

pytestmark = pytest.mark.postgres


@pytest.fixture
async def cp(postgres_url: str, postgres_schema: str) -> AsyncIterator[PostgresCheckpointer]:
    checkpointer = await PostgresCheckpointer.connect(
        postgres_url, schema=postgres_schema, lease_s=0.5
    )
    try:
        yield checkpointer
    finally:
        await checkpointer.close()


async def rows(cp: PostgresCheckpointer, sql: str, *params: Any) -> list[Any]:
    text = cast("LiteralString", sql.replace("{schema}", f'"{cp.schema}"'))
    return await cp.execute(lambda conn: _fetch(conn, text, params))


async def _fetch(conn: Any, sql: LiteralString, params: tuple[Any, ...]) -> list[Any]:
    return await (await conn.execute(sql, params)).fetchall()


async def claim(cp: PostgresCheckpointer, sid: str, stack: ExitStack) -> None:
    """Claim ``sid``: this test's task writes it under that claim until ``stack`` closes."""
    stack.enter_context(cp.working_under(await cp.claim(sid)))


async def taken_over(
    cp: PostgresCheckpointer, other: PostgresCheckpointer, sid: str, stack: ExitStack
) -> None:
    """``other`` takes ``sid`` over once ``cp``'s claim on it expired (its holder went quiet)."""
    left = await rows(
        cp, "SELECT extract(epoch FROM lease_until - now())::float8 FROM {schema}.sessions "
        "WHERE id = %s", sid,
    )  # fmt: skip
    await asyncio.sleep(max(0.0, left[0][0]) + 0.1)
    await claim(other, sid, stack)
    assert other.claims[sid].stale


async def test_a_fenced_out_save_in_a_batch_fails_alone(
    cp: PostgresCheckpointer, postgres_url: str, postgres_schema: str
) -> None:
    with ExitStack() as stack:
        for sid in ("a", "b", "c"):
            await claim(cp, sid, stack)
        other = await PostgresCheckpointer.connect(postgres_url, schema=postgres_schema)
        try:
            await taken_over(cp, other, "b", stack)
            for sid in ("a", "c"):  # (their leases expired too, but nobody took them)
                assert await rows(cp, "SELECT 1 FROM {schema}.sessions WHERE id = %s", sid)
            batch = [PgSave(make_checkpoint(sid, 0), -1, claim=cp.claims[sid]) for sid in "abc"]
            refused = await cp.execute(lambda conn: cp._store.save_all(conn, batch))  # pyright: ignore[reportPrivateUsage]
            assert [type(error) for error in refused] == [type(None), wg.LeaseLost, type(None)]
            assert cp.claims["b"].lost
            stored = await rows(
                cp, "SELECT session_id, step, epoch FROM {schema}.steps ORDER BY session_id"
            )
            assert stored == [("a", 0, cp.claims["a"].epoch), ("c", 0, cp.claims["c"].epoch)]
            # the session taken over is the new holder's: its save commits
            await other.save(make_checkpoint("b", 0), builds_on=-1)
            assert [
                r[0]
                for r in await rows(cp, "SELECT epoch FROM {schema}.steps WHERE session_id = 'b'")
            ] == [other.claims["b"].epoch]
        finally:
            await other.close()


async def test_concurrent_saves_through_the_group_commit_fail_only_the_fenced_out_one(
    cp: PostgresCheckpointer, postgres_url: str, postgres_schema: str
) -> None:
    with ExitStack() as stack:
        sids = [f"s{i}" for i in range(8)]
        for sid in sids:
            await claim(cp, sid, stack)
        other = await PostgresCheckpointer.connect(postgres_url, schema=postgres_schema)
        try:
            await taken_over(cp, other, "s3", stack)
            results = await asyncio.gather(
                *(cp.save(make_checkpoint(sid, 0), builds_on=-1) for sid in sids),
                return_exceptions=True,
            )
            assert [type(r).__name__ for r in results] == [
                "LeaseLost" if sid == "s3" else "NoneType" for sid in sids
            ]
            committed = await rows(cp, "SELECT session_id FROM {schema}.steps ORDER BY session_id")
            assert [r[0] for r in committed] == [sid for sid in sids if sid != "s3"]
        finally:
            await other.close()


async def test_claimed_saves_of_many_sessions_commit_each_exactly_once(
    cp: PostgresCheckpointer,
) -> None:
    with ExitStack() as stack:
        claimed = [f"c{i}" for i in range(6)]
        unclaimed = [f"u{i}" for i in range(3)]
        for sid in claimed:
            await claim(cp, sid, stack)
        queue = QueueClient(cp)
        request = await queue.enqueue(
            "c2", "go", multitask="enqueue"
        )  # applied by c2's run: done with its next commit
        cp.claims["c2"].consume.append(request)
        before = dict(await rows(cp, "SELECT id, lease_until FROM {schema}.sessions"))
        await asyncio.sleep(0.2)  # more than a third of every lease (0.5 s) ran down
        for step in range(3):
            await asyncio.gather(
                *(
                    cp.save(make_checkpoint(sid, step, extra={"at": step}), builds_on=step - 1)
                    for sid in claimed + unclaimed
                )
            )
        history = await rows(
            cp, "SELECT session_id, array_agg(step ORDER BY step), array_agg(epoch ORDER BY step) "
            "FROM {schema}.steps GROUP BY session_id ORDER BY session_id",
        )  # fmt: skip
        assert history == [
            *((sid, [0, 1, 2], [cp.claims[sid].epoch] * 3) for sid in claimed),
            *((sid, [0, 1, 2], [None] * 3) for sid in unclaimed),
        ]
        after = dict(await rows(cp, "SELECT id, lease_until FROM {schema}.sessions"))
        assert all(after[sid] > before[sid] for sid in claimed)  # the commits renewed the lease
        assert all(cp.claims[sid].last_step == 2 for sid in claimed)
        assert cp.claims["c2"].consume == []
        assert await rows(cp, "SELECT done_at IS NOT NULL FROM {schema}.inbox") == [(True,)]
        for sid in claimed + unclaimed:
            loaded = await cp.load_latest(sid)
            assert loaded is not None
            assert (loaded.step, loaded.state.extra) == (2, {"at": 2})


async def test_a_commit_leaves_a_lease_that_is_still_fresh_as_it_is(
    postgres_url: str, postgres_schema: str
) -> None:
    # (a long lease: under it, the commits right after the claim find it fresh)
    cp = await PostgresCheckpointer.connect(postgres_url, schema=postgres_schema, lease_s=60)
    try:
        with ExitStack() as stack:
            await claim(cp, "fresh", stack)
            before = await rows(cp, "SELECT lease_until FROM {schema}.sessions")
            for step in range(3):
                await cp.save(make_checkpoint("fresh", step), builds_on=step - 1)
            assert await rows(cp, "SELECT lease_until FROM {schema}.sessions") == before
            assert cp.claims["fresh"].last_step == 2
    finally:
        await cp.close()


async def test_an_unclaimed_save_in_a_batch_is_refused_alone_while_a_claim_is_alive(
    cp: PostgresCheckpointer, postgres_url: str, postgres_schema: str
) -> None:
    other = await PostgresCheckpointer.connect(postgres_url, schema=postgres_schema)
    try:
        other.claims["held"] = await other.claim("held")  # (held by another process)
        results = await asyncio.gather(
            *(cp.save(make_checkpoint(sid, 0), builds_on=-1) for sid in ("free", "held")),
            return_exceptions=True,
        )
        assert results[0] is None
        assert isinstance(results[1], wg.SessionBusy)
    finally:
        await other.close()


async def test_closing_events_join_the_batch_fenced_by_their_claim(
    cp: PostgresCheckpointer, postgres_url: str, postgres_schema: str
) -> None:
    with ExitStack() as stack:
        for sid in ("kept", "lost"):
            await claim(cp, sid, stack)
            await cp.save(make_checkpoint(sid, 0), builds_on=-1)
        other = await PostgresCheckpointer.connect(postgres_url, schema=postgres_schema)
        try:
            await taken_over(cp, other, "lost", stack)
            end = [{"seq": 7, "type": "diagnostic", "scope": "x", "message": "end"}]
            results = await asyncio.gather(
                *(cp.append_events(sid, end, builds_on=0) for sid in ("kept", "lost")),
                return_exceptions=True,
            )
            assert results[0] is None
            assert isinstance(results[1], wg.LeaseLost)
            stored = await rows(cp, "SELECT session_id, seq, step FROM {schema}.events")
            assert stored == [("kept", 7, 0)]
            with pytest.raises(wg.CheckpointConflict):  # the fence: the step it builds on
                await cp.append_events("kept", [{**end[0], "seq": 8}], builds_on=1)
        finally:
            await other.close()
