"""A server on PostgreSQL hears of steps that other processes commit (``LISTEN``/``NOTIFY``):
its streams are woken at once instead of at their next poll."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any, cast

import pytest
from queue_procs import HELPERS

import weavegraph as wg
from weavegraph.checkpoint.postgres import PostgresCheckpointer
from weavegraph.events import log as event_log
from weavegraph.web._wakeups import Wakeups

POLL_NEVER = 3600.0
"""A poll interval the test never reaches: only a notification can wake the stream."""


@pytest.fixture
def schema_url(postgres_url: str, postgres_schema: str) -> str:
    separator = "&" if "?" in postgres_url else "?"
    return f"{postgres_url}{separator}schema={postgres_schema}"


@pytest.mark.postgres
@pytest.mark.slow
async def test_a_commit_in_another_process_wakes_the_stream(schema_url: str) -> None:
    cp = await PostgresCheckpointer.connect(schema_url)
    wakeups = await Wakeups.start(cp, None)
    try:
        await asyncio.sleep(0.3)  # the LISTEN connection is up
        follower = cast(
            "AsyncGenerator[tuple[dict[str, Any], bool]]",
            event_log.follow(cp, "n", running=lambda: True, poll=POLL_NEVER),
        )
        first = asyncio.ensure_future(anext(follower))
        await asyncio.sleep(0.3)  # the follower read the empty log and waits
        env = {**os.environ, "PYTHONPATH": str(HELPERS), "WEAVEGRAPH_POSTGRES_URL": "",
               "WG_TEST_SLEEP_MS": "10"}  # fmt: skip
        writer = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "weavegraph.cli", "run", "queue_flows:app", "--session", "n",
            "--input", "x", "--db", schema_url, "--events", "none", env=env,
        )  # fmt: skip
        assert await writer.wait() == 0
        async with asyncio.timeout(60):  # without the notification: POLL_NEVER seconds
            event, stored = await first
        assert stored
        assert event["session_id"] == "n"
        await follower.aclose()
    finally:
        await wakeups.close()
        await cp.close()


async def test_redis_wakes_only_servers_on_postgres(tmp_path: Path) -> None:
    cp = await wg.SQLiteCheckpointer.connect(f"sqlite://{tmp_path / 'x.db'}")
    try:
        with pytest.raises(
            wg.ConfigError, match="--redis wakes the streams of a server on Postgre"
        ):
            await Wakeups.start(cp, "redis://127.0.0.1:6379/0")
    finally:
        await cp.close()
