"""The real ``weavegraph`` command in subprocesses: demo, run, resume, sessions, db, signals."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

WEAVEGRAPH = str(Path(sys.executable).with_name("weavegraph"))

FLOWS = """
import asyncio
import weavegraph as wg

async def count(snapshot, ctx):
    n = int(snapshot.extra.get("n", 0)) + 1
    ctx.emit("count", f"n={n}")
    return wg.NodePartial(extra={"n": n})

def again(snapshot):
    return "count" if snapshot.extra["n"] < snapshot.extra.get("until", 3) else wg.END

def loop():
    builder = wg.GraphBuilder()
    builder.add_node("count", count)
    builder.add_edge(wg.START, "count")
    builder.add_conditional_edge("count", again, targets=["count", wg.END])
    builder.with_max_steps(1000)
    return builder

async def boom(snapshot, ctx):
    raise RuntimeError("the disk is full")

def failing():
    builder = wg.GraphBuilder()
    builder.add_node("boom", boom)
    builder.add_edge(wg.START, "boom")
    builder.add_edge("boom", wg.END)
    return builder.compile()

async def ask(snapshot, ctx):
    answer = ctx.interrupt({"question": "ship it?"})
    return wg.NodePartial(extra={"answer": answer})

def asking():
    builder = wg.GraphBuilder()
    builder.add_node("ask", ask)
    builder.add_edge(wg.START, "ask")
    builder.add_edge("ask", wg.END)
    return builder

def nested_asking():
    builder = wg.GraphBuilder().add_node("research", asking().compile())
    return builder.add_edge(wg.START, "research").add_edge("research", wg.END)
