"""Which claim fences a write (``checkpoint/postgres/_claim_context``): the task's own claim.

A worker cut off long enough claims one of its sessions again while its old task still runs:
the old task must be fenced out by its own (expired) claim, and its end must not take the
newer claim away from the process.
"""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import pytest
from queue_procs import raw

import weavegraph as wg
from weavegraph.checkpoint.postgres import PostgresCheckpointer
from weavegraph.checkpoint.postgres._claim import Claim
from weavegraph.checkpoint.postgres._sql import q
from weavegraph.testing.conformance import make_checkpoint

pytestmark = pytest.mark.postgres


async def claim_again(cp: PostgresCheckpointer, sid: str) -> Claim:
    """A new claim of ``sid`` by this process, after the one it holds expired."""

    async def expire(conn: Any) -> None:
        await conn.execute(
            q("UPDATE {schema}.sessions SET lease_until = now() - interval '1 s' WHERE id = %s",
              cp.schema),
            (sid,),
        )  # fmt: skip

    await cp.execute(expire)
    return await cp.claim(sid)


async def test_a_stale_task_is_fenced_by_its_own_claim_and_leaves_the_newer_one(
    cp: PostgresCheckpointer, postgres_url: str, postgres_schema: str
) -> None:
    old = await cp.claim("s")
    newer_taken = asyncio.Event()

    async def stale() -> None:
        with cp.working_under(old):
            await newer_taken.wait()
            with pytest.raises(wg.LeaseLost):
                await cp.save(make_checkpoint("s", 0), builds_on=-1)

    stale_task = asyncio.create_task(stale())
    await asyncio.sleep(0)
    new = await claim_again(cp, "s")
    with cp.working_under(new):
        newer_taken.set()
        await stale_task  # the stale task ends first
        assert cp.claims == {"s": new}
        await cp.save(make_checkpoint("s", 0), builds_on=-1)
        await cp.save(make_checkpoint("s", 1), builds_on=0)
    assert cp.claims == {}
    async with await psycopg.AsyncConnection.connect(postgres_url) as conn:
        cur = await conn.execute(raw(f'SELECT epoch FROM "{postgres_schema}".steps ORDER BY step'))
        assert [epoch for (epoch,) in await cur.fetchall()] == [new.epoch, new.epoch]
    assert new.epoch == old.epoch + 1
