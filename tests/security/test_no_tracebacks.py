"""A failed node's traceback (file paths, source lines) never reaches an HTTP answer: every GET
route of the app, read for a session whose node failed, carries its error type and message only."""

from __future__ import annotations

from typing import Any

from web_app import every_request

import weavegraph as wg

SECRET_LINE = "raise RuntimeError('the node broke')  # a source line clients must not see"


async def _explode(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
    raise RuntimeError("the node broke")  # a source line clients must not see


def _failing_app() -> wg.App:
    builder = wg.GraphBuilder()
    builder.add_node("explode", _explode)
    builder.add_edge(wg.START, "explode")
    builder.add_edge("explode", wg.END)
    return builder.compile()


async def test_no_answer_about_a_failed_session_has_a_traceback(app_client: Any) -> None:
    async with app_client(app=_failing_app()) as app:
        started = await app.client.post("/api/runs", json={"input": "go", "session_id": "boom"})
        assert started.status_code == 202
        stream = await app.client.get("/api/runs/boom/events")  # returns once the run ended
        assert "status=error" in stream.text
        reads = [(m, p) for m, p in every_request(app.web, "boom") if m == "GET"]
        assert ("GET", "/api/sessions/boom") in reads
        answers = {path: (await app.client.get(path)).text for _, path in reads}
        session = (await app.client.get("/api/sessions/boom")).json()
    error = session["state"]["errors"][0]
    assert error["error_type"] == "RuntimeError"
    assert error["message"] == "the node broke"
    assert "traceback" not in error
    for path, text in answers.items():
        assert "Traceback" not in text, path
        assert "a source line clients must not see" not in text, path
        assert __file__ not in text, path
        assert 'File \\"' not in text, path
