"""One session driven from two processes at once, on SQLite and on PostgreSQL.

Fenced saves make the second writer of a step lose with ``CheckpointConflict`` instead of silently
interleaving: every step is committed exactly once, history and events stay contiguous.
"""

from __future__ import annotations

import multiprocessing
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import fenced_writers as fw
import pytest

import weavegraph as wg
from weavegraph.checkpoint.base import Checkpointer

pytestmark = pytest.mark.slow

WRITERS = ("a", "b")
SPAWN = multiprocessing.get_context("spawn")


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str | None]:
    """A database URL (and PostgreSQL schema) that both processes open."""
    if request.param == "sqlite":
        return f"sqlite://{tmp_path}/fenced.db", None
    request.applymarker(pytest.mark.postgres)
    url: str = request.getfixturevalue("postgres_url")
    schema: str = request.getfixturevalue("postgres_schema")
    return url, schema


def _run(target: Any, url: str, schema: str | None, sid: str, barrier: Any) -> dict[str, Any]:
    """Run ``target`` in one process per writer; their reports by writer name."""
    out = SPAWN.Queue()
    processes = [
        SPAWN.Process(target=target, args=(url, schema, sid, name, barrier, out))
        for name in WRITERS
    ]
    for process in processes:
        process.start()
    reports = {}
    try:
        for _ in processes:
            report = out.get(timeout=90)
            reports[report[0]] = report[1:]
    finally:
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
    return reports


async def _stored(url: str, schema: str | None, sid: str) -> tuple[Checkpointer, list[int]]:
    cp = await fw.open_checkpointer(url, schema)
    return cp, [info.step for info in await cp.history(sid)]


async def test_two_processes_race_for_each_step(database: tuple[str, str | None]) -> None:
    url, schema = database
    sid = f"fenced-{uuid.uuid4().hex[:8]}"
    reports = _run(fw.race_steps, url, schema, sid, SPAWN.Barrier(len(WRITERS)))
    for name, report in reports.items():
        assert report[0] != "error", f"writer {name}: {report[1]}"
    won = {name: report[0] for name, report in reports.items()}
    lost = {name: report[1] for name, report in reports.items()}
    # Each round both built on the same step: exactly one committed it, the other was refused.
    assert sorted(won["a"] + won["b"]) == list(range(fw.ROUNDS))
    assert sorted(step for step, _, _ in lost["a"] + lost["b"]) == list(range(fw.ROUNDS))
    for step, expected, stored in lost["a"] + lost["b"]:
        assert (expected, stored) == (step - 1, step)
    winner = {step: name for name, steps in won.items() for step in steps}
    cp, history = await _stored(url, schema, sid)
    try:
        assert history == list(range(fw.ROUNDS))
        for step in history:
            saved = await cp.load(sid, step)
            assert saved is not None
            assert saved.state.extra["writer"] == winner[step]
        events = await cp.load_events(sid)
        assert [event["seq"] for event in events] == list(range(2 * fw.ROUNDS))
        for event in events:
            assert event["writer"] == winner[event["step"]], event
    finally:
        await cp.close()
    if schema is None:
        with sqlite3.connect(url.removeprefix("sqlite://")) as plain:
            rows = plain.execute("SELECT seq, step FROM events ORDER BY seq").fetchall()
        assert rows == [(seq, seq // 2) for seq in range(2 * fw.ROUNDS)]


async def test_two_runners_drive_one_session(database: tuple[str, str | None]) -> None:
    """Two AppRunners in two processes resume one session. On SQLite both run step 1, one
    commits it and finishes the run, the other stops with CheckpointConflict. On PostgreSQL
    every run claims its session: the second is refused at once with SessionBusy naming the
    holder, before running anything. Either way each step is stored once."""
    url, schema = database
    sid = f"driven-{uuid.uuid4().hex[:8]}"
    barrier = SPAWN.Barrier(len(WRITERS))
    cp = await fw.open_checkpointer(url, schema)
    try:
        async with wg.AppRunner(fw.chain_app(barrier), cp) as runner:
            await runner.create_session(sid)  # step 0, then both processes resume it
    finally:
        await cp.close()
    reports = _run(fw.drive_session, url, schema, sid, barrier)
    outcomes = sorted(report[0] for report in reports.values())
    refused = "CheckpointConflict" if schema is None else "SessionBusy"
    assert outcomes == sorted([refused, "completed"]), reports
    loser = next(report for report in reports.values() if report[0] == refused)
    assert sid in loser[1]
    if schema is None:
        assert "builds on step 0" in loser[1], loser
    else:
        assert "is already running (claimed by " in loser[1], loser
    cp, history = await _stored(url, schema, sid)
    try:
        assert history == list(range(fw.CHAIN + 1))
        latest = await cp.load_latest(sid)
        assert latest is not None
        assert dict(latest.state.extra) == {f"n{i}": f"n{i}" for i in range(1, fw.CHAIN + 1)}
        ran = [(await cp.history(sid))[step].ran_nodes for step in range(1, fw.CHAIN + 1)]
        assert ran == [(f"n{i}",) for i in range(1, fw.CHAIN + 1)]
    finally:
        await cp.close()
