"""``weavegraph worker`` processes: many at once on one database, one killed mid-run, drained.

Every session ends exactly like an uninterrupted run; its steps are contiguous, each committed
once; the epochs recorded along a history never go backwards (no fenced-out worker committed).
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import psycopg
import pytest
import queue_flows
from queue_procs import raw, start_worker, stop_all, workers

from weavegraph.checkpoint.postgres import PostgresCheckpointer
from weavegraph.queue import QueueClient
from weavegraph.status import RunStatus

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


async def statuses(client: QueueClient, sids: list[str]) -> list[RunStatus | None]:
    return [(await client.status(sid)).status for sid in sids]


async def wait_for(
    client: QueueClient, sids: list[str], status: RunStatus, within_s: float
) -> None:
    async with asyncio.timeout(within_s):
        while True:
            if all(s is status for s in await statuses(client, sids)):
                return
            await asyncio.sleep(0.1)


def epochs(postgres_url: str, schema: str, sid: str) -> list[int]:
    with psycopg.connect(postgres_url) as conn:
        rows = conn.execute(
            raw(f'SELECT epoch FROM "{schema}".steps WHERE session_id = %s ORDER BY step'), (sid,)
        ).fetchall()
    return [int(epoch) for (epoch,) in rows]


async def check_like_plain_runs(
    client: QueueClient, sids: list[str], postgres_url: str, schema: str
) -> None:
    app = queue_flows.build_app()
    cp = client.checkpointer
    for sid in sids:
        expected = await app.invoke(f"input {sid}")
        latest = await cp.load_latest(sid)
        assert latest is not None
        assert latest.state.to_json_value() | {"versions": None} == expected.to_json_value() | {
            "versions": None
        }
        assert [info.step for info in await cp.history(sid)] == list(range(latest.step + 1))
        found = epochs(postgres_url, schema, sid)
        assert found == sorted(found), f"{sid}: epochs went backwards along its history: {found}"


async def test_a_killed_worker_s_sessions_are_taken_over_and_complete(
    client: QueueClient, queue_url: str, postgres_url: str, postgres_schema: str, tmp_path: Path
) -> None:
    env = {"WG_TEST_SLEEP_MS": "100"}
    sids = [f"k{n}" for n in range(24)]
    for sid in sids:
        await client.enqueue(sid, f"input {sid}")
    with workers(queue_url, 3, lease=1.5, args=["--concurrency", "4"], env=env,
                 log=tmp_path / "workers.log") as procs:  # fmt: skip
        cp = client.checkpointer
        async with asyncio.timeout(30):  # the first worker is mid-run
            while True:
                owners = {(await client.status(sid)).worker for sid in sids} - {None}
                if owners:
                    break
                await asyncio.sleep(0.05)
        victim = next(p for p in procs if any(o.endswith(f":{p.pid}") for o in owners if o))
        os.kill(victim.pid, signal.SIGKILL)
        await wait_for(client, sids, RunStatus.COMPLETED, 90)
        assert all(p.poll() is None for p in procs if p is not victim)
    took_over = [sid for sid in sids if (await client.status(sid)).epoch > 1]
    assert took_over, "no session was running on the killed worker"
    await check_like_plain_runs(client, sids, postgres_url, postgres_schema)
    assert cp is client.checkpointer


async def test_eight_workers_starting_at_once_on_an_empty_database(
    client: QueueClient, postgres_url: str, tmp_path: Path
) -> None:
    schema = f"{client.checkpointer.schema}_fresh"
    separator = "&" if "?" in postgres_url else "?"
    url = f"{postgres_url}{separator}schema={schema}"
    log = tmp_path / "workers.log"
    try:
        with workers(url, 8, env={"WG_TEST_SLEEP_MS": "10"}, log=log) as procs:
            fresh = await PostgresCheckpointer.connect(url)
            try:
                queue = QueueClient(fresh)
                sids = [f"m{n}" for n in range(16)]
                for sid in sids:
                    await queue.enqueue(sid, f"input {sid}")
                await wait_for(queue, sids, RunStatus.COMPLETED, 60)
            finally:
                await fresh.close()
            assert all(p.poll() is None for p in procs), log.read_text()
        assert "Traceback" not in log.read_text()
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(raw(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))


async def test_sigterm_drains_and_another_worker_finishes(
    client: QueueClient, queue_url: str, tmp_path: Path
) -> None:
    env = {"WG_TEST_ROUNDS": "30", "WG_TEST_SLEEP_MS": "50"}
    log = tmp_path / "worker.log"
    first = start_worker(queue_url, "queue_flows:slow_app", env=env, log=log)
    try:
        await client.enqueue("d", "go")
        await wait_for(client, ["d"], RunStatus.RUNNING, 20)
        await asyncio.sleep(0.5)
        first.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(first.wait, 20) == 0
        status = await client.status("d")
        assert status.status is RunStatus.QUEUED
        assert status.worker is None
        second = start_worker(queue_url, "queue_flows:slow_app", env=env, log=log)
        try:
            await wait_for(client, ["d"], RunStatus.COMPLETED, 30)
        finally:
            stop_all([second])
    finally:
        stop_all([first])
    latest = await client.checkpointer.load_latest("d")
    assert latest is not None
    assert latest.state.extra["n"] == 30
    assert "draining" in log.read_text()
