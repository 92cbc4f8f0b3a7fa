"""Malformed headers, ids, node results, targets and database files: each gets a clear error of
its own (a 4xx, one of weavegraph's errors, exit status 2), never a raw exception or a 500."""

from __future__ import annotations

import asyncio
import itertools
import sys
from pathlib import Path
from typing import Any

import pytest

import weavegraph as wg
from weavegraph.checkpoint.sqlite import SQLiteCheckpointer
from weavegraph.cli import main
from weavegraph.partial import FrontierCommand
from weavegraph.runtime.values import validate_session_id

_modules = itertools.count()


# --- HTTP ----------------------------------------------------------------------------------------


async def _finished_session(app: Any) -> str:
    started = await app.client.post("/api/runs", json={"input": "x"})
    assert started.status_code == 202
    session_id = started.json()["session_id"]
    # The in-process client returns a stream once it has ended: when the run finished.
    stream = await app.client.get(f"/api/runs/{session_id}/events")
    assert "__weavegraph_stream_end__" in stream.text
    return session_id


@pytest.mark.parametrize(
    "last",
    [
        "²",  # str.isdigit() is true, int() refuses it
        "١٢",  # Arabic-Indic digits: int() accepts them, a seq header must not
        "9" * 5000,  # longer than int() converts
        "1_0",
        "+1",
        "0x10",
        "1 2",
        "-2",
        str(2**63),
        "99999999999999999999999",
    ],
)
async def test_a_malformed_last_event_id_is_a_400(app_client: Any, last: str) -> None:
    async with app_client() as app:
        session_id = await _finished_session(app)
        url = f"/api/runs/{session_id}/events"
        response = await app.client.get(url, headers={"Last-Event-ID": last.encode()})
        assert response.status_code == 400, response.text
        assert "Last-Event-ID" in response.json()["error"]
        query = await app.client.get(url, params={"last_event_id": last})
        assert query.status_code == 400


async def test_a_valid_last_event_id_resumes(app_client: Any) -> None:
    async with app_client() as app:
        session_id = await _finished_session(app)
        url = f"/api/runs/{session_id}/events"
        replay = await app.client.get(url, headers={"Last-Event-ID": " -1 "})
        assert replay.status_code == 200
        assert "id: 0" in replay.text  # -1: from the start
        after = await app.client.get(url, headers={"Last-Event-ID": "0"})
        assert after.status_code == 200
        assert "id: 0" not in after.text


@pytest.mark.parametrize(
    "session_id", [".", "..", "a\n", "a/b", "", "x" * 129, "é", "a b", "%2e%2e"]
)
async def test_a_malformed_session_id_is_a_400(app_client: Any, session_id: str) -> None:
    async with app_client() as app:
        started = await app.client.post("/api/runs", json={"input": "x", "session_id": session_id})
        assert started.status_code == 400
        assert started.json()["code"] == "weavegraph::session::invalid_id"
        assert (await app.client.get("/api/sessions")).json() == {"sessions": []}


@pytest.mark.parametrize("segment", ["%2E", "%2e%2E", "a%0A", "%C3%A9"])
async def test_a_malformed_session_id_in_a_path_is_a_400(app_client: Any, segment: str) -> None:
    async with app_client() as app:
        for path in (f"/api/sessions/{segment}", f"/api/runs/{segment}/events"):
            response = await app.client.get(path)
            assert response.status_code == 400, path
            assert response.json()["code"] == "weavegraph::session::invalid_id"


@pytest.mark.parametrize("session_id", [".", "..", "ok\n", "\n"])
def test_the_session_id_validator_refuses_path_segments(session_id: str) -> None:
    with pytest.raises(wg.InvalidSessionId):
        validate_session_id(session_id)


@pytest.mark.parametrize("session_id", ["...", ".a", "a..b", "run-1:2_3.4"])
def test_the_session_id_validator_accepts_dotted_ids(session_id: str) -> None:
    assert validate_session_id(session_id) == session_id


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"", "malformed JSON"),
        (b"\xff\xfe", "malformed JSON"),
        (b'{"input": "\\ud800"}', "malformed JSON"),
        (b"[1]", "must be a JSON object"),
        (b'"x"', "must be a JSON object"),
        (b'{"input": 5}', '"input" must be a string'),
        (b'{"state": []}', 'invalid "state"'),
        (b'{"state": {"messages": [5]}}', 'invalid "state"'),
    ],
)
async def test_a_malformed_body_is_a_400(app_client: Any, body: bytes, fragment: str) -> None:
    async with app_client() as app:
        response = await app.client.post(
            "/api/runs", content=body, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 400, response.text
        assert fragment in response.json()["error"]


async def test_a_malformed_content_length_is_not_a_500(app_client: Any) -> None:
    async with app_client() as app:
        response = await app.client.post(
            "/api/runs",
            content=b'{"input": "x"}',
            headers={"Content-Type": "application/json", "Content-Length": "²".encode("latin-1")},
        )
        assert response.status_code < 500


# --- node results --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"frontier": 5}, "NodePartial.frontier must be None or a FrontierCommand"),
        ({"frontier": ["next"]}, "NodePartial.frontier must be None or a FrontierCommand"),
        ({"messages": "hello"}, "NodePartial.messages must be a sequence"),
        ({"messages": 5}, "NodePartial.messages must be a sequence"),
        ({"errors": {"message": "x"}}, "NodePartial.errors must be a sequence"),
    ],
)
def test_a_malformed_node_partial_is_refused_when_built(
    kwargs: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(TypeError, match=fragment):
        wg.NodePartial(**kwargs)


def test_frontier_targets_must_be_node_ids() -> None:
    with pytest.raises(TypeError, match="sequence of node ids"):
        FrontierCommand("replace", "next")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"node ids \(str\)"):
        FrontierCommand("append", (1,))  # type: ignore[arg-type]


