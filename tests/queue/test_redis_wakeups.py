"""``--redis``: wake-ups through a real Redis, between real processes."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import httpx
import pytest
from queue_procs import HELPERS, workers
from redis_env import redis_test_url
from web_server import collect_events, start_server

import weavegraph as wg
from weavegraph.checkpoint.postgres._notify import session_channel, work_channel
from weavegraph.queue import QueueClient
from weavegraph.queue.redis_wakeups import RedisWakeups


@pytest.fixture
def redis_url() -> str:
    return redis_test_url()


async def test_announcements_reach_subscribers(redis_url: str) -> None:
    channel = f"weavegraph_test_{uuid.uuid4().hex}"
    heard: list[tuple[str, str]] = []
    sender, receiver = await RedisWakeups.connect(redis_url), await RedisWakeups.connect(redis_url)
    try:
        receiver.subscribe([channel], lambda ch, sid: heard.append((ch, sid)))
        async with asyncio.timeout(10):
            while {sid for _, sid in heard} != {"a", "b"}:  # until subscribed, announce again
                await sender.publish(channel, ["a", "b"])
                await asyncio.sleep(0.05)
    finally:
        await sender.close()
        await receiver.close()
    assert {ch for ch, _ in heard} == {channel}


async def test_an_unreachable_redis_is_a_clear_error() -> None:
    with pytest.raises(wg.ConfigError, match=r"cannot reach Redis at redis://127\.0\.0\.1:1/0"):
        await RedisWakeups.connect("redis://127.0.0.1:1/0")
    with pytest.raises(wg.ConfigError, match="invalid Redis URL"):
        await RedisWakeups.connect("http://not-redis")


@pytest.mark.postgres
@pytest.mark.slow
async def test_serve_queue_and_workers_announce_through_redis(
    redis_url: str, client: QueueClient, queue_url: str, tmp_path: Path
) -> None:
    schema = client.checkpointer.schema
    heard: list[tuple[str, str]] = []
    listener = await RedisWakeups.connect(redis_url)
    listener.subscribe(
        [work_channel(schema), session_channel(schema)], lambda ch, sid: heard.append((ch, sid))
    )
    await asyncio.sleep(0.2)  # subscribed before anything is announced
    env = {"PYTHONPATH": str(HELPERS), "WEAVEGRAPH_POSTGRES_URL": "", "WG_TEST_SLEEP_MS": "20"}
    server = start_server(
        "queue_flows:app", queue_url, cwd=tmp_path, env=env, args=("--queue", "--redis", redis_url)
    )
    try:
        with workers(
            queue_url, 1, env=env, args=["--redis", redis_url], log=tmp_path / "worker.log"
        ), httpx.Client() as http:  # fmt: skip
            started = await asyncio.to_thread(
                http.post, f"{server.url}/api/runs", json={"input": "x", "session_id": "rd"}
            )
            assert started.status_code == 202
            events = await asyncio.to_thread(
                collect_events, http, f"{server.url}/api/runs/rd/events"
            )
    finally:
        server.stop()
        await listener.close()
    assert " status=completed " in events[-1]["message"]
    assert events == await client.checkpointer.load_events("rd")
    assert (work_channel(schema), "rd") in heard  # the server's enqueue
    assert (session_channel(schema), "rd") in heard  # the worker's commits
