"""The chaos suite: workers killed, stopped and cut off while they run hundreds of sessions.

Four ``weavegraph worker`` processes run ``queue_flows.app`` (fan-out -> join -> loop, nine steps,
nodes sleeping 0-200 ms) for ``WEAVEGRAPH_CHAOS_SESSIONS`` sessions (default 300) while a fault
is injected every 0.5-1.5 s (``chaos_fleet``): ``kill -9`` and respawn, SIGSTOP for 2.5 leases
then SIGCONT, ``pg_terminate_backend`` on a worker's connections. Meanwhile SSE clients follow
every session through two ``serve --queue`` processes, reconnecting at random with
``Last-Event-ID``. Afterwards every invariant of ``chaos_checks`` must hold, each client must have
received exactly the stored events, and every stopped worker must have lost its lease
(``LeaseLost`` logged at least once per SIGSTOP). ``WEAVEGRAPH_CHAOS_SEED`` repeats a run's
choices of faults and victims (timing still varies).

The negative control runs the same checks on a database where a stale worker committed with the
fence switched off (``chaos_flows.unfenced_app``): they must fail.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import queue_flows
from chaos_checks import dump, install_audit, reference_runs, violations
from chaos_fleet import Fleet, inject_faults
from chaos_sse import follow
from queue_procs import HELPERS, raw, start_worker, stop_all, workers
from web_server import Server, start_server

from weavegraph.queue import QueueClient
from weavegraph.status import RunStatus

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.chaos]

LEASE_S = 2.0
WORKERS = 4
SSE_CLIENTS = 16
"""Sessions followed over SSE at once."""


def _sessions() -> int:
    return int(os.environ.get("WEAVEGRAPH_CHAOS_SESSIONS", "300"))


def _seed() -> int:
    text = os.environ.get("WEAVEGRAPH_CHAOS_SEED")
    return int(text) if text else random.SystemRandom().randrange(1_000_000)


def _servers(url: str, cwd: Path, env: dict[str, str]) -> list[Server]:
    full_env = {"PYTHONPATH": str(HELPERS), "WEAVEGRAPH_POSTGRES_URL": "", **env}
    return [
        start_server("queue_flows:app", url, cwd=cwd, env=full_env, args=("--queue",))
        for _ in range(2)
    ]


def _unfinished(admin: psycopg.Connection[Any], schema: str) -> int:
    row = admin.execute(
        raw(f"SELECT count(*) FROM \"{schema}\".sessions WHERE run_status <> 'completed'")
    ).fetchone()
    assert row is not None
    return int(row[0])


async def _until_done(admin: psycopg.Connection[Any], schema: str, within_s: float) -> None:
    async with asyncio.timeout(within_s):
        while await asyncio.to_thread(_unfinished, admin, schema):  # noqa: ASYNC110 (another process)
            await asyncio.sleep(0.5)


async def _follow_all(
    servers: list[Server], sids: list[str], rng: random.Random, retries: list[str]
) -> dict[str, tuple[list[dict[str, object]], int]]:
    gate = asyncio.Semaphore(SSE_CLIENTS)
    urls = [server.url for server in servers]
    limits = httpx.Limits(max_connections=SSE_CLIENTS * 2)
    async with httpx.AsyncClient(limits=limits) as http:

        async def one(sid: str) -> tuple[list[dict[str, object]], int]:
            async with gate:
                return await follow(http, urls, sid, random.Random(rng.random()), retries)

        results = await asyncio.gather(*(one(sid) for sid in sids))
    return dict(zip(sids, results, strict=True))


@pytest.mark.timeout(900)
async def test_sessions_survive_killed_stopped_and_cut_off_workers(
    client: QueueClient, queue_url: str, postgres_url: str, postgres_schema: str, tmp_path: Path
) -> None:
    seed, sessions = _seed(), _sessions()
    rng = random.Random(seed)
    install_audit(postgres_url, postgres_schema)
    inputs = {f"c{n}": f"input {seed} c{n}" for n in range(sessions)}
    references = await reference_runs(
        queue_flows.build_app(sleep_ms=0), inputs, tmp_path / "reference.db"
    )
    for sid, text in inputs.items():
        await client.enqueue(sid, text)
    env = {"WG_TEST_SLEEP_MS": "200"}
    fleet = Fleet(
        queue_url, WORKERS, tmp_path, lease=LEASE_S, env=env,
        args=("--concurrency", "6", "--max-attempts", "100"),
    )  # fmt: skip
    servers = _servers(queue_url, tmp_path, env)
    admin = psycopg.connect(postgres_url, autocommit=True)  # (one: the server is shared)
    began = time.monotonic()
    try:
        fleet.start()
        stop_faults = asyncio.Event()
        faults_task = asyncio.create_task(
            inject_faults(fleet, admin, postgres_schema, stop_faults, rng)
        )
        retries: list[str] = []
        streams = asyncio.create_task(_follow_all(servers, list(inputs), rng, retries))
        try:
            await _until_done(admin, postgres_schema, 600)
        finally:
            stop_faults.set()
            faults = await faults_task
        wall = time.monotonic() - began
        streamed = await asyncio.wait_for(streams, 120)
        await _until_lost(fleet, 20)
    finally:
        admin.close()
        fleet.close()
        for server in servers:
            server.stop()
    problems = await violations(client, postgres_url, postgres_schema, references)
    for sid in inputs:
        stored = await client.checkpointer.load_events(sid)
        if streamed[sid][0] != stored:
            problems.append(f"{sid}: streamed {streamed[sid][0]}, stored {stored}")
    broken = sorted({line.split(":")[0] for line in problems if line.startswith("c")})
    (tmp_path / "broken.txt").write_text(
        "\n\n".join(dump(postgres_url, postgres_schema, sid) for sid in broken)
    )
    for member in fleet.all_members():
        lost = _lease_lost(member.log)
        if lost < member.stops:
            problems.append(f"worker {member.name}: stopped {member.stops}x, LeaseLost {lost}x")
    summary = (
        f"chaos: seed {seed}, {sessions} sessions, faults {faults.by_kind()}, "
        f"LeaseLost {fleet.log_count(LOST_LINE)}, workers spawned {fleet.spawned}, "
        f"SSE connections {sum(n for _, n in streamed.values())} "
        f"({len(retries)} answered with a server storage failure), {wall:.1f} s"
    )
    print(summary)
    (tmp_path / "summary.txt").write_text(summary + "\n" + "\n".join(problems))
    assert not problems, "\n".join([summary, *problems[:40]])


LOST_LINE = ": LeaseLost (epoch "
"""How a worker says it lost a session (one WARNING line each; a traceback also names LeaseLost,
in lines that must not count as more losses)."""


def _lease_lost(log: Path) -> int:
    return sum(LOST_LINE in line for line in log.read_text(errors="replace").splitlines())


async def _until_lost(fleet: Fleet, within_s: float) -> None:
    """Until every stopped worker has logged a LeaseLost per stop (it may take a heartbeat)."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if all(
            _lease_lost(m.log) >= m.stops for m in fleet.all_members() if m.process.poll() is None
        ):
            return
        await asyncio.sleep(0.2)