async def test_a_node_returning_a_bad_frontier_fails_with_node_run_error() -> None:
    async def bad(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
        return wg.NodePartial(frontier=5)  # type: ignore[arg-type]

    builder = wg.GraphBuilder()
    builder.add_node("bad", bad)
    builder.add_edge(wg.START, "bad")
    builder.add_edge("bad", wg.END)
    with pytest.raises(wg.NodeRunError, match=r"NodePartial\.frontier") as info:
        await builder.compile().invoke("go")
    assert isinstance(info.value.__cause__, TypeError)


# --- command line: targets -----------------------------------------------------------------------


@pytest.fixture
def module_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(sys, "modules", dict(sys.modules))
    return tmp_path


FACTORY = """
import sys

def exits():
    sys.exit({code})

def raises():
    raise LookupError("no model configured")
"""


@pytest.mark.parametrize(
    ("source", "attr", "fragments"),
    [
        (
            "raise RuntimeError('boom at import')",
            "app",
            ["importing", "RuntimeError: boom at import"],
        ),
        ("import sys\nsys.exit(0)", "app", ["importing", "sys.exit(0)"]),
        ("import sys\nsys.exit('bye')", "app", ["importing", "sys.exit('bye')"]),
        ("import no_such_dependency_xyz", "app", ["importing", "no_such_dependency_xyz"]),
        ("x = (", "app", ["importing", "SyntaxError"]),
        (FACTORY.format(code=0), "exits", ["calling", "exits()", "sys.exit(0)"]),
        (FACTORY.format(code=3), "exits", ["sys.exit(3)"]),
        (FACTORY.format(code=0), "raises", ["LookupError: no model configured"]),
    ],
)
def test_a_target_that_fails_to_load_is_a_usage_error(
    module_dir: Path,
    capsys: pytest.CaptureFixture[str],
    source: str,
    attr: str,
    fragments: list[str],
) -> None:
    name = f"failing_target_{next(_modules)}"
    (module_dir / f"{name}.py").write_text(source)
    for command in (["graph", f"{name}:{attr}"], ["run", f"{name}:{attr}", "--input", "x"]):
        assert main(command) == 2, command
        err = capsys.readouterr().err
        assert "weavegraph::config::invalid" in err
        for fragment in fragments:
            assert fragment in err


def test_a_missing_module_is_still_a_usage_error(
    module_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["graph", "no_such_module_here:app"]) == 2
    assert "cannot import module 'no_such_module_here'" in capsys.readouterr().err


def test_debug_shows_the_cause_traceback(
    module_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (module_dir / "debug_target.py").write_text("raise RuntimeError('boom at import')\n")
    assert main(["--debug", "graph", "debug_target:app"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err
    assert "debug_target.py" in err


# --- command line: database files ----------------------------------------------------------------


async def _weavegraph_db(path: Path) -> None:
    checkpointer = await SQLiteCheckpointer.connect(f"sqlite://{path}")
    try:
        builder = wg.GraphBuilder()

        async def write(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
            return wg.NodePartial(extra={"blob": "x" * 50_000})

        builder.add_node("write", write)
        builder.add_edge(wg.START, "write")
        builder.add_edge("write", wg.END)
        await builder.compile().invoke("go", checkpointer=checkpointer, session_id="s1")
    finally:
        await checkpointer.close()


@pytest.mark.parametrize("keep", [4096, 8192, 30_000])
def test_a_truncated_weavegraph_database_is_reported_corrupt(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], keep: int
) -> None:
    whole = tmp_path / "whole.db"
    asyncio.run(_weavegraph_db(whole))
    truncated = tmp_path / "truncated.db"
    truncated.write_bytes(whole.read_bytes()[:keep])
    before = truncated.read_bytes()
    assert main(["sessions", "list", "--db", f"sqlite://{truncated}"]) == 1
    err = capsys.readouterr().err
    assert "is a weavegraph database but it is corrupt" in err
    assert "not a weavegraph database" not in err
    assert truncated.read_bytes() == before  # left untouched


def test_a_damaged_foreign_sqlite_file_is_still_foreign(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import sqlite3

    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE notes (body TEXT)")
        conn.executemany("INSERT INTO notes VALUES (?)", [("n" * 1000,)] * 100)
    conn.close()
    foreign.write_bytes(foreign.read_bytes()[:8192])
    assert main(["sessions", "list", "--db", f"sqlite://{foreign}"]) == 1
    assert "is not a weavegraph database" in capsys.readouterr().err
