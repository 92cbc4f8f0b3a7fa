"""``weavegraph sessions retry`` on a session the workers run: it goes back to their queue."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest
from queue_procs import raw

from weavegraph.queue import QueueClient
from weavegraph.status import RunStatus

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def retry(url: str, session: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "weavegraph.cli", "sessions", "retry", session,
         "queue_flows:app", "--db", url],
        capture_output=True, text=True, check=False, timeout=60,
        env={"PYTHONPATH": "tests/helpers", "PATH": "/usr/bin:/bin"},
    )  # fmt: skip


async def test_retry_requeues_a_cancelled_session_and_refuses_a_queued_one(
    client: QueueClient, queue_url: str
) -> None:
    await client.enqueue("r", "hi")
    await client.cancel("r")
    refused = await asyncio.to_thread(retry, queue_url, "r")
    assert refused.returncode == 1
    assert "is queued in the work queue: nothing to retry" in refused.stderr
    cp = client.checkpointer
    await cp.execute(  # what a worker does after --max-attempts
        lambda conn: conn.execute(
            raw(f"UPDATE \"{cp.schema}\".sessions SET run_status = 'dead' WHERE id = 'r'")
        )
    )
    done = await asyncio.to_thread(retry, queue_url, "r")
    assert done.returncode == 0, done.stderr
    assert "queued again" in done.stdout
    assert (await client.status("r")).status is RunStatus.QUEUED
