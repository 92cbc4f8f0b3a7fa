"""Every run on PostgreSQL claims its session, not only a worker's: two real processes never
drive one session at once, and a run killed mid-step is taken over once its lease expires.

The run under test is an ``AppRunner`` in its own process (``claim_runner.py``) or the
``weavegraph run`` command; the other side is this test process or a ``weavegraph worker``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
import queue_flows
from queue_procs import HELPERS, raw, start_worker, stop_all

import weavegraph as wg
from weavegraph.events.model import ATTEMPT_RESTARTED_SCOPE, STREAM_END_SCOPE
from weavegraph.queue import QueueClient
from weavegraph.status import RunStatus

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

SLOW = {"WG_TEST_ROUNDS": "30", "WG_TEST_SLEEP_MS": "60"}


def _env(extra: dict[str, str]) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(HELPERS), os.environ.get("PYTHONPATH", "")]),
        "WEAVEGRAPH_POSTGRES_URL": "",
        **extra,
    }


@contextmanager
def in_process_run(url: str, sid: str, lease_s: float) -> Iterator[subprocess.Popen[str]]:
    """``claim_runner.py``: an AppRunner driving ``sid`` of the slow app in its own process."""
    proc = subprocess.Popen(
        [sys.executable, str(HELPERS / "claim_runner.py"), url, sid, str(lease_s)],
        env=_env(SLOW), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)


async def wait_line(proc: subprocess.Popen[str], wanted: str) -> None:
    """Read the process's output until a line starts with ``wanted``."""
    assert proc.stdout is not None
    async with asyncio.timeout(60):
        while True:
            line = await asyncio.to_thread(proc.stdout.readline)
            assert line, f"the run ended before printing {wanted!r}"
            if line.startswith(wanted):
                return


async def wait_status(client: QueueClient, sid: str, status: RunStatus, within_s: float) -> None:
    async with asyncio.timeout(within_s):
        while True:
            if (await client.status(sid)).status is status:
                return
            await asyncio.sleep(0.05)


def holder_of(proc: subprocess.Popen[str]) -> str:
    """The part of a claim holder's name that says which process it is."""
    return f":{proc.pid} "


def step_epochs(url: str, schema: str, sid: str) -> list[int | None]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            raw(f'SELECT epoch FROM "{schema}".steps WHERE session_id = %s ORDER BY step'), (sid,)
        ).fetchall()
    return [None if epoch is None else int(epoch) for (epoch,) in rows]


async def check_one_clean_history(client: QueueClient, sid: str, rounds: int) -> None:
    """The run ended as an uninterrupted one: every step once, events contiguous, one end."""
    cp = client.checkpointer
    latest = await cp.load_latest(sid)
    assert latest is not None
    assert latest.state.extra["n"] == rounds
    assert [info.step for info in await cp.history(sid)] == list(range(latest.step + 1))
    events = await cp.load_events(sid)
    assert [event["seq"] for event in events] == list(range(len(events)))
    ends = [event for event in events if event["scope"] == STREAM_END_SCOPE]
    assert ends == [events[-1]], ends
    assert "status=completed" in ends[0]["message"]


async def test_a_second_process_gets_session_busy_naming_the_holder(
    client: QueueClient, queue_url: str, postgres_url: str, postgres_schema: str
) -> None:
    app = queue_flows.build_slow_app()
    with in_process_run(queue_url, "busy", lease_s=5) as proc:
        await wait_line(proc, "step 1")
        status = await client.status("busy")
        assert status.status is RunStatus.RUNNING
        assert status.worker is not None
        assert holder_of(proc) in status.worker
        async with wg.AppRunner(app, client.checkpointer) as runner:
            with pytest.raises(wg.SessionBusy) as refused:
                await runner.drive("busy")
            message = str(refused.value)
            assert "session 'busy' is already running (claimed by " in message
            assert holder_of(proc) in message
            assert "claim_runner.py" in message
            # A write outside a run is refused too (nothing is written).
            with pytest.raises(wg.SessionBusy):
                await runner.update_state("busy", wg.NodePartial(extra={"meddled": True}))
        await wait_line(proc, "done completed")
        assert await asyncio.to_thread(proc.wait, 30) == 0
    status = await client.status("busy")
    assert status.status is RunStatus.COMPLETED
    assert status.worker is None
    await check_one_clean_history(client, "busy", 30)
    epochs = step_epochs(postgres_url, postgres_schema, "busy")
    assert set(epochs[1:]) == {1}, epochs  # every step committed under the one claim


