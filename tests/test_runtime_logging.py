"""SPEC §5.3: the runtime logs step boundaries (DEBUG), sessions (INFO) and retries (WARNING)."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

import weavegraph as wg
from weavegraph.logs import configure_logging


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    configure_logging("")
    root.handlers[:] = handlers
    root.setLevel(level)


async def add(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
    return wg.NodePartial(extra={ctx.node_id: True})


def chain() -> wg.App:
    return (
        wg.GraphBuilder()
        .add_node("a", add)
        .add_node("b", add)
        .add_edge(wg.START, "a")
        .add_edge("a", "b")
        .add_edge("b", wg.END)
        .compile()
    )


async def test_debug_lines_at_step_boundaries_and_checkpoint_saves(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="weavegraph")
    await chain().invoke("go", session_id="logged", checkpointer=wg.InMemoryCheckpointer())
    lines = [(r.name, r.levelno, r.getMessage()) for r in caplog.records]
    steps = [m for name, _, m in lines if name == "weavegraph.runtime.plan"]
    assert steps == [
        "session logged step 0: first frontier ['a']",
        "session logged step 1: ran ['a'], skipped [], next frontier ['b']",
        "session logged step 2: ran ['b'], skipped [], next frontier []",
    ]
    saves = [
        m
        for name, _, m in lines
        if name == "weavegraph.runtime.session" and "checkpoint saved" in m
    ]
    assert [s.split(" at ")[1] for s in saves] == [
        "step 0 (frontier ['a'])",
        "step 1 (frontier ['b'])",
        "step 2 (frontier [])",
    ]
    assert (
        "weavegraph.runtime.loop",
        logging.DEBUG,
        "session logged: run ended status=completed at step 2",
    ) in lines


async def test_sessions_log_created_resumed_completed_and_loads(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    caplog.set_level(logging.DEBUG, logger="weavegraph")
    url = f"sqlite://{tmp_path / 'w.db'}"
    async with wg.AppRunner(chain(), "sqlite", db_url=url) as runner:
        await runner.create_session("s", "hi")
        await runner.run_step("s")
    async with wg.AppRunner(chain(), "sqlite", db_url=url) as runner:
        await runner.create_session("s")
        await runner.run_until_complete("s")
    sessions = ("weavegraph.sessions", "weavegraph.runtime.loop")
    info = [r.getMessage() for r in caplog.records if r.name in sessions]
    assert "session s created" in info
    assert "session s: checkpoint loaded at step 1 (frontier ['b'])" in info
    assert "session s resumed at step 1" in info
    assert "session s completed at step 2" in info
    levels = {r.getMessage(): r.levelno for r in caplog.records}
    assert levels["session s created"] == logging.INFO


async def test_a_retry_is_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    calls = 0

    async def flaky(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("try again")

    app = (
        wg.GraphBuilder()
        .add_node("flaky", flaky, retry=wg.RetryPolicy(max_attempts=2, initial_delay=0))
        .add_edge(wg.START, "flaky")
        .add_edge("flaky", wg.END)
        .compile()
    )
    caplog.set_level(logging.WARNING, logger="weavegraph")
    await app.invoke("go", session_id="r")
    (record,) = [r for r in caplog.records if r.name.startswith("weavegraph")]
    assert record.levelno == logging.WARNING
    assert "node 'flaky' failed (ConnectionError: try again); retry 1/1" in record.getMessage()


async def test_configure_logging_directives_turn_the_lines_on_per_logger() -> None:
    out = io.StringIO()
    configure_logging("weavegraph.runtime.plan=debug", stream=out)
    await chain().invoke("go", session_id="dirs")
    text = out.getvalue()
    assert "weavegraph.runtime.plan: session dirs step 1: ran ['a']" in text
    assert "weavegraph.runtime.loop" not in text  # only the planner was asked for
    out = io.StringIO()
    configure_logging("warn", stream=out)
    await chain().invoke("go", session_id="quiet")
    assert out.getvalue() == ""
    out = io.StringIO()
    configure_logging("weavegraph=debug", stream=out)
    await chain().invoke("go", session_id="all")
    assert "weavegraph.runtime.loop: session all: run ended status=completed" in out.getvalue()