"""


def wg_cli(
    *args: str, cwd: Path, check: bool = True, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("WEAVEGRAPH_SQLITE_URL", None)
    env.pop("SQLITE_DB_NAME", None)
    result = subprocess.run(
        [WEAVEGRAPH, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
        **kwargs,
    )
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "flows.py").write_text(FLOWS)
    return tmp_path


def _json_out(result: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(result.stdout)


def test_demo_on_the_embedded_default(workdir: Path) -> None:
    result = wg_cli("demo", "--delay", "0", cwd=workdir)
    assert (workdir / "weavegraph.db").exists()
    assert "Traceback" not in result.stderr
    out = result.stdout
    for fragment in (
        "planning research",
        "search_docs: rate limited",
        "revision 3 scored",
        "run completed",
        "Supersteps run every ready node",
    ):
        assert fragment in out
    assert "step 12" in result.stderr  # progress
    session = out.rsplit("session ", 1)[1].split()[0]
    listed = _json_out(wg_cli("sessions", "list", "--json", cwd=workdir))
    assert [s["session_id"] for s in listed] == [session]
    history = _json_out(wg_cli("sessions", "history", session, "--json", cwd=workdir))
    assert [h["step"] for h in history] == list(range(13))
    assert history[2]["ran_nodes"] == ["search_papers", "search_docs", "search_code"]
    shown = _json_out(wg_cli("sessions", "show", session, "--json", cwd=workdir))
    assert shown["state"]["extra"]["published"] is True
    assert shown["state"]["errors"][0]["node_id"] == "search_docs"
    assert (
        f"{session} at step 12 (completed)"
        in wg_cli("sessions", "show", session, cwd=workdir).stdout
    )
    table = wg_cli("sessions", "history", session, cwd=workdir).stdout
    assert "search_papers" in table
    assert " 12 " in table
    again = wg_cli("demo", "--session", session, "--delay", "0", cwd=workdir)
    assert "resumed the stored session" in again.stderr
    assert wg_cli("sessions", "delete", session, cwd=workdir).returncode == 0
    assert _json_out(wg_cli("sessions", "list", "--json", cwd=workdir)) == []
    missing = wg_cli("sessions", "show", session, cwd=workdir, check=False)
    assert missing.returncode == 1
    assert "session_not_found" in missing.stderr


def test_run_jsonl_events_and_state_file(workdir: Path) -> None:
    state = {"messages": [], "extra": {"until": 4}}
    (workdir / "state.json").write_text(json.dumps(state))
    result = wg_cli(
        "run",
        "flows:loop",
        "--state",
        "state.json",
        "--events",
        "jsonl",
        "--db",
        "sqlite://data/runs.db",
        "--session",
        "jl-1",
        cwd=workdir,
    )
    assert (workdir / "data" / "runs.db").exists()
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert [e["message"] for e in events if e["type"] == "node"] == ["n=1", "n=2", "n=3", "n=4"]
    assert events[-1]["scope"] == "__weavegraph_stream_end__"
    assert events[-1]["message"] == "session=jl-1 status=completed step=4"
    assert [e["seq"] for e in events] == list(range(len(events)))


def test_failed_run_exits_1_with_a_diagnostic(workdir: Path) -> None:
    result = wg_cli(
        "run", "flows:failing", "--input", "x", "--events", "none", cwd=workdir, check=False
    )
    assert result.returncode == 1
    assert "weavegraph::run::node_failed" in result.stderr
    assert "the disk is full" in result.stderr
    assert "Traceback" not in result.stderr


def test_interrupt_before_then_resume(workdir: Path) -> None:
    paused = wg_cli(
        "run",
        "weavegraph.demo:demo_app",
        "--input",
        "q",
        "--session",
        "hitl",
        "--interrupt-before",
        "collect",
        "--events",
        "none",
        cwd=workdir,
    )
    assert "paused before collect" in paused.stderr
    assert "weavegraph resume hitl weavegraph.demo:demo_app" in paused.stderr
    shown = _json_out(wg_cli("sessions", "show", "hitl", "--json", cwd=workdir))
    assert shown["frontier"] == ["collect"]
    resumed = wg_cli("resume", "hitl", "weavegraph.demo:demo_app", "--events", "jsonl", cwd=workdir)
    events = [json.loads(line) for line in resumed.stdout.splitlines()]
    assert events[0]["message"] == "collected 3 findings"
    assert "status=completed" in events[-1]["message"]


def test_a_subgraphs_question_names_its_namespace(workdir: Path) -> None:
    asked = wg_cli("run", "flows:nested_asking", "--session", "n1", "--events", "none", cwd=workdir)
    assert 'research/ask asks {"question":"ship it?"}' in asked.stderr
    shown_text = wg_cli("sessions", "show", "n1", cwd=workdir).stdout
    assert 'waiting: research/ask asks {"question":"ship it?"}' in shown_text
    listed = _json_out(wg_cli("sessions", "list", "--json", cwd=workdir))
    assert [row["session_id"] for row in listed] == ["n1"]
    answered = wg_cli(
        "resume", "n1", "flows:nested_asking", "--answer", "true", "--events", "jsonl", cwd=workdir
    )
    events = [json.loads(line) for line in answered.stdout.splitlines()]
    assert "status=completed" in events[-1]["message"]
    shown = _json_out(wg_cli("sessions", "show", "n1", "--json", cwd=workdir))
    assert shown["state"]["extra"]["answer"] is True


def test_dynamic_interrupt_is_answered_with_resume_answer(workdir: Path) -> None:
    asked = wg_cli("run", "flows:asking", "--session", "q1", "--events", "none", cwd=workdir)
    assert 'ask asks {"question":"ship it?"}' in asked.stderr
    assert "weavegraph resume q1 flows:asking --answer JSON" in asked.stderr
    # Without an answer the session keeps waiting (and says so again).
    still = wg_cli("resume", "q1", "flows:asking", "--events", "none", cwd=workdir)
    assert "waiting for an answer" in still.stderr
    waiting = _json_out(wg_cli("sessions", "show", "q1", "--json", cwd=workdir))
    assert waiting["interrupt"] == {"node": "ask", "value": {"question": "ship it?"}}
    shown_text = wg_cli("sessions", "show", "q1", cwd=workdir).stdout
    assert 'waiting: ask asks {"question":"ship it?"}' in shown_text
    answered = wg_cli(
        "resume", "q1", "flows:asking", "--answer", '{"ok": true}', "--events", "jsonl", cwd=workdir
    )
    events = [json.loads(line) for line in answered.stdout.splitlines()]
    assert "status=completed" in events[-1]["message"]
    shown = _json_out(wg_cli("sessions", "show", "q1", "--json", cwd=workdir))
    assert shown["state"]["extra"]["answer"] == {"ok": True}
    assert shown["interrupt"] is None
    again = wg_cli("resume", "q1", "flows:asking", "--answer", "1", cwd=workdir, check=False)
    assert again.returncode == 1
    assert "not waiting for input" in again.stderr
    wg_cli("run", "flows:asking", "--session", "q2", "--events", "none", cwd=workdir)
    wg_cli("resume", "q2", "flows:asking", "--answer", "yes please", cwd=workdir)
    shown = _json_out(wg_cli("sessions", "show", "q2", "--json", cwd=workdir))
    assert shown["state"]["extra"]["answer"] == "yes please"


BLOCKING = """
import time
import weavegraph as wg

