"""The studio's HTTP API against a real ``weavegraph serve``: session status, steps, actions."""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from web_server import WEAVEGRAPH, Server, collect_events, free_port, start_server

pytestmark = pytest.mark.slow


def test_the_favicon_is_served(demo_server: Any) -> None:
    for path in ("/favicon.ico", "/static/favicon.svg"):
        response = httpx.get(demo_server.url + path)
        assert response.status_code == 200, path
        assert response.headers["content-type"].startswith("image/svg+xml")
        assert response.text.startswith("<svg")


# --- the studio's actions, on the graph of the browser tests -----------------------------------

HELPERS = Path(__file__).resolve().parents[1] / "helpers"


@pytest.fixture(scope="module")
def studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("studio-api")
    server = start_server(
        "studio_graph:app",
        folder / "studio.db",
        cwd=folder,
        env={"PYTHONPATH": str(HELPERS), "WEAVEGRAPH_API_TOKEN": "t0ken"},
    )
    try:
        yield server
    finally:
        server.stop()


def _post(server: Server, path: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(server.url + path, json=body, headers=server.headers())


def _get(server: Server, path: str) -> httpx.Response:
    return httpx.get(server.url + path, headers=server.headers())


def _start(server: Server, text: str, session_id: str) -> None:
    answer = _post(server, "/api/runs", {"input": text, "session_id": session_id})
    assert answer.status_code == 202, answer.text


def _wait(server: Server, session_id: str, until: Callable[[dict[str, Any]], bool]) -> Any:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        response = _get(server, f"/api/sessions/{session_id}")
        if response.status_code == 200 and until(response.json()):
            return response.json()
        time.sleep(0.05)
    raise AssertionError(f"session {session_id} never got there")


def _events(server: Server, session_id: str) -> list[dict[str, Any]]:
    with httpx.Client() as client:
        return collect_events(
            client, f"{server.url}/api/runs/{session_id}/events", {**server.headers(),
            "Last-Event-ID": "-1"},
        )  # fmt: skip


def test_cancel_stops_a_long_run_and_the_session_says_cancelled(studio: Server) -> None:
    _start(studio, "slow and long", "to-cancel")
    _wait(studio, "to-cancel", lambda s: s["step"] >= 3)
    cancelled = _post(studio, "/api/runs/to-cancel/cancel", {})
    assert cancelled.status_code == 202
    assert cancelled.json() == {"session_id": "to-cancel", "cancelled": True}
    detail = _wait(studio, "to-cancel", lambda s: s["status"] != "running")
    assert detail["status"] == "cancelled"
    assert "status=cancelled" in _events(studio, "to-cancel")[-1]["message"]
    listed = _get(studio, "/api/sessions").json()["sessions"]
    assert {s["session_id"]: s["status"] for s in listed}["to-cancel"] == "cancelled"
    idle = _post(studio, "/api/runs/to-cancel/cancel", {})
    assert (idle.status_code, idle.json()["code"]) == (409, "weavegraph::web::idle")
    assert _post(studio, "/api/runs/nobody/cancel", {}).status_code == 404
    # Running it again continues from its last checkpoint.
    step = detail["step"]
    assert _post(studio, "/api/runs", {"session_id": "to-cancel"}).status_code == 202
    _wait(studio, "to-cancel", lambda s: s["step"] > step)
    assert _post(studio, "/api/runs/to-cancel/cancel", {}).status_code == 202
    _wait(studio, "to-cancel", lambda s: s["status"] == "cancelled")
    log = studio.log.read_text()
    assert "run to-cancel started (new state)" in log
    assert "run to-cancel started (continuing the stored session)" in log
    assert re.search(r"run to-cancel ended: cancelled at step \d+ in [0-9.]+ s", log)
    assert '"POST /api/runs/to-cancel/cancel HTTP/1.1" 202' in log


def test_resume_answers_with_an_edit_first_or_jumps(studio: Server) -> None:
    _start(studio, "ask with an edit", "answered")
    _wait(studio, "answered", lambda s: s["status"] == "interrupted")
    for body, code in (
        ({}, 400),
        ({"value": 1, "goto": ["nowhere"]}, 400),
        ({"value": 1, "update": {"extras": {}}}, 400),
        ({"value": 1, "typo": True}, 400),
    ):
        refused = _post(studio, "/api/sessions/answered/resume", body)
        assert refused.status_code == code, (body, refused.text)
    resumed = _post(
        studio, "/api/sessions/answered/resume", {"value": "yes", "update": {"extra": {"by": "me"}}}
    )
    assert resumed.status_code == 202
    done = _wait(studio, "answered", lambda s: s["status"] == "completed")
    assert done["state"]["extra"]["answer"] == "yes"
    assert done["state"]["extra"]["by"] == "me"
    again = _post(studio, "/api/sessions/answered/resume", {"value": "twice"})
    assert (again.status_code, again.json()["code"]) == (409, "weavegraph::web::not_waiting")

    _start(studio, "ask and jump", "jumped")
    _wait(studio, "jumped", lambda s: s["status"] == "interrupted")
    jump = _post(studio, "/api/sessions/jumped/resume", {"value": None, "goto": ["finish"]})
    assert jump.status_code == 202
    jumped = _wait(studio, "jumped", lambda s: s["status"] == "completed")
    assert "answer" not in jumped["state"]["extra"]


def test_steps_fork_and_state_edits(studio: Server) -> None:
    _start(studio, "straight through", "source")
    done = _wait(studio, "source", lambda s: s["status"] == "completed")
    step = _get(studio, "/api/sessions/source/steps/2")
    assert step.status_code == 200
    body = step.json()
    assert {"step", "state", "ran_nodes", "updated_channels", "created_at"} <= set(body)
    assert (body["step"], body["ran_nodes"], body["updated_channels"]) == (2, ["write"], ["extra"])
    assert body["state"]["extra"]["draft"] == "Supersteps keep nodes deterministic."
    for path, code in (
        ("/api/sessions/source/steps/99", "weavegraph::web::no_step"),
        ("/api/sessions/nobody/steps/1", "weavegraph::web::not_found"),
        ("/api/sessions/source/steps/99999999999999999999", "weavegraph::web::no_step"),
    ):
        missing = _get(studio, path)
        assert (missing.status_code, missing.json()["code"]) == (404, code), path

    for bad, status in (({"step": "2"}, 400), ({"step": -1}, 400), ({"step": 99}, 404)):
        assert _post(studio, "/api/sessions/source/fork", bad).status_code == status, bad
    forked = _post(studio, "/api/sessions/source/fork", {"step": 2, "new_id": "forked"})
    assert forked.status_code == 201
    assert forked.json() == {"session_id": "forked", "forked_from": "source", "step": 2}
    exists = _post(studio, "/api/sessions/source/fork", {"step": 2, "new_id": "forked"})
    assert (exists.status_code, exists.json()["code"]) == (409, "weavegraph::web::exists")
    fork = _get(studio, "/api/sessions/forked").json()
    assert [h["step"] for h in fork["history"]] == [0, 1, 2]
    assert (fork["status"], fork["frontier"]) == ("stopped", ["finish"])
    assert _post(studio, "/api/runs", {"session_id": "forked"}).status_code == 202
    ran = _wait(studio, "forked", lambda s: s["status"] == "completed")
    assert ran["state"]["messages"] == done["state"]["messages"]

    assert _post(studio, "/api/sessions/source/state", {}).status_code == 400
    assert _post(studio, "/api/sessions/source/state", {"extras": {}}).status_code == 400
    assert _post(studio, "/api/sessions/nobody/state", {"extra": {"a": 1}}).status_code == 404
    edited = _post(studio, "/api/sessions/source/state", {"extra": {"note": "<b>hi</b>"}})
    assert edited.status_code == 200
    assert edited.json() == {
        "session_id": "source",
        "step": done["step"] + 1,
        "updated_channels": ["extra"],
    }
    assert _get(studio, "/api/sessions/source").json()["state"]["extra"]["note"] == "<b>hi</b>"


def test_editing_a_running_session_is_refused(studio: Server) -> None:
    _start(studio, "slow again", "busy")
    _wait(studio, "busy", lambda s: s["status"] == "running")
    for path, body in (
        ("/api/sessions/busy/state", {"extra": {"a": 1}}),
        ("/api/sessions/busy/resume", {"value": 1}),
    ):
        refused = _post(studio, path, body)
        assert (refused.status_code, refused.json()["code"]) == (409, "weavegraph::web::busy")
    assert _post(studio, "/api/runs/busy/cancel", {}).status_code == 202
    _wait(studio, "busy", lambda s: s["status"] == "cancelled")


def test_the_terminal_shows_each_request_and_hides_the_token(studio: Server) -> None:
    assert httpx.get(f"{studio.url}/api/sessions?token=t0ken").status_code == 401
    assert _get(studio, "/healthz").status_code == 200
    log = studio.log.read_text()
    assert '"GET /api/sessions?token=[redacted] HTTP/1.1" 401' in log
    assert '"GET /healthz HTTP/1.1" 200' in log
    assert "t0ken" not in log


def test_the_command_line_cancels_a_run_on_the_server(studio: Server, tmp_path: Path) -> None:
    _start(studio, "slow, cancelled from a terminal", "cli-cancel")
    _wait(studio, "cli-cancel", lambda s: s["status"] == "running")
    env = {**os.environ, "WEAVEGRAPH_API_TOKEN": "t0ken"}
    argv = [WEAVEGRAPH, "sessions", "cancel", "cli-cancel", "--server", studio.url]

    def cancel(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*argv, *extra], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60,
            check=False,
        )  # fmt: skip

    done = cancel()
    assert done.returncode == 0, done.stderr
    assert f"cancelled the run of cli-cancel on {studio.url}" in done.stdout
    _wait(studio, "cli-cancel", lambda s: s["status"] == "cancelled")
    again = cancel()
    assert again.returncode == 1
    assert "the server answered 409: session 'cli-cancel' has no run in progress" in again.stderr
    wrong_token = cancel("--token", "nope")
    assert wrong_token.returncode == 1
    assert "401" in wrong_token.stderr
    nowhere = subprocess.run(
        [WEAVEGRAPH, "sessions", "cancel", "x", "--server", f"http://127.0.0.1:{free_port()}"],
        capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert nowhere.returncode == 1
    assert "cannot reach the server" in nowhere.stderr
