"""``POST /api/runs`` on a server that runs sessions itself: the multitask policies one process
supports (reject, enqueue, interrupt; rollback refused) and Idempotency-Key retries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from queue_procs import HELPERS

pytestmark = pytest.mark.slow

END_SCOPE = "__weavegraph_stream_end__"


@pytest.fixture
def slow_server(server_factory: Any, tmp_path: Path) -> Any:
    env = {"PYTHONPATH": str(HELPERS), "WG_TEST_ROUNDS": "15", "WG_TEST_SLEEP_MS": "60"}
    return server_factory("queue_flows:slow_app", tmp_path / "multi.db", cwd=tmp_path, env=env)


def ends_of(sse: Any, client: httpx.Client, server: Any, sid: str) -> list[str]:
    """The statuses of the session's stream ends, reading its events until the server ends."""
    events = sse(client, f"{server.url}/api/runs/{sid}/events?last_event_id=-1")
    return [
        next(p for p in e["message"].split() if p.startswith("status=")).removeprefix("status=")
        for e in events
        if e["scope"] == END_SCOPE
    ]


def test_a_bad_or_unsupported_multitask_is_refused(slow_server: Any) -> None:
    with httpx.Client() as client:
        bad = client.post(f"{slow_server.url}/api/runs", json={"input": "x", "multitask": "soon"})
        assert bad.status_code == 400
        assert "reject, enqueue, interrupt, rollback" in bad.json()["error"]
        rollback = client.post(
            f"{slow_server.url}/api/runs", json={"input": "x", "multitask": "rollback"}
        )
        assert rollback.status_code == 400
        assert "--queue" in rollback.json()["error"]


def test_enqueue_runs_the_request_after_the_current_run(slow_server: Any, sse: Any) -> None:
    with httpx.Client() as client:
        url = f"{slow_server.url}/api/runs"
        assert client.post(url, json={"input": "go", "session_id": "e"}).status_code == 202
        busy = client.post(url, json={"session_id": "e"})
        assert busy.status_code == 409
        queued = client.post(url, json={"session_id": "e", "multitask": "enqueue"})
        assert queued.status_code == 202
        assert ends_of(sse, client, slow_server, "e") == ["completed", "completed"]
        state = client.get(f"{slow_server.url}/api/sessions/e").json()["state"]
    assert state["extra"]["n"] == 15


def test_interrupt_stops_the_current_run_at_a_step_then_runs_the_request(
    slow_server: Any, sse: Any
) -> None:
    with httpx.Client() as client:
        url = f"{slow_server.url}/api/runs"
        assert client.post(url, json={"input": "go", "session_id": "i"}).status_code == 202
        with client.stream("GET", f"{url}/i/events", timeout=60) as response:
            for line in response.iter_lines():  # the run is under way
                if '"tick"' in line:
                    break
        interrupting = client.post(url, json={"session_id": "i", "multitask": "interrupt"})
        assert interrupting.status_code == 202
        assert ends_of(sse, client, slow_server, "i") == ["stopped", "completed"]
        state = client.get(f"{slow_server.url}/api/sessions/i").json()["state"]
    assert state["extra"]["n"] == 15


def test_an_idempotency_key_makes_a_retry_answer_like_the_first(slow_server: Any) -> None:
    with httpx.Client() as client:
        url = f"{slow_server.url}/api/runs"
        key = {"Idempotency-Key": "retry-1"}
        first = client.post(url, json={"input": "go"}, headers=key)
        second = client.post(url, json={"input": "go"}, headers=key)
        assert first.status_code == second.status_code == 202
        assert second.json() == first.json()
        other = client.post(url, json={"input": "go", "session_id": "another"}, headers=key)
        assert other.status_code == 400
        assert "retry-1" in other.json()["error"]
        empty = client.post(url, json={"input": "go"}, headers={"Idempotency-Key": "x" * 300})
        assert empty.status_code == 400
        listed = client.get(f"{slow_server.url}/api/sessions").json()["sessions"]
    assert [s["session_id"] for s in listed] == [first.json()["session_id"]]
