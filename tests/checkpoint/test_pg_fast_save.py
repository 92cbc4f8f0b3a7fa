"""Saves planned from this process's own last commits go in one round trip, guarded: when the
stored rows are no longer as this process left them, nothing is written and the batch is decided
the ordinary way (refused where the fence says so)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import ExitStack
from typing import Any

import pytest

import weavegraph as wg
from weavegraph.checkpoint.postgres import PostgresCheckpointer
from weavegraph.state import ErrorEvent, Message
from weavegraph.testing._checks import assert_same
from weavegraph.testing.conformance import make_checkpoint

pytestmark = pytest.mark.postgres


@pytest.fixture
async def pair(
    postgres_url: str, postgres_schema: str
) -> AsyncIterator[tuple[PostgresCheckpointer, PostgresCheckpointer]]:
    """Two checkpointers on one schema, as two processes would have (short leases)."""
    one = await PostgresCheckpointer.connect(postgres_url, schema=postgres_schema, lease_s=0.5)
    two = await PostgresCheckpointer.connect(postgres_url, schema=postgres_schema, lease_s=0.5)
    try:
        yield one, two
    finally:
        await one.close()
        await two.close()


def ordinary_batches(cp: PostgresCheckpointer, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the batches decided the ordinary way (lock, read, then write)."""
    calls: list[int] = []
    save_all = cp._store.save_all  # pyright: ignore[reportPrivateUsage]

    async def counted(conn: Any, items: Sequence[Any]) -> Any:
        calls.append(len(items))
        return await save_all(conn, items)

    monkeypatch.setattr(cp._store, "save_all", counted)  # pyright: ignore[reportPrivateUsage]
    return calls


def step(sid: str, number: int, tag: str = "") -> Any:
    return make_checkpoint(
        sid,
        number,
        messages=[Message(role="user", content=f"{sid}{tag}.{k}") for k in range(number + 1)],
        errors=[ErrorEvent(message=f"{sid}{tag}")] if number % 2 else [],
        extra={"at": number, "tag": tag},
    )


async def test_saves_of_sessions_this_process_committed_last_skip_the_read(
    pair: tuple[PostgresCheckpointer, PostgresCheckpointer], monkeypatch: pytest.MonkeyPatch
) -> None:
    cp, _ = pair
    sids = [f"s{i}" for i in range(6)]
    ordinary = ordinary_batches(cp, monkeypatch)
    for number in range(4):
        await asyncio.gather(*(cp.save(step(sid, number), builds_on=number - 1) for sid in sids))
    assert ordinary == []  # new sessions, then sessions it committed itself: all planned ahead
    for sid in sids:
        assert_same(await cp.load_latest(sid), step(sid, 3))
        assert [s.step for s in await cp.history(sid)] == [0, 1, 2, 3]


async def test_a_session_another_process_moved_on_is_refused_and_nothing_is_written(
    pair: tuple[PostgresCheckpointer, PostgresCheckpointer], monkeypatch: pytest.MonkeyPatch
) -> None:
    cp, other = pair
    for number in range(2):
        await cp.save(step("s", number), builds_on=number - 1)
    await other.save(step("s", 2, "other"), builds_on=1)
    ordinary = ordinary_batches(cp, monkeypatch)
    with pytest.raises(wg.CheckpointConflict):
        await cp.save(step("s", 2), builds_on=1)
    assert ordinary == [1]  # the guard said no: decided again under the lock, and refused
    assert_same(await cp.load_latest("s"), step("s", 2, "other"))
    await cp.save(step("s", 3), builds_on=2)  # it goes on from what is stored
    assert [s.step for s in await cp.history("s")] == [0, 1, 2, 3]


async def test_a_claim_taken_over_elsewhere_is_lease_lost_on_its_next_commit(
    pair: tuple[PostgresCheckpointer, PostgresCheckpointer],
) -> None:
    cp, other = pair
    with ExitStack() as stack:
        stack.enter_context(cp.working_under(await cp.claim("s")))
        for number in range(2):
            await cp.save(step("s", number), builds_on=number - 1)
        await asyncio.sleep(0.6)  # the lease expired (no heartbeat here)
        stack.enter_context(other.working_under(await other.claim("s")))
        with pytest.raises(wg.LeaseLost):
            await cp.save(step("s", 2), builds_on=1)
        await other.save(step("s", 2, "other"), builds_on=1)
    assert_same(await cp.load_latest("s"), step("s", 2, "other"))


async def test_a_session_deleted_and_made_again_elsewhere_is_not_written_over(
    pair: tuple[PostgresCheckpointer, PostgresCheckpointer],
) -> None:
    cp, other = pair
    for number in range(2):
        await cp.save(step("s", number), builds_on=number - 1)
    assert await other.delete_session("s")
    await other.save(step("s", 0, "again"), builds_on=-1)
    with pytest.raises(wg.CheckpointConflict):
        await cp.save(step("s", 2), builds_on=1)
    assert_same(await cp.load_latest("s"), step("s", 0, "again"))
    assert [s.step for s in await cp.history("s")] == [0]