async def first(snapshot, ctx):
    return wg.NodePartial(extra={"first": True})

def block(snapshot, ctx):
    ctx.emit("blocking", "about to block")
    time.sleep(600)  # a sync node stuck in a call that nobody can interrupt
    return wg.NodePartial(extra={"blocked": True})

builder = wg.GraphBuilder().add_node("first", first).add_node("block", block)
app = builder.add_edge(wg.START, "first").add_edge("first", "block").add_edge("block", wg.END).compile()
"""


@pytest.mark.slow
def test_a_second_sigint_stops_at_once_while_a_sync_node_blocks(workdir: Path) -> None:
    (workdir / "blocking.py").write_text(BLOCKING)
    process = subprocess.Popen(
        [WEAVEGRAPH, "run", "blocking:app", "--input", "q", "--session", "b", "--events", "jsonl"],
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stderr is not None
    lines: list[str] = []
    for line in process.stdout:
        lines.append(line)
        if '"about to block"' in line:  # the sync node is in time.sleep(600)
            break
    process.send_signal(signal.SIGINT)
    for line in process.stderr:
        if "stopping after the current step" in line:  # the first one was handled
            break
    process.send_signal(signal.SIGINT)  # impatient: a second one must not wait for the node
    rest, err = process.communicate(timeout=120)  # a hang (600 s) would fail here
    lines.extend(rest.splitlines())
    assert process.returncode == 130, err
    end = json.loads(lines[-1])
    assert end["message"] == "session=b status=stopped step=1"
    shown = _json_out(wg_cli("sessions", "show", "b", "--json", cwd=workdir))
    assert shown["step"] == 1  # the blocked step was not committed
    assert shown["frontier"] == ["block"]
    assert "blocked" not in shown["state"]["extra"]


def test_sigint_stops_at_a_step_boundary_and_resume_finishes(workdir: Path) -> None:
    (workdir / "slow.py").write_text(
        "from weavegraph.demo import demo_app\napp = demo_app(token_delay=0.02)\n"
    )
    process = subprocess.Popen(
        [WEAVEGRAPH, "run", "slow:app", "--input", "q", "--session", "sig", "--events", "jsonl"],
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    lines: list[str] = []
    for line in process.stdout:
        lines.append(line)
        if '"type":"llm"' in line:  # the fake model is streaming: mid-step
            process.send_signal(signal.SIGINT)
            break
    rest, err = process.communicate(timeout=60)
    lines.extend(rest.splitlines())
    assert process.returncode == 130, err
    end = json.loads(lines[-1])
    assert end["scope"] == "__weavegraph_stream_end__"
    assert "status=stopped" in end["message"]
    assert "weavegraph resume sig slow:app" in err
    stopped_at = _json_out(wg_cli("sessions", "show", "sig", "--json", cwd=workdir))
    assert stopped_at["frontier"]  # not finished, checkpointed at a boundary
    resumed = wg_cli("resume", "sig", "weavegraph.demo:demo_app", "--events", "jsonl", cwd=workdir)
    events = [json.loads(line) for line in resumed.stdout.splitlines()]
    assert events[0]["seq"] == end["seq"] + 1
    assert "status=completed" in events[-1]["message"]
    wg_cli(
        "run",
        "weavegraph.demo:demo_app",
        "--input",
        "q",
        "--session",
        "straight",
        "--events",
        "none",
        cwd=workdir,
    )
    a = _json_out(wg_cli("sessions", "show", "sig", "--json", cwd=workdir))["state"]
    b = _json_out(wg_cli("sessions", "show", "straight", "--json", cwd=workdir))["state"]
    assert a == b


def _steps_per_session(db: Path) -> dict[str, list[int]]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT session_id, step FROM steps ORDER BY session_id, step"
        ).fetchall()
    result: dict[str, list[int]] = {}
    for session_id, step in rows:
        result.setdefault(session_id, []).append(step)
    return result


def test_prune_keeps_the_newest_steps_per_session(workdir: Path) -> None:
    for session, until in (("long", 150), ("short", 20)):
        (workdir / f"{session}.json").write_text(json.dumps({"extra": {"until": until}}))
        wg_cli(
            "run",
            "flows:loop",
            "--state",
            f"{session}.json",
            "--session",
            session,
            "--events",
            "none",
            cwd=workdir,
        )
    db = workdir / "weavegraph.db"
    before = _steps_per_session(db)
    assert (len(before["long"]), len(before["short"])) == (151, 21)

    # The seed's hand-written SQL on a copy: it keeps the step numbers of a global top 100
    # (51..150, all from the long session), so the short session loses every step, its latest
    # checkpoint included. The CLI must not behave like this.
    copy = workdir / "seed-copy.db"
    shutil.copy(db, copy)
    with sqlite3.connect(copy) as conn:
        conn.execute(
            "DELETE FROM steps WHERE step NOT IN (SELECT step FROM steps "
            "WHERE session_id = steps.session_id ORDER BY step DESC LIMIT 100)"
        )
    assert "short" not in _steps_per_session(copy)

    dry = wg_cli("db", "prune", "--keep-last", "100", "--dry-run", cwd=workdir)
    assert "dry run: prune would delete (steps deleted: 51, sessions affected: 1" in dry.stdout
    assert "nothing was deleted" in dry.stdout
    assert _steps_per_session(db) == before  # counted, not deleted
    pruned = wg_cli("db", "prune", "--older-than", "30d", "--keep-last", "100", cwd=workdir)
    assert "steps deleted: 51" in pruned.stdout
    after = _steps_per_session(db)
    assert after["long"] == list(range(51, 151))
    assert after["short"] == list(range(21))

    wg_cli("db", "prune", "--keep-last", "1", cwd=workdir)
    assert _steps_per_session(db) == {"long": [150], "short": [20]}
    shown = _json_out(wg_cli("sessions", "show", "long", "--json", cwd=workdir))
    assert shown["state"]["extra"]["n"] == 150
    stats = _json_out(wg_cli("db", "stats", "--json", cwd=workdir))
    assert (stats["sessions"], stats["steps"]) == (2, 2)
    assert "vacuumed" in wg_cli("db", "vacuum", cwd=workdir).stdout
    assert "schema version" in wg_cli("db", "migrate", cwd=workdir).stdout


def test_db_usage_errors(workdir: Path) -> None:
    assert wg_cli("db", "prune", cwd=workdir, check=False).returncode == 2
    memory = wg_cli("db", "stats", "--checkpointer", "memory", cwd=workdir, check=False)
    assert memory.returncode == 2
    assert "need a database" in memory.stderr
