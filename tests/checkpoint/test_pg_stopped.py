"""A PostgreSQL server stopped mid-run: the run fails in seconds with one clear message.

Each test that stops a server uses a cluster of this module's own (``throwaway_postgres``), never
the shared test server.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from throwaway_postgres import ThrowawayPostgres, server_bin

from weavegraph.checkpoint.postgres import PostgresCheckpointer
from weavegraph.checkpoint.postgres import _connect as connect
from weavegraph.errors import CheckpointError
from weavegraph.testing.conformance import make_checkpoint

pytestmark = pytest.mark.slow

WEAVEGRAPH = str(Path(sys.executable).with_name("weavegraph"))
EXIT_BOUND_S = 15.0
"""Far above the few seconds it takes, far below the two minutes it once took."""

FLOWS = """
import asyncio
import weavegraph as wg

async def tick(snapshot, ctx):
    await asyncio.sleep(0.05)
    return wg.NodePartial(extra={"n": int(snapshot.extra.get("n", 0)) + 1})

def again(snapshot):
    return "tick" if snapshot.extra["n"] < 100000 else wg.END

def loop():
    builder = wg.GraphBuilder()
    builder.add_node("tick", tick)
    builder.add_edge(wg.START, "tick")
    builder.add_conditional_edge("tick", again, targets=["tick", wg.END])
    builder.with_max_steps(200000)
    return builder
"""


@pytest.fixture(scope="module")
def cluster() -> Iterator[ThrowawayPostgres]:
    bindir = server_bin()
    if bindir is None:
        pytest.skip("the PostgreSQL server (initdb, pg_ctl) is not installed")
    server = ThrowawayPostgres.create(bindir)
    try:
        yield server
    finally:
        server.remove()


@pytest.fixture
def server(cluster: ThrowawayPostgres) -> ThrowawayPostgres:
    """The module's cluster, running."""
    if not cluster.running():
        cluster.start()
    return cluster


def _latest_step(url: str) -> int:
    try:
        with psycopg.connect(url, connect_timeout=2) as conn:
            row = conn.execute("SELECT max(latest_step) FROM sessions").fetchone()
    except psycopg.Error:
        return -1
    return -1 if row is None or row[0] is None else int(row[0])


def test_the_cli_exits_in_seconds_when_the_server_stops_mid_run(
    tmp_path: Path, server: ThrowawayPostgres
) -> None:
    (tmp_path / "flows.py").write_text(FLOWS)
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("WEAVEGRAPH_LOG", None)
    process = subprocess.Popen(
        [WEAVEGRAPH, "run", "flows:loop", "--db", server.url, "--events", "none"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while _latest_step(server.url) < 5:
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the run saved no steps"
            time.sleep(0.1)
        server.stop()
        stopped = time.monotonic()
        _, stderr = process.communicate(timeout=120)
        took = time.monotonic() - stopped
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 1, stderr
    assert took < EXIT_BOUND_S, f"exited {took:.1f} s after the server stopped\n{stderr}"
    errors = [line for line in stderr.splitlines() if line.startswith("error[")]
    assert len(errors) == 1, stderr
    assert "stopped answering" in errors[0], stderr
    assert "psycopg.pool:" not in stderr  # the pool's records come through weavegraph's logger
    assert stderr.count("weavegraph.checkpoint.postgres.pool") <= 2, stderr


async def test_operations_fail_fast_while_down_and_work_again_after(
    server: ThrowawayPostgres, monkeypatch: pytest.MonkeyPatch
) -> None:
    checkpointer = await PostgresCheckpointer.connect(server.url, schema="fail_fast")
    try:
        await checkpointer.save(make_checkpoint("s", 0))
        server.stop()
        started = time.monotonic()
        with pytest.raises(CheckpointError, match="stopped answering"):
            await checkpointer.save(make_checkpoint("s", 1))
        again = time.monotonic()
        with pytest.raises(CheckpointError, match="stopped answering"):
            await checkpointer.load_latest("s")  # remembered: no second wait
        assert time.monotonic() - again < 0.5
        assert again - started < EXIT_BOUND_S
        server.start()
        monkeypatch.setattr(connect, "DOWN_GRACE", 0.0)
        await checkpointer.save(make_checkpoint("s", 1))
        latest = await checkpointer.load_latest("s")
        assert latest is not None
        assert latest.step == 1
    finally:
        await asyncio.wait_for(checkpointer.close(), timeout=30)
