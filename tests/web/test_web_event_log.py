"""SSE from the stored log: kill -9 of the server mid-run, and a session run by another process."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from web_server import WEAVEGRAPH, SseMessage, read_sse

pytestmark = pytest.mark.slow

STEPS = 12
PER_STEP = 5
TICKING = f"""
import asyncio
import weavegraph as wg

async def tick(snapshot, ctx):
    n = snapshot.extra.get("n", 0) + 1
    for i in range({PER_STEP}):
        ctx.emit("tick", f"n={{n}} i={{i}}")
    await asyncio.sleep(0.15)
    return wg.NodePartial(extra={{"n": n}})

def again(snapshot):
    return "tick" if snapshot.extra["n"] < {STEPS} else wg.END

builder = wg.GraphBuilder().add_node("tick", tick).add_edge(wg.START, "tick")
app = builder.add_conditional_edge("tick", again, targets=["tick", wg.END]).compile()
"""
END_SCOPE = "__weavegraph_stream_end__"


def _messages(
    client: httpx.Client, url: str, last: int | None = None, *, until: int | None = None
) -> list[SseMessage]:
    """The SSE messages of one stream (``until``: stop reading after that many)."""
    headers = {} if last is None else {"Last-Event-ID": str(last)}
    messages: list[SseMessage] = []
    with client.stream("GET", url, headers=headers, timeout=60) as response:
        assert response.status_code == 200, response.read()
        for message in read_sse(response):
            messages.append(message)
            if until is not None and len(messages) >= until:
                break
    return messages


def _stored(db: Path, session_id: str) -> tuple[list[dict[str, Any]], list[int]]:
    """The stored events and steps of a session, read straight from the database file."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT data FROM events WHERE session_id = ? ORDER BY seq", (session_id,)
        ).fetchall()
        steps = conn.execute(
            "SELECT step FROM steps WHERE session_id = ? ORDER BY step", (session_id,)
        ).fetchall()
    conn.close()
    return [orjson.loads(data) for (data,) in rows], [step for (step,) in steps]


def _tick_steps(events: list[dict[str, Any]]) -> Counter[int]:
    return Counter(e["metadata"]["step"] for e in events if e["scope"] == "tick")


def _ticking(server_factory: Any, tmp_path: Path, db_name: str) -> tuple[Any, Path]:
    """A server of the ticking graph on a fresh database: (server, database path)."""
    (tmp_path / "ticking.py").write_text(TICKING)
    db = tmp_path / db_name
    return server_factory("ticking:app", db, cwd=tmp_path), db


def test_kill_9_mid_run_then_every_committed_step_replays_and_no_seq_is_reused(
    server_factory: Any, tmp_path: Path
) -> None:
    server, db = _ticking(server_factory, tmp_path, "killed.db")
    with httpx.Client() as client:
        started = client.post(f"{server.url}/api/runs", json={"input": "go", "session_id": "k"})
        assert started.status_code == 202
        seen = _messages(client, f"{server.url}/api/runs/k/events", until=3 * PER_STEP + 2)
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(timeout=30)

    assert all(m.id == str(m.json()["seq"]) for m in seen)  # every one sent was stored
    events, steps = _stored(db, "k")
    assert [m.json() for m in seen] == events[: len(seen)]
    committed = [step for step in steps if step > 0]
    assert committed
    assert committed[-1] < STEPS
    # Each committed step's events are all there, and nothing of the step in flight.
    assert _tick_steps(events) == dict.fromkeys(committed, PER_STEP)
    last_seen = int(seen[-1].id or -1)

    restarted = server_factory(
        "ticking:app", db, cwd=tmp_path, env={"WEAVEGRAPH_STALE_RUN_SECONDS": "1"}
    )
    url = f"{restarted.url}/api/runs/k/events"
    with httpx.Client() as client:
        replay = _messages(client, url, last_seen)
        *stored_rest, end = replay
        assert [m.json() for m in stored_rest] == events[len(seen) :]
        assert [m.id for m in stored_rest] == [str(e["seq"]) for e in events[len(seen) :]]
        assert end.id is None  # made up for the dead run: not stored, so no id
        assert end.json()["scope"] == END_SCOPE
        assert "status=stopped" in end.json()["message"]

        last_stored = events[-1]["seq"]
        again = client.post(f"{restarted.url}/api/runs", json={"session_id": "k"})
        assert again.status_code == 202
        rest = _messages(client, url, last_stored)
    assert rest[0].json()["seq"] == last_stored + 1  # never a seq handed out before
    assert "status=completed" in rest[-1].json()["message"]
    final, _ = _stored(db, "k")
    assert [e["seq"] for e in final] == list(range(len(final)))
    assert _tick_steps(final) == dict.fromkeys(range(1, STEPS + 1), PER_STEP)


def test_serve_streams_a_session_that_another_process_runs(
    server_factory: Any, tmp_path: Path
) -> None:
    server, db = _ticking(server_factory, tmp_path, "shared.db")
    command = [WEAVEGRAPH, "run", "ticking:app", "--session", "elsewhere", "--input", "go"]
    runner = subprocess.Popen(
        [*command, "--events", "none", "--db", f"sqlite://{db}"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        with httpx.Client() as client:
            deadline = time.monotonic() + 60
            while client.get(f"{server.url}/api/sessions/elsewhere").status_code == 404:
                assert time.monotonic() < deadline, "the other process never stored the session"
                time.sleep(0.05)
            url = f"{server.url}/api/runs/elsewhere/events"
            first = _messages(client, url, until=1)
            assert runner.poll() is None  # streamed while the other process still runs it
            messages = _messages(client, url)
    finally:
        _, err = runner.communicate(timeout=60)
    assert runner.returncode == 0, err
    events = [m.json() for m in messages]
    assert first[0].json() == events[0]
    assert [m.id for m in messages] == [str(e["seq"]) for e in events]
    assert [e["seq"] for e in events] == list(range(len(events)))
    assert _tick_steps(events) == dict.fromkeys(range(1, STEPS + 1), PER_STEP)
    assert "status=completed" in events[-1]["message"]
    assert events == _stored(db, "elsewhere")[0]


ASKING = """
import weavegraph as wg

async def ask(snapshot, ctx):
    ctx.emit("asking", "before")
    return wg.NodePartial(extra={"answer": ctx.interrupt({"question": "ship it?"})})

builder = wg.GraphBuilder().add_node("ask", ask).add_edge(wg.START, "ask")
app = builder.add_edge("ask", wg.END).compile()
"""


def test_a_stream_starts_at_the_last_run_and_minus_one_replays_every_run(
    server_factory: Any, tmp_path: Path
) -> None:
    (tmp_path / "asking.py").write_text(ASKING)
    server = server_factory("asking:app", tmp_path / "asked.db", cwd=tmp_path)
    url = f"{server.url}/api/runs/two-runs/events"
    with httpx.Client() as client:
        first = client.post(
            f"{server.url}/api/runs", json={"input": "go", "session_id": "two-runs"}
        )
        assert first.status_code == 202
        paused = [m.json() for m in _messages(client, url)]
        assert "status=interrupted" in paused[-1]["message"]
        answered = client.post(
            f"{server.url}/api/runs", json={"session_id": "two-runs", "answer": "yes"}
        )
        assert answered.status_code == 202
        second = [m.json() for m in _messages(client, url)]
        everything = [m.json() for m in _messages(client, url, -1)]
    assert second[0]["seq"] == paused[-1]["seq"] + 1
    assert "status=completed" in second[-1]["message"]
    assert everything == paused + second  # an earlier run's stream end does not end it
