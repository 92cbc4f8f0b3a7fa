"""A writer that stops talking in the middle of a transaction (a worker stopped with SIGSTOP, or
cut off) loses its row locks after the connection's ``idle_in_transaction_session_timeout``, so
another worker can take its sessions over. In pipeline mode the server only counts as idle in the
transaction once the client sent a Sync before reading a result (``_sql.settle``): otherwise it
stays "active" and the locks are held for as long as the writer is gone."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import pytest
from queue_procs import raw

from weavegraph.checkpoint.postgres import PostgresCheckpointer
from weavegraph.checkpoint.postgres import _store as store
from weavegraph.checkpoint.postgres._connect import worker_settings
from weavegraph.testing.conformance import make_checkpoint

pytestmark = pytest.mark.postgres

LEASE_S = 2.0
"""A worker holding 2 s leases gets idle_in_transaction_session_timeout=1000 ms."""


async def test_a_save_paused_while_holding_its_row_locks_loses_them(
    postgres_url: str, postgres_schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sid = "paused"
    async with await PostgresCheckpointer.connect(postgres_url, schema=postgres_schema) as first:
        await first.save(make_checkpoint(sid, 0), builds_on=-1)
    paused = asyncio.Event()
    decide = store.PgStore._decide  # pyright: ignore[reportPrivateUsage]

    async def pause_once(self: Any, conn: Any, item: Any, rows: Any) -> Any:
        if not paused.is_set():  # between the lock and the writes, like a stopped process
            paused.set()
            await asyncio.sleep(3 * LEASE_S / 2)
        return await decide(self, conn, item, rows)

    monkeypatch.setattr(store.PgStore, "_decide", pause_once)
    settings = worker_settings(LEASE_S, "paused-test")
    async with await PostgresCheckpointer.connect(
        postgres_url, schema=postgres_schema, settings=settings
    ) as worker:
        # A session this process never committed: its save locks the row, then reads it.
        saving = asyncio.create_task(worker.save(make_checkpoint(sid, 1), builds_on=0))
        await paused.wait()
        await asyncio.sleep(LEASE_S)  # past the 1 s timeout
        async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as other:
            locked = await other.execute(
                raw(f'SELECT id FROM "{postgres_schema}".sessions WHERE id = %s FOR UPDATE NOWAIT'),
                (sid,),
            )  # (LockNotAvailable while the paused transaction still held it)
            assert await locked.fetchone() == (sid,)
        await saving  # retried on a fresh connection once its own was ended
        latest = await worker.load_latest(sid)
        assert latest is not None
        assert latest.step == 1
