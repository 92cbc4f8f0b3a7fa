"""The web server as users run it: a real uvicorn subprocess on a loopback port, driven by httpx."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.slow

END_SCOPE = "__weavegraph_stream_end__"


def _start(client: httpx.Client, server: Any, body: dict[str, Any]) -> str:
    response = client.post(f"{server.url}/api/runs", json=body, headers=server.headers())
    assert response.status_code == 202, response.text
    return response.json()["session_id"]


def test_run_streams_every_event_then_ends(demo_server: Any, sse: Any) -> None:
    with httpx.Client() as client:
        session_id = _start(client, demo_server, {"input": "why supersteps?"})
        events = sse(client, f"{demo_server.url}/api/runs/{session_id}/events")
    seqs = [event["seq"] for event in events]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    assert events[-1]["scope"] == END_SCOPE
    assert re.search(r"status=completed", events[-1]["message"])
    assert sum(event["scope"] == END_SCOPE for event in events) == 1
    kinds = {event["type"] for event in events}
    assert {"node", "llm", "diagnostic"} <= kinds
    assert {event["session_id"] for event in events} == {session_id}
    assert any(event["type"] == "llm" and event["scope"] == "final" for event in events)


def test_concurrent_runs_never_share_events(demo_server: Any, sse: Any) -> None:
    with httpx.Client() as client:
        ids = [_start(client, demo_server, {"input": f"run {n}"}) for n in range(3)]
        streams = [sse(client, f"{demo_server.url}/api/runs/{sid}/events") for sid in ids]
    for session_id, events in zip(ids, streams, strict=True):
        assert {event["session_id"] for event in events} == {session_id}
        assert events[-1]["scope"] == END_SCOPE


def test_a_running_session_cannot_be_started_twice(
    server_factory: Any, tmp_path: Path, sse: Any
) -> None:
    (tmp_path / "slow_demo.py").write_text(SLOW_DEMO)
    server = server_factory("slow_demo:app", tmp_path / "busy.db", cwd=tmp_path)
    with httpx.Client() as client:
        session_id = _start(client, server, {"input": "busy", "session_id": "busy-1"})
        again = client.post(f"{server.url}/api/runs", json={"input": "x", "session_id": session_id})
        assert again.status_code == 409
        assert again.json()["code"] == "weavegraph::web::busy"
        assert (
            "status=completed"
            in sse(client, f"{server.url}/api/runs/{session_id}/events")[-1]["message"]
        )


def test_last_event_id_resumes_after_the_run_finished(demo_server: Any, sse: Any) -> None:
    with httpx.Client() as client:
        session_id = _start(client, demo_server, {"input": "resume me"})
        url = f"{demo_server.url}/api/runs/{session_id}/events"
        everything = sse(client, url)
        middle = everything[len(everything) // 2]["seq"]
        rest = sse(client, url, {"Last-Event-ID": str(middle)})
    assert [e["seq"] for e in rest] == [e["seq"] for e in everything if e["seq"] > middle]
    assert rest[-1]["scope"] == END_SCOPE


def test_sessions_state_history_and_graph(demo_server: Any, sse: Any) -> None:
    with httpx.Client() as client:
        session_id = _start(client, demo_server, {"input": "inspect me", "session_id": "inspect-1"})
        assert session_id == "inspect-1"
        sse(client, f"{demo_server.url}/api/runs/{session_id}/events")
        listed = client.get(f"{demo_server.url}/api/sessions").json()["sessions"]
        assert "inspect-1" in {info["session_id"] for info in listed}
        detail = client.get(f"{demo_server.url}/api/sessions/inspect-1").json()
        assert detail["state"]["messages"][-1]["role"] == "assistant"
        assert detail["state"]["extra"]["published"] is True
        assert detail["frontier"] == []
        steps = [entry["step"] for entry in detail["history"]]
        assert steps == sorted(steps)
        assert steps[-1] == detail["step"]
        mermaid = client.get(f"{demo_server.url}/api/graph")
        assert mermaid.text.startswith("flowchart")
        graph = client.get(f"{demo_server.url}/api/graph", params={"format": "json"}).json()
        assert {"source": "review", "target": "draft", "kind": "conditional"} in graph["edges"]


def test_run_from_a_state_document(demo_server: Any, sse: Any) -> None:
    state = {"messages": [{"role": "user", "content": "from state"}], "extra": {"origin": "api"}}
    with httpx.Client() as client:
        session_id = _start(client, demo_server, {"state": state})
        events = sse(client, f"{demo_server.url}/api/runs/{session_id}/events")
        assert "status=completed" in events[-1]["message"]
        detail = client.get(f"{demo_server.url}/api/sessions/{session_id}").json()
    assert detail["state"]["extra"]["origin"] == "api"
    assert detail["state"]["extra"]["question"] == "from state"


@pytest.mark.parametrize(
    ("content", "status", "fragment"),
    [
        (b"{not json", 400, "malformed JSON"),
        (b"[1, 2]", 400, "JSON object"),
        (b'{"input": 5}', 400, '"input" must be a string'),
        (b'{"input": "x", "state": {}}', 400, "not both"),
        (b'{"state": {"messages": 3}}', 400, "invalid"),
        (b'{"input": "x", "session_id": "../etc/passwd"}', 400, "invalid session id"),
        (b'{"session_id": "never-seen"}', 400, "needs"),
        (b'{"inputt": "x"}', 400, "unknown key(s) ['inputt']"),
        (b'{"input": "x", "extra": {"k": 1}}', 400, "unknown key(s) ['extra']"),
        (b'{"input": "' + b"x" * 1_100_000 + b'"}', 413, "larger than"),
        (b'{"state": {"extra": {"a": ' + b"[" * 600 + b"]" * 600 + b"}}}", 400, "nested more"),
        (b'{"state": {"extra": {"a": ' + b"[" * 1000 + b"]" * 1000 + b"}}}", 400, "nested more"),
        (b'{"state": {"extra": {"a": 18446744073709551615}}}', 400, "64-bit range"),
        (b'{"session_id": "s", "answer": ' + b"[" * 600 + b"]" * 600 + b"}", 400, "answer"),
    ],
)
def test_bad_requests_get_json_errors(
    demo_server: Any, content: bytes, status: int, fragment: str
) -> None:
    response = httpx.post(
        f"{demo_server.url}/api/runs",
        content=content,
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == status
    body = response.json()
    assert fragment in body["error"]
    assert "Traceback" not in response.text


def test_unknown_session_is_404(demo_server: Any) -> None:
    for path in ("/api/runs/nobody/events", "/api/sessions/nobody"):
        response = httpx.get(f"{demo_server.url}{path}")
        assert response.status_code == 404
        assert response.json()["code"] == "weavegraph::web::not_found"


def test_page_and_health(demo_server: Any) -> None:
    page = httpx.get(f"{demo_server.url}/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert 'id="start"' in page.text
    assert '<script type="module" src="static/app.js">' in page.text
    # Every script the page loads comes from this server; none reaches for a CDN.
    for name in ("app.js", "js/api.js", "js/view.js", "js/graph.js", "js/events.js"):
        script = httpx.get(f"{demo_server.url}/static/{name}")
        assert script.status_code == 200, name
        assert "http" not in re.sub(r"http://www\.w3\.org/2000/svg", "", script.text), name
    assert httpx.get(f"{demo_server.url}/healthz").json() == {"status": "ok"}


def test_api_token(server_factory: Any, tmp_path: Path, sse: Any) -> None:
    env = {"WEAVEGRAPH_API_TOKEN": "s3cret"}
    server = server_factory("weavegraph.demo:demo_app", tmp_path / "auth.db", cwd=tmp_path, env=env)
    with httpx.Client() as client:
        denied = client.post(f"{server.url}/api/runs", json={"input": "x"})
        assert denied.status_code == 401
        assert denied.json()["code"] == "weavegraph::web::unauthorized"
        wrong = client.get(f"{server.url}/api/sessions", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        session_id = _start(client, server, {"input": "x"})
        events = sse(client, f"{server.url}/api/runs/{session_id}/events?token=s3cret")
        assert events[-1]["scope"] == END_SCOPE
        # ?token= is only for the events route, which EventSource cannot add headers to.
        assert client.get(f"{server.url}/api/sessions?token=s3cret").status_code == 401
        assert client.get(f"{server.url}/healthz").status_code == 200
        assert client.get(f"{server.url}/").status_code == 200


SLOW_DEMO = "from weavegraph.demo import demo_app\napp = demo_app(token_delay=0.02)\n"


def test_sigterm_stops_runs_at_a_step_boundary_and_they_resume(
    server_factory: Any, tmp_path: Path, sse: Any, sse_reader: Any
) -> None:
    (tmp_path / "slow_demo.py").write_text(SLOW_DEMO)
    db = tmp_path / "graceful.db"
    server = server_factory("slow_demo:app", db, cwd=tmp_path)
    events: list[dict[str, Any]] = []
    with httpx.Client() as client:
        session_id = _start(client, server, {"input": "stop me"})
        url = f"{server.url}/api/runs/{session_id}/events"
        with client.stream("GET", url, timeout=60) as response:
            for message in sse_reader(response):
                events.append(message.json())
                if events[-1]["type"] == "llm" and server.process.poll() is None:
                    server.process.send_signal(signal.SIGTERM)  # mid-step: the model is streaming
    assert events[-1]["scope"] == END_SCOPE
    assert "status=stopped" in events[-1]["message"]
    # uvicorn re-raises the signal once its graceful shutdown is done.
    assert server.process.wait(timeout=60) in (0, -signal.SIGTERM)
    assert "Traceback" not in server.log.read_text()

    restarted = server_factory("weavegraph.demo:demo_app", db, cwd=tmp_path)
    with httpx.Client() as client:
        detail = client.get(f"{restarted.url}/api/sessions/{session_id}").json()
        assert detail["frontier"]  # checkpointed at a step boundary, not finished
        # The stored log replays the interrupted run's stream after a restart.
        replay = sse(client, f"{restarted.url}/api/runs/{session_id}/events")
        assert replay == events
        assert _start(client, restarted, {"session_id": session_id}) == session_id
        rest = sse(
            client,
            f"{restarted.url}/api/runs/{session_id}/events",
            {"Last-Event-ID": str(events[-1]["seq"])},
        )
    assert rest[0]["seq"] == events[-1]["seq"] + 1
    assert "status=completed" in rest[-1]["message"]


ASKING = """
import weavegraph as wg

