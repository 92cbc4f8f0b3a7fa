"""``weavegraph serve --queue``: two servers and two workers, real processes, one PostgreSQL schema.

Runs posted to one server are streamed from the other exactly as stored (reconnecting with
Last-Event-ID); answers, cancels and idempotent retries go through the inbox and reach whichever
worker claims the session; the studio's JSON shows the queue's statuses.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from queue_procs import HELPERS, workers
from web_server import Server, read_sse, start_server

from weavegraph.queue import QueueClient

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

END_SCOPE = "__weavegraph_stream_end__"


@pytest.fixture
def servers(queue_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Any]:
    """``servers(target, env=None, args=())``: two ``serve --queue`` processes on the test schema."""
    started: list[Server] = []

    def start(
        target: str, env: dict[str, str] | None = None, args: tuple[str, ...] = ()
    ) -> list[Server]:
        full_env = {"PYTHONPATH": str(HELPERS), "WEAVEGRAPH_POSTGRES_URL": "", **(env or {})}
        for _ in range(2):
            started.append(
                start_server(target, queue_url, cwd=tmp_path, env=full_env, args=("--queue", *args))
            )
        return started[-2:]

    yield start
    for server in started:
        server.stop()


def post(
    client: httpx.Client, server: Server, path: str, body: dict[str, Any], **headers: str
) -> httpx.Response:
    return client.post(f"{server.url}{path}", json=body, headers=headers, timeout=30)


def stream_with_reconnects(
    client: httpx.Client, server: Server, sid: str, every: int
) -> list[dict[str, Any]]:
    """The session's events over SSE, hanging up after ``every`` events and reconnecting with
    Last-Event-ID, until a stream end."""
    got: list[dict[str, Any]] = []
    last: str | None = None
    while True:
        headers = {} if last is None else {"Last-Event-ID": last}
        with client.stream(
            "GET", f"{server.url}/api/runs/{sid}/events", headers=headers, timeout=60
        ) as response:
            assert response.status_code == 200
            for count, message in enumerate(read_sse(response), start=1):
                event = message.json()
                assert message.id == str(event["seq"])
                got.append(event)
                last = message.id
                if event["scope"] == END_SCOPE:
                    return got
                if count == every:
                    break


def listed_statuses(client: httpx.Client, server: Server) -> dict[str, str]:
    sessions = client.get(f"{server.url}/api/sessions", timeout=30).json()["sessions"]
    return {s["session_id"]: s["status"] for s in sessions}


def session_json(client: httpx.Client, server: Server, sid: str) -> dict[str, Any]:
    answer = client.get(f"{server.url}/api/sessions/{sid}", timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json()


def wait_status(
    client: httpx.Client, server: Server, sid: str, wanted: str, within_s: float = 60
) -> dict[str, Any]:
    deadline = time.monotonic() + within_s
    answer = None
    while time.monotonic() < deadline:
        answer = client.get(f"{server.url}/api/sessions/{sid}", timeout=30)
        if answer.status_code == 200 and answer.json()["status"] == wanted:
            return answer.json()
        time.sleep(0.1)
    raise AssertionError(f"session {sid} never became {wanted}: {answer and answer.text}")


async def test_runs_posted_to_one_server_stream_completely_once_from_the_other(
    client: QueueClient, queue_url: str, servers: Any, tmp_path: Path
) -> None:
    env = {"WG_TEST_SLEEP_MS": "60"}
    first, second = servers("queue_flows:app", env)
    sids = [f"s{n}" for n in range(3)]
    with workers(queue_url, 2, env=env, log=tmp_path / "workers.log"), httpx.Client() as http:
        for sid in sids:
            answer = post(http, first, "/api/runs", {"input": f"input {sid}", "session_id": sid})
            assert answer.status_code == 202, answer.text
            assert answer.json()["session_id"] == sid
        streamed = {sid: stream_with_reconnects(http, second, sid, every=5) for sid in sids}
        listed = listed_statuses(http, first)
    for sid in sids:
        stored = await client.checkpointer.load_events(sid)
        assert streamed[sid] == stored  # every stored event, once, in order
        assert " status=completed " in stored[-1]["message"]
        assert listed[sid] == "completed"


async def test_an_answer_posted_to_one_server_resumes_on_any_worker(
    client: QueueClient, queue_url: str, servers: Any, tmp_path: Path
) -> None:
    first, second = servers("queue_flows:ask_app")
    with (
        workers(queue_url, 2, "queue_flows:ask_app", log=tmp_path / "workers.log"),
        httpx.Client() as http,
    ):
        assert (
            post(http, first, "/api/runs", {"input": "hi", "session_id": "ask"}).status_code == 202
        )
        waiting = wait_status(http, second, "ask", "interrupted")
        assert waiting["interrupt"]["value"] == {"question": "approve?"}
        not_yet = post(http, first, "/api/sessions/nope/resume", {"value": 1})
        assert not_yet.status_code == 404
        answered = post(http, second, "/api/sessions/ask/resume", {"value": "yes"})
        assert answered.status_code == 202, answered.text
        done = wait_status(http, first, "ask", "completed")
    assert done["state"]["extra"]["answer"] == "yes"
    assert (await client.status("ask")).pending_requests == 0


async def test_cancel_through_the_other_server_stops_the_run_within_one_step(
    client: QueueClient, queue_url: str, servers: Any, tmp_path: Path
) -> None:
    env = {"WG_TEST_ROUNDS": "1000", "WG_TEST_SLEEP_MS": "50"}
    first, second = servers("queue_flows:slow_app", env)
    with (
        workers(queue_url, 2, "queue_flows:slow_app", env=env, log=tmp_path / "workers.log"),
        httpx.Client() as http,
    ):
        assert post(http, first, "/api/runs", {"input": "go", "session_id": "c"}).status_code == 202
        wait_status(http, second, "c", "running")
        while session_json(http, second, "c")["step"] < 3:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        cancelled = post(http, second, "/api/runs/c/cancel", {})
        at_cancel = session_json(http, first, "c")["step"]
        assert cancelled.status_code == 202, cancelled.text
        wait_status(http, first, "c", "cancelled", within_s=20)
        again = post(http, second, "/api/runs/c/cancel", {})
        assert again.status_code == 409
    final = await client.checkpointer.load_latest("c")
    assert final is not None
    assert final.step <= at_cancel + 2


async def test_idempotency_keys_and_multitask_go_through_the_inbox(
    client: QueueClient, queue_url: str, servers: Any, tmp_path: Path
) -> None:
    env = {"WG_TEST_ROUNDS": "8", "WG_TEST_SLEEP_MS": "100"}
    first, second = servers("queue_flows:slow_app", env)
    with httpx.Client() as http:
        # No worker yet: requests wait in the inbox, and the session shows as queued.
        once = post(http, first, "/api/runs", {"input": "go"}, **{"Idempotency-Key": "k-1"})
        again = post(http, second, "/api/runs", {"input": "go"}, **{"Idempotency-Key": "k-1"})
        assert once.status_code == again.status_code == 202
        assert again.json() == once.json()
        sid = once.json()["session_id"]
        assert (await client.status(sid)).pending_requests == 1
        bad = post(http, first, "/api/runs", {"session_id": sid, "multitask": "later"})
        assert bad.status_code == 400
        assert "reject, enqueue, interrupt, rollback" in bad.json()["error"]
        busy = post(http, first, "/api/runs", {"session_id": sid})
        assert busy.status_code == 409
        assert busy.json()["code"] == "weavegraph::web::busy"
        queued = post(http, second, "/api/runs", {"session_id": sid, "multitask": "enqueue"})
        assert queued.status_code == 202
        assert queued.json()["request_id"] != once.json()["request_id"]
        with workers(queue_url, 2, "queue_flows:slow_app", env=env, log=tmp_path / "workers.log"):
            wait_status(http, second, sid, "completed")
    assert (await client.status(sid)).pending_requests == 0


async def test_rollback_puts_the_session_back_where_the_stopped_run_began(
    client: QueueClient, queue_url: str, servers: Any, tmp_path: Path
) -> None:
    env = {"WG_TEST_ROUNDS": "30", "WG_TEST_SLEEP_MS": "50"}
    first, second = servers("queue_flows:slow_app", env)
    cp = client.checkpointer
    log = tmp_path / "workers.log"
    with workers(queue_url, 2, "queue_flows:slow_app", env=env, log=log), httpx.Client() as http:
        assert post(http, first, "/api/runs", {"input": "go", "session_id": "r"}).status_code == 202
        await until_step(http, second, "r", 3)
        assert post(http, second, "/api/runs/r/cancel", {}).status_code == 202
        began = wait_status(http, first, "r", "cancelled")["step"]
        assert post(http, first, "/api/runs", {"session_id": "r"}).status_code == 202  # run 2
        await until_step(http, second, "r", began + 3)
        rollback = post(http, second, "/api/runs", {"session_id": "r", "multitask": "rollback"})
        assert rollback.status_code == 202, rollback.text
        wait_status(http, first, "r", "completed")
    history = await cp.history("r")
    assert [info.step for info in history] == list(range(len(history)))
    restored = [info.step for info in history if info.step > began + 3 and not info.ran_nodes]
    assert len(restored) == 1, history
    at_start = await cp.load("r", began)
    again = await cp.load("r", restored[0])
    assert at_start is not None
    assert again is not None
    assert again.state.extra == at_start.state.extra
    assert again.frontier == at_start.frontier
    final = await cp.load_latest("r")
    assert final is not None
    assert final.state.extra["n"] == 30
    ends = [e["message"] for e in await cp.load_events("r") if e["scope"] == END_SCOPE]
    assert [m.split()[1] for m in ends] == [
        "status=cancelled",
        "status=cancelled",
        "status=completed",
    ]


async def until_step(http: httpx.Client, server: Server, sid: str, step: int) -> None:
    async with asyncio.timeout(60):
        while step_of(http, server, sid) < step:  # noqa: ASYNC110
            await asyncio.sleep(0.05)


def step_of(client: httpx.Client, server: Server, sid: str) -> int:
    """The session's latest step (-1 while a worker has not started it)."""
    answer = client.get(f"{server.url}/api/sessions/{sid}", timeout=30)
    return int(answer.json()["step"]) if answer.status_code == 200 else -1


async def test_interrupt_stops_the_run_and_the_request_runs_next(
    client: QueueClient, queue_url: str, servers: Any, tmp_path: Path
) -> None:
    env = {"WG_TEST_ROUNDS": "30", "WG_TEST_SLEEP_MS": "50"}
    first, second = servers("queue_flows:slow_app", env)
    cp = client.checkpointer
    log = tmp_path / "workers.log"
    with workers(queue_url, 2, "queue_flows:slow_app", env=env, log=log), httpx.Client() as http:
        assert post(http, first, "/api/runs", {"input": "go", "session_id": "i"}).status_code == 202
        await until_step(http, second, "i", 3)
        body = {"session_id": "i", "multitask": "interrupt"}
        assert post(http, second, "/api/runs", body).status_code == 202
        wait_status(http, first, "i", "completed")
    history = await cp.history("i")
    assert [info.step for info in history] == list(range(len(history)))
    assert all(info.ran_nodes == ("tick",) for info in history[1:])  # nothing rolled back
    final = await cp.load_latest("i")
    assert final is not None
    assert final.state.extra["n"] == 30
    ends = [e["message"].split()[1] for e in await cp.load_events("i") if e["scope"] == END_SCOPE]
    assert ends == ["status=cancelled", "status=completed"]