async def _until(client: QueueClient, sid: str, within_s: float, done: Any) -> None:
    async with asyncio.timeout(within_s):
        while not done(await client.status(sid)):  # noqa: ASYNC110 (another process)
            await asyncio.sleep(0.05)


@pytest.mark.parametrize("fenced", [True, False], ids=["fenced", "unfenced"])
@pytest.mark.timeout(180)
async def test_a_worker_woken_after_its_claim_was_taken_over(
    fenced: bool, client: QueueClient, queue_url: str, postgres_url: str, postgres_schema: str,
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """SIGSTOP a worker mid-step for 2.5 leases while another takes its session over, then
    SIGCONT it. Fenced, it loses the claim (LeaseLost) and the checks hold. The negative control:
    with the fence switched off (``chaos_unfenced``) it commits under its old epoch, and the
    checks must fail."""
    install_audit(postgres_url, postgres_schema)
    monkeypatch.setenv("WG_TEST_SLEEP_MS", "0")
    references = await reference_runs(queue_flows.build_long_app(), {"n": "go"}, tmp_path / "r.db")
    await client.enqueue("n", "go")
    target = "queue_flows:long_app" if fenced else "chaos_unfenced:long_app"
    log = tmp_path / "stale.log"
    stale = start_worker(
        queue_url, target, lease=LEASE_S, env={"WG_TEST_SLEEP_MS": "3000"}, log=log
    )
    try:
        await _until(client, "n", 30, lambda s: s.status is RunStatus.RUNNING)
        async with asyncio.timeout(30):
            while await client.checkpointer.load_latest("n") is None:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # step 0 is committed: the worker is in its long step
        os.kill(stale.pid, signal.SIGSTOP)
        stopped = time.monotonic()
        env = {"WG_TEST_SLEEP_MS": "8000"}
        with workers(queue_url, 1, "queue_flows:long_app", lease=LEASE_S, env=env,
                     log=tmp_path / "other.log"):  # fmt: skip
            await _until(client, "n", 30, lambda s: s.epoch >= 2)  # taken over
            await asyncio.sleep(max(0.0, LEASE_S * 2.5 - (time.monotonic() - stopped)))
            os.kill(stale.pid, signal.SIGCONT)
            await _until(client, "n", 60, lambda s: s.status is RunStatus.COMPLETED)
            await asyncio.sleep(1)  # the stale worker has woken up and acted
    finally:
        stop_all([stale])
    problems = await violations(client, postgres_url, postgres_schema, references)
    if fenced:
        assert problems == []
        assert "LeaseLost" in log.read_text()
    else:
        print("negative control:", *problems, sep="\n  ")
        assert any("committed by a fenced-out worker" in p for p in problems), problems