async def ask(snapshot, ctx):
    return wg.NodePartial(extra={"answer": ctx.interrupt({"question": "ship it?"})})

builder = wg.GraphBuilder()
builder.add_node("ask", ask)
builder.add_edge(wg.START, "ask")
builder.add_edge("ask", wg.END)
app = builder.compile()
"""


def test_a_waiting_session_is_answered_over_http(
    server_factory: Any, tmp_path: Path, sse: Any
) -> None:
    (tmp_path / "asking.py").write_text(ASKING)
    server = server_factory("asking:app", tmp_path / "ask.db", cwd=tmp_path)
    with httpx.Client() as client:
        early = client.post(f"{server.url}/api/runs", json={"session_id": "q", "answer": 1})
        assert early.status_code == 404
        _start(client, server, {"input": "go", "session_id": "q"})
        events = sse(client, f"{server.url}/api/runs/q/events")
        assert "status=interrupted" in events[-1]["message"]
        waiting = client.get(f"{server.url}/api/sessions/q").json()
        assert waiting["interrupt"]["value"] == {"question": "ship it?"}
        mixed = client.post(f"{server.url}/api/runs", json={"input": "x", "answer": 1})
        assert mixed.status_code == 400
        _start(client, server, {"session_id": "q", "answer": {"ok": True}})
        events = sse(client, f"{server.url}/api/runs/q/events", {"Last-Event-ID": "-1"})
        assert "status=completed" in events[-1]["message"]
        done = client.get(f"{server.url}/api/sessions/q").json()
        assert done["state"]["extra"]["answer"] == {"ok": True}
        assert done["interrupt"] is None
        again = client.post(f"{server.url}/api/runs", json={"session_id": "q", "answer": 2})
        assert again.status_code == 409
        assert again.json()["code"] == "weavegraph::web::not_waiting"


@pytest.mark.parametrize("last", ["abc", "99999999999999999999999", "-2", "1.5"])
def test_a_bad_last_event_id_is_a_400(demo_server: Any, sse: Any, last: str) -> None:
    with httpx.Client() as client:
        session_id = _start(client, demo_server, {"input": "ids"})
        sse(client, f"{demo_server.url}/api/runs/{session_id}/events")  # let it finish
        response = client.get(
            f"{demo_server.url}/api/runs/{session_id}/events", headers={"Last-Event-ID": last}
        )
    assert response.status_code == 400
    assert "Last-Event-ID" in response.json()["error"]


def test_a_session_of_another_graph_is_a_409(server_factory: Any, tmp_path: Path) -> None:
    (tmp_path / "asking.py").write_text(ASKING)
    db = tmp_path / "mixed.db"
    weavegraph = str(Path(sys.executable).with_name("weavegraph"))
    subprocess.run(
        [
            weavegraph,
            "run",
            "weavegraph.demo:demo_app",
            "--input",
            "q",
            "--session",
            "demo1",
            "--interrupt-before",
            "collect",
            "--events",
            "none",
            "--db",
            f"sqlite://{db}",
        ],
        cwd=tmp_path,
        check=True,
        capture_output=True,
        timeout=120,
    )
    server = server_factory("asking:app", db, cwd=tmp_path)
    response = httpx.post(f"{server.url}/api/runs", json={"session_id": "demo1"})
    assert response.status_code == 409
    assert response.json()["code"] == "weavegraph::web::other_graph"
    assert "'collect'" in response.json()["error"]
