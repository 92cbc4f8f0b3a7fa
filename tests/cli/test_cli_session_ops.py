"""``sessions fork|edit``, ``history --limit``, and what ``run`` says it starts from (in-process)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from weavegraph.cli import main

DEMO = "weavegraph.demo:demo_app"


@pytest.fixture
def demo_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A finished demo session ``d1`` in ``tmp_path/weavegraph.db`` (the working directory)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("WEAVEGRAPH_SQLITE_URL", raising=False)
    monkeypatch.delenv("SQLITE_DB_NAME", raising=False)
    assert main(["demo", "--delay", "0", "--events", "none", "--session", "d1"]) == 0
    return tmp_path / "weavegraph.db"


def _history(capsys: pytest.CaptureFixture[str], *argv: str) -> list[dict[str, object]]:
    capsys.readouterr()
    assert main(["sessions", "history", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_history_limit_shows_the_newest_steps(
    demo_db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    everything = _history(capsys, "d1")
    newest = _history(capsys, "d1", "--limit", "3")
    assert newest == everything[-3:]
    assert main(["sessions", "history", "d1", "--limit", "0"]) == 2


def test_fork_copies_the_history_up_to_the_step_then_resume_runs_it(
    demo_db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(["sessions", "fork", "d1", DEMO, "--step", "2", "--new-id", "d1-fork"]) == 0
    out = capsys.readouterr().out
    assert "forked d1 at step 2 into d1-fork" in out
    assert "weavegraph resume d1-fork weavegraph.demo:demo_app" in out
    assert [s["step"] for s in _history(capsys, "d1-fork")] == [0, 1, 2]
    assert [s["step"] for s in _history(capsys, "d1")][-1] == 12  # the source is unchanged
    assert main(["resume", "d1-fork", DEMO, "--events", "none"]) == 0
    assert _history(capsys, "d1-fork")[-1]["ran_nodes"] == ["publish"]


@pytest.mark.parametrize(
    ("argv", "status", "fragment"),
    [
        (["--step", "99"], 1, "session 'd1' has no step 99"),
        (["--step", "1", "--new-id", "d1"], 1, "session 'd1' already exists"),
        (["--step", "-1"], 2, "invalid step number"),
        (["--step", "1", "--new-id", "bad id"], 2, "bad id"),
    ],
)
def test_fork_refuses_what_cannot_be(
    demo_db: Path, capsys: pytest.CaptureFixture[str], argv: list[str], status: int, fragment: str
) -> None:
    capsys.readouterr()
    assert main(["sessions", "fork", "d1", DEMO, *argv]) == status
    assert fragment in capsys.readouterr().err


def test_edit_records_the_update_as_a_step(
    demo_db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    update = json.dumps({"messages": [{"role": "user", "content": "<b>more</b>"}]})
    argv = ["sessions", "edit", "d1", DEMO, "--extra", "score=9", "--extra", "note=hi"]
    capsys.readouterr()
    assert main([*argv, "--update", update]) == 0
    out = capsys.readouterr().out
    assert "after the edit (step 13, changed messages, extra)" in out
    assert "<b>more</b>" in out
    assert _history(capsys, "d1")[-1]["updated_channels"] == ["messages", "extra"]
    assert main(["sessions", "show", "d1", "--json"]) == 0
    state = json.loads(capsys.readouterr().out)["state"]
    assert state["extra"]["score"] == 9
    assert state["extra"]["note"] == "hi"


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        ([], "sessions edit needs --update and/or --extra"),
        (["--update", "{"], "--update is not JSON"),
        (["--update", '{"extra": 3}'], '--update: "extra" must be an object'),
        (["--extra", "novalue"], "--extra expects KEY=VALUE"),
    ],
)
def test_edit_usage_errors_change_nothing(
    demo_db: Path, capsys: pytest.CaptureFixture[str], argv: list[str], fragment: str
) -> None:
    before = _history(capsys, "d1")
    assert main(["sessions", "edit", "d1", DEMO, *argv]) == 2
    assert fragment in capsys.readouterr().err
    assert _history(capsys, "d1") == before


FLOW = """
import weavegraph as wg

async def count(snapshot, ctx):
    return wg.NodePartial(extra={"messages_seen": len(snapshot.messages)})

builder = wg.GraphBuilder()
builder.add_node("count", count)
builder.add_edge(wg.START, "count")
builder.add_edge("count", wg.END)
"""


def test_run_says_what_it_starts_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "one_flow.py").write_text(FLOW)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("WEAVEGRAPH_SQLITE_URL", raising=False)
    base = ["run", "one_flow:builder", "--events", "none"]
    assert main(base) == 0
    err = capsys.readouterr().err
    assert "starting from an empty state (no --input or --state given)" in err
    assert main([*base, "--session", "s1", "--input", "hi"]) == 0
    assert "session s1: starting from one user message (--input)" in capsys.readouterr().err
    assert main([*base, "--session", "s1", "--input", "again"]) == 0
    err = capsys.readouterr().err
    assert "continuing from its stored checkpoint at step 1" in err
    assert "--input is ignored" in err


def test_the_final_panel_shows_no_channel_versions(
    demo_db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(["sessions", "show", "d1"]) == 0
    out = capsys.readouterr().out
    assert "versions" not in out
    assert "errors=" not in out
    assert "search_docs: rate limited" in out  # the demo's one recoverable error is shown


FAILS_ONCE = """
import os
import weavegraph as wg

async def flaky(snapshot, ctx):
    if os.environ.get("FLAKY_FIXED") != "1":
        raise RuntimeError("the index is down")
    return wg.NodePartial(extra={"done": True})

builder = wg.GraphBuilder()
builder.add_node("flaky", flaky)
builder.add_edge(wg.START, "flaky")
builder.add_edge("flaky", wg.END)
app = builder.compile()
"""


def test_retry_runs_a_failed_session_again_and_refuses_a_finished_one(
    demo_db: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (demo_db.parent / "flaky_graph.py").write_text(FAILS_ONCE)
    monkeypatch.syspath_prepend(str(demo_db.parent))
    assert main(["run", "flaky_graph:app", "--input", "go", "--session", "f1"]) == 1
    capsys.readouterr()
    assert main(["sessions", "list", "--json"]) == 0
    assert {s["session_id"]: s["status"] for s in json.loads(capsys.readouterr().out)}[
        "f1"
    ] == "error"
    monkeypatch.setenv("FLAKY_FIXED", "1")
    assert main(["sessions", "retry", "f1", "flaky_graph:app", "--events", "none"]) == 0
    capsys.readouterr()
    assert main(["sessions", "list", "--json"]) == 0
    listed = {s["session_id"]: s["status"] for s in json.loads(capsys.readouterr().out)}
    assert listed["f1"] == "completed"

    assert main(["sessions", "retry", "d1", DEMO]) == 1
    err = capsys.readouterr().err
    assert "session 'd1' is completed: nothing to retry" in err
    assert main(["sessions", "retry", "nobody", DEMO]) == 1