async def test_a_run_killed_mid_step_is_taken_over_by_a_worker(
    client: QueueClient, queue_url: str, postgres_url: str, postgres_schema: str, tmp_path: Path
) -> None:
    with in_process_run(queue_url, "orphan", lease_s=1.5) as proc:
        await wait_line(proc, "step 3")
        os.kill(proc.pid, signal.SIGKILL)
        holder = holder_of(proc)
    log = tmp_path / "worker.log"
    worker = start_worker(queue_url, "queue_flows:slow_app", lease=2, env=SLOW, log=log)
    try:
        await wait_status(client, "orphan", RunStatus.COMPLETED, 60)
    finally:
        stop_all([worker])
    await check_one_clean_history(client, "orphan", 30)
    events = await client.checkpointer.load_events("orphan")
    restarted = [event for event in events if event["scope"] == ATTEMPT_RESTARTED_SCOPE]
    assert len(restarted) == 1, restarted
    assert holder in restarted[0]["metadata"]["previous_holder"]
    assert restarted[0]["type"] == "diagnostic"
    epochs = [e for e in step_epochs(postgres_url, postgres_schema, "orphan") if e is not None]
    assert epochs == sorted(epochs), epochs
    assert epochs[-1] == 2, epochs  # the worker's claim took over the killed run's (epoch 1)


async def test_an_in_process_run_takes_over_a_killed_one_once_its_lease_expires(
    client: QueueClient, queue_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with in_process_run(queue_url, "again", lease_s=1.5) as proc:
        await wait_line(proc, "step 2")
        os.kill(proc.pid, signal.SIGKILL)
    for name, value in SLOW.items():
        monkeypatch.setenv(name, value)
    app = queue_flows.build_slow_app()
    refused = 0
    async with wg.AppRunner(app, client.checkpointer) as runner:
        async with asyncio.timeout(60):
            while True:
                try:
                    result = await runner.drive("again")
                    break
                except wg.SessionBusy:  # until the killed run's lease expires
                    refused += 1
                    await asyncio.sleep(0.2)
    assert result.status is RunStatus.COMPLETED
    await check_one_clean_history(client, "again", 30)
    events = await client.checkpointer.load_events("again")
    assert [e["scope"] for e in events].count(ATTEMPT_RESTARTED_SCOPE) == 1
    assert (await client.status("again")).status is RunStatus.COMPLETED


async def test_the_cli_run_of_a_session_a_worker_holds_fails_clearly(
    client: QueueClient, queue_url: str, tmp_path: Path
) -> None:
    await client.enqueue("held", "go")
    log = tmp_path / "worker.log"
    # Long enough (300 x 60 ms) that the session is still running once the CLI has started,
    # however slowly a loaded machine starts a Python process.
    held = {**SLOW, "WG_TEST_ROUNDS": "300"}
    worker = start_worker(queue_url, "queue_flows:slow_app", lease=5, env=held, log=log)
    try:
        await wait_status(client, "held", RunStatus.RUNNING, 30)
        command = [sys.executable, "-m", "weavegraph.cli", "run", "queue_flows:slow_app",
                   "--db", queue_url, "--session", "held", "--events", "none"]  # fmt: skip
        done = await asyncio.to_thread(
            subprocess.run, command, env=_env(held), capture_output=True, text=True, timeout=60
        )
        assert done.returncode != 0
        assert "session 'held' is already running (claimed by " in done.stderr, done.stderr
        assert f":{worker.pid}" in done.stderr
        assert "Traceback" not in done.stderr
    finally:
        stop_all([worker])
