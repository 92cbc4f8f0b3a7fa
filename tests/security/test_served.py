"""Against a real ``weavegraph serve`` (uvicorn): Host and Origin as the server sees them, no
traceback or file path in any answer, and no API token in the access log."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from web_server import collect_events, start_server

from weavegraph.checkpoint.sqlite import SQLiteCheckpointer

pytestmark = pytest.mark.slow

FAILING = """
import weavegraph as wg

async def explode(snapshot, ctx):
    raise RuntimeError("the node broke")

builder = wg.GraphBuilder()
builder.add_node("explode", explode)
builder.add_edge(wg.START, "explode")
builder.add_edge("explode", wg.END)
app = builder.compile()
"""


def test_host_and_origin_checks_on_a_real_server(tmp_path: Path) -> None:
    env = {"WEAVEGRAPH_ALLOWED_HOSTS": "app.example.com"}
    server = start_server("weavegraph.demo:demo_app", tmp_path / "h.db", cwd=tmp_path, env=env)
    port = server.url.rsplit(":", 1)[1]
    try:
        with httpx.Client(base_url=server.url) as client:
            ours = [f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", "app.example.com"]
            for host in ours:
                assert client.get("/api/sessions", headers={"Host": host}).status_code == 200
            for host in ("evil.example", f"evil.example:{port}", "localhost:1", f"10.0.0.1:{port}"):
                response = client.get("/", headers={"Host": host})
                assert response.status_code == 421, host
                assert response.json()["code"] == "weavegraph::web::host_not_allowed"
            cross_site = client.post(
                "/api/runs", json={"input": "x"}, headers={"Origin": "http://evil.example"}
            )
            assert cross_site.status_code == 403
            as_text = client.post(
                "/api/runs", content=b'{"input": "x"}', headers={"Content-Type": "text/plain"}
            )
            assert as_text.status_code == 415
            same_site = client.post(
                "/api/runs", json={"input": "x"}, headers={"Origin": f"http://localhost:{port}"}
            )
            assert same_site.status_code == 202
            assert len(client.get("/api/sessions").json()["sessions"]) == 1
    finally:
        server.stop()


def test_a_failed_node_is_type_and_message_over_http(tmp_path: Path) -> None:
    (tmp_path / "failing.py").write_text(FAILING)
    db = tmp_path / "fail.db"
    server = start_server("failing:app", db, cwd=tmp_path)
    try:
        with httpx.Client(base_url=server.url) as client:
            started = client.post("/api/runs", json={"input": "go", "session_id": "boom"})
            assert started.status_code == 202
            events = collect_events(client, f"{server.url}/api/runs/boom/events")
            answers = [
                str(events),
                client.get("/api/sessions/boom").text,
                client.get("/api/sessions").text,
            ]
            errors = client.get("/api/sessions/boom").json()["state"]["errors"]
    finally:
        server.stop()
    assert "status=error" in events[-1]["message"]
    assert errors[0]["error_type"] == "RuntimeError"
    assert errors[0]["message"] == "the node broke"
    assert "traceback" not in errors[0]
    for text in answers:
        assert "Traceback" not in text
        assert 'File "' not in text
        assert "failing.py" not in text
        assert str(tmp_path) not in text
    # The traceback is kept in storage, for the command line and the operator.
    stored = asyncio.run(_stored_traceback(db, "boom"))
    assert "failing.py" in stored
    assert "RuntimeError: the node broke" in stored


async def _stored_traceback(db: Path, session_id: str) -> str:
    checkpointer = await SQLiteCheckpointer.connect(f"sqlite://{db}")
    try:
        latest = await checkpointer.load_latest(session_id)
    finally:
        await checkpointer.close()
    assert latest is not None
    return latest.state.errors[0].traceback or ""


def test_the_token_never_reaches_the_access_log(tmp_path: Path) -> None:
    token = f"tok-{uuid.uuid4().hex}"
    server = start_server(
        "weavegraph.demo:demo_app",
        tmp_path / "log.db",
        cwd=tmp_path,
        env={"WEAVEGRAPH_API_TOKEN": token},
        args=["--debug"],  # the access log is on
    )
    try:
        with httpx.Client(base_url=server.url) as client:
            headers = {"Authorization": f"Bearer {token}"}
            started = client.post("/api/runs", json={"input": "x"}, headers=headers)
            session_id = started.json()["session_id"]
            url = f"{server.url}/api/runs/{session_id}/events?token={quote(token)}&x=1"
            assert collect_events(client, url)
            assert client.get(f"/api/sessions?token={quote(token)}").status_code == 401
    finally:
        server.stop()
    log = server.log.read_text()
    assert f"/api/runs/{session_id}/events?token=[redacted]&x=1" in log
    assert token not in log
