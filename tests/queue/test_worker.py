"""Workers in this process: queued sessions complete exactly as an uninterrupted run does, each
step committed once under one claim; requests, cancel and answers go through the inbox."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import queue_flows

import weavegraph as wg
from weavegraph.queue import QueueClient, Worker, WorkerOptions
from weavegraph.status import RunStatus

pytestmark = pytest.mark.postgres


async def _until(
    client: QueueClient, sids: list[str], done: set[RunStatus], within_s: float = 60
) -> None:
    async with asyncio.timeout(within_s):
        while True:
            statuses = [(await client.status(sid)).status for sid in sids]
            if all(status in done for status in statuses):
                return
            await asyncio.sleep(0.05)


async def _workers(
    app: wg.App, url: str, count: int, **options: Any
) -> tuple[list[Worker], list[asyncio.Task[None]]]:
    workers = [
        Worker(app, url, WorkerOptions(name=f"w{i}", poll_s=0.2, **options)) for i in range(count)
    ]
    return workers, [asyncio.create_task(worker.run()) for worker in workers]


async def _drain(workers: list[Worker], tasks: list[asyncio.Task[None]]) -> None:
    for worker in workers:
        worker.drain()
    await asyncio.gather(*tasks)


async def test_two_workers_complete_every_session_like_a_plain_run(
    client: QueueClient, queue_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WG_TEST_SLEEP_MS", "20")
    app = queue_flows.build_app()
    sids = [f"s{n}" for n in range(12)]
    for sid in sids:
        await client.enqueue(sid, f"input {sid}" * (int(sid[1:]) + 1))
    workers, tasks = await _workers(app, queue_url, 2, concurrency=3)
    try:
        await _until(client, sids, {RunStatus.COMPLETED})
    finally:
        await _drain(workers, tasks)
    cp = client.checkpointer
    for sid in sids:
        expected = await app.invoke(f"input {sid}" * (int(sid[1:]) + 1))
        latest = await cp.load_latest(sid)
        assert latest is not None
        assert latest.state.to_json_value()["extra"] == expected.to_json_value()["extra"]
        assert [info.step for info in await cp.history(sid)] == list(range(latest.step + 1))
        events = await cp.load_events(sid)
        assert [event["seq"] for event in events] == list(range(len(events)))
        assert events[-1]["message"] == f"session={sid} status=completed step={latest.step}"


async def test_an_idempotency_key_makes_a_repeated_request_a_no_op(client: QueueClient) -> None:
    first = await client.enqueue("k", "hi", idempotency_key="req-1")
    assert await client.enqueue("k", "hi", idempotency_key="req-1") == first
    assert (await client.status("k")).pending_requests == 1
    with pytest.raises(wg.ConfigError, match="already used for session 'k'"):
        await client.enqueue("other", "hi", idempotency_key="req-1")


async def test_the_answer_reaches_a_paused_session_on_any_worker(
    client: QueueClient, queue_url: str
) -> None:
    app = queue_flows.build_ask_app()
    await client.enqueue("ask", "hi")
    workers, tasks = await _workers(app, queue_url, 1)
    try:
        await _until(client, ["ask"], {RunStatus.INTERRUPTED})
    finally:
        await _drain(workers, tasks)
    await client.enqueue("ask", answer="yes")
    workers, tasks = await _workers(app, queue_url, 1)
    try:
        await _until(client, ["ask"], {RunStatus.COMPLETED})
    finally:
        await _drain(workers, tasks)
    latest = await client.checkpointer.load_latest("ask")
    assert latest is not None
    assert latest.state.extra["answer"] == "yes"


async def test_cancel_stops_a_running_session_within_one_step(
    client: QueueClient, queue_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WG_TEST_ROUNDS", "1000")
    monkeypatch.setenv("WG_TEST_SLEEP_MS", "50")
    app = queue_flows.build_slow_app()
    await client.enqueue("c", "go")
    workers, tasks = await _workers(app, queue_url, 1)
    try:
        cp = client.checkpointer
        async with asyncio.timeout(20):
            while (latest := await cp.load_latest("c")) is None or latest.step < 3:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
        await client.cancel("c")
        at_cancel = (await cp.load_latest("c")).step  # type: ignore[union-attr]
        await _until(client, ["c"], {RunStatus.CANCELLED}, within_s=10)
    finally:
        await _drain(workers, tasks)
    final = await cp.load_latest("c")
    assert final is not None
    assert final.step <= at_cancel + 2
    ends = [e for e in await cp.load_events("c") if e["scope"] == "__weavegraph_stream_end__"]
    assert " status=cancelled " in ends[-1]["message"]


async def test_an_update_is_its_own_step_and_the_session_goes_on(
    client: QueueClient, queue_url: str
) -> None:
    app = queue_flows.build_ask_app()
    await client.enqueue("u", "hi")
    await client.update("u", {"extra": {"note": "from the inbox"}})
    with pytest.raises(wg.StateError):
        await client.update("u", {"extra": {"bad": float("nan")}})
    workers, tasks = await _workers(app, queue_url, 1)
    try:
        await _until(client, ["u"], {RunStatus.INTERRUPTED})
    finally:
        await _drain(workers, tasks)
    latest = await client.checkpointer.load_latest("u")
    assert latest is not None
    assert latest.state.extra["note"] == "from the inbox"
    assert (await client.status("u")).pending_requests == 0


async def test_a_running_session_rejects_a_second_start_unless_told_to_queue_it(
    client: QueueClient, queue_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WG_TEST_ROUNDS", "6")
    monkeypatch.setenv("WG_TEST_SLEEP_MS", "50")
    app = queue_flows.build_slow_app()
    await client.enqueue("busy", "go")
    workers, tasks = await _workers(app, queue_url, 1)
    try:
        await _until(client, ["busy"], {RunStatus.RUNNING})
        with pytest.raises(wg.SessionBusy, match="'busy' is already running"):
            await client.enqueue("busy", "again")
        await client.enqueue("busy", "again", multitask="enqueue")
        await _until(client, ["busy"], {RunStatus.COMPLETED})
    finally:
        await _drain(workers, tasks)
    assert (await client.status("busy")).pending_requests == 0
