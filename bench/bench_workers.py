"""``workers``: queued sessions on PostgreSQL run by real ``weavegraph worker`` processes.

Throughput: ``--size`` sessions of a 5-node chain (``worker_app``) are queued first, then 1, 2 and
4 workers (``--concurrency`` sessions each) are started on a fresh schema and run them all;
sessions/s and step commits/s are measured between the first and the last step commit (as the
steps rows record them), so a worker's start-up is not counted. Takeover: one worker holds
``--takeover-sessions`` slow sessions (nodes sleeping), is killed with ``kill -9`` mid-run, and a
second, already idle worker takes them over once their lease expires; the takeover time of a
session runs from the kill to its ``attempt_restarted`` diagnostic (p50/p95, seconds and lease
multiples).

    .bench-venv/bin/python bench/bench_workers.py [--size 1000] [--workers 1,2,4] [--quick]

The harness runs it as the ``workers`` workload (``wg_workloads.workers``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any, LiteralString, cast

import psycopg
from _common import SESSION_STEPS, bench_schema, drop_schema, postgres_url
from psycopg import sql

import weavegraph as wg
from weavegraph.checkpoint.postgres import PostgresCheckpointer
from weavegraph.events.model import ATTEMPT_RESTARTED_SCOPE
from weavegraph.queue import QueueClient

BENCH_DIR = Path(__file__).resolve().parent
WORKER_COUNTS = (1, 2, 4)
CONCURRENCY = 8
"""Sessions each worker runs at once (``weavegraph worker --concurrency``)."""
LEASE_S = 30.0
"""The throughput runs' lease (the default): no lease expires while they run."""
TAKEOVER_LEASE_S = 2.0
TAKEOVER_SESSIONS = 16
TAKEOVER_SLEEP_MS = 400
"""Each node of a takeover session sleeps this long: the session is mid-run at the kill."""
ENQUEUE_AT_ONCE = 50
TIMEOUT_S = 600.0


@dataclass(frozen=True, slots=True)
class Throughput:
    workers: int
    sessions_per_s: float
    commits_per_s: float
    span_s: float
    wall_s: float


def worker_command(url: str, workers_args: Sequence[str]) -> list[str]:
    return [sys.executable, "-m", "weavegraph.cli", "worker", "worker_app:app", "--db", url,
            *workers_args]  # fmt: skip


def start_worker(url: str, args: Sequence[str], sleep_ms: int = 0) -> subprocess.Popen[bytes]:
    """A ``weavegraph worker`` of ``worker_app``; its output goes to a temporary file."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(BENCH_DIR), os.environ.get("PYTHONPATH", "")]),
        "WG_BENCH_NODE_SLEEP_MS": str(sleep_ms),
    }
    log = tempfile.TemporaryFile()  # noqa: SIM115 - open while the worker runs
    proc = subprocess.Popen(worker_command(url, args), env=env, stdout=log, stderr=log)
    LOGS[proc.pid] = log
    return proc


LOGS: dict[int, IO[bytes]] = {}
"""Each worker's output, by process id (shown when one fails)."""


def output(proc: subprocess.Popen[bytes]) -> str:
    log = LOGS[proc.pid]
    log.seek(0)
    return log.read().decode(errors="replace")[-2000:]


@contextmanager
def running(procs: list[subprocess.Popen[bytes]]) -> Iterator[list[subprocess.Popen[bytes]]]:
    """The workers, drained with SIGTERM when the block ends (killed if they hang)."""
    try:
        yield procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def schema_url(url: str, schema: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}schema={schema}"


async def enqueue(url: str, schema: str, ids: Sequence[str]) -> None:
    """Queue a start request for each session (the schema is migrated on connect)."""
    cp = await PostgresCheckpointer.connect(url, schema=schema, max_size=4)
    try:
        client = QueueClient(cp)
        gate = asyncio.Semaphore(ENQUEUE_AT_ONCE)
        state = wg.VersionedState.builder().with_extra("last", -1).build()

        async def one(sid: str) -> None:
            async with gate:
                await client.enqueue(sid, state)

        await asyncio.gather(*(one(sid) for sid in ids))
    finally:
        await cp.close()


def query(url: str, schema: str, text: str, params: Sequence[Any] = ()) -> list[Any]:
    statement = sql.SQL(cast("LiteralString", text)).format(schema=sql.Identifier(schema))
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(statement, params).fetchall()


def wait_until(url: str, schema: str, text: str, wanted: int, procs: Sequence[Any]) -> None:
    """Poll ``text`` (a count) until it reaches ``wanted``; SystemExit if a worker died."""
    deadline = time.monotonic() + TIMEOUT_S
    while query(url, schema, text)[0][0] < wanted:
        for proc in procs:
            if proc.poll() is not None and proc.returncode != -signal.SIGKILL:
                raise SystemExit(f"a worker exited: {output(proc)}")
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {wanted}: {text}")
        time.sleep(0.1)


def wait_connected(url: str, pid: int) -> None:
    """Until the worker with process id ``pid`` is connected (its listener, its pool)."""
    deadline = time.monotonic() + TIMEOUT_S
    name = f"weavegraph worker %:{pid}"
    with psycopg.connect(url, autocommit=True) as conn:
        ask = "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE %s"
        while cast("Any", conn.execute(ask, (name,)).fetchone())[0] < 2:
            if time.monotonic() > deadline:
                raise SystemExit(f"worker {pid} never connected")
            time.sleep(0.05)


def throughput(url: str, size: int, workers: int, concurrency: int) -> Throughput:
    schema = f"{bench_schema('weavegraph')}_w{workers}"
    ids = [f"w{i}" for i in range(size)]
    try:
        asyncio.run(enqueue(url, schema, ids))
        args = ["--concurrency", str(concurrency), "--lease", str(LEASE_S)]
        started = time.perf_counter()
        db = schema_url(url, schema)
        with running([start_worker(db, args) for _ in range(workers)]) as procs:
            done = "SELECT count(*) FROM {schema}.sessions WHERE run_status = 'completed'"
            wait_until(url, schema, done, size, procs)
            wall = time.perf_counter() - started
        first, last, commits = query(
            url, schema, "SELECT min(created_at), max(created_at), count(*) FROM {schema}.steps"
        )[0]
        assert commits == size * (SESSION_STEPS + 1), commits  # step 0 and one per node
        span = (cast("datetime", last) - cast("datetime", first)).total_seconds()
        return Throughput(workers, size / span, commits / span, span, wall)
    finally:
        drop_schema(url, schema)


def takeover(url: str, sessions: int) -> list[float]:
    """Seconds from the kill -9 of the worker holding ``sessions`` to each one's restart."""
    schema = f"{bench_schema('weavegraph')}_takeover"
    ids = [f"t{i}" for i in range(sessions)]
    lease = ["--lease", str(TAKEOVER_LEASE_S)]
    try:
        asyncio.run(enqueue(url, schema, ids))
        db = schema_url(url, schema)
        holder = start_worker(db, ["--concurrency", str(sessions), *lease], TAKEOVER_SLEEP_MS)
        with running([holder]) as procs:
            # every session claimed and one step past its start: it is mid-run at the kill
            mid_run = "SELECT count(*) FROM {schema}.sessions WHERE latest_step >= 1 AND run_status = 'running'"
            wait_until(url, schema, mid_run, sessions, procs)
            with running([start_worker(db, ["--concurrency", str(sessions), *lease])]) as other:
                wait_connected(url, other[0].pid)  # up and idle: nothing is queued
                killed_at = time.time()
                holder.send_signal(signal.SIGKILL)
                done = "SELECT count(*) FROM {schema}.sessions WHERE run_status = 'completed'"
                wait_until(url, schema, done, sessions, [*procs, *other])
        return [restarted_at(url, schema, sid) - killed_at for sid in ids]
    finally:
        drop_schema(url, schema)


def restarted_at(url: str, schema: str, sid: str) -> float:
    """When ``sid``'s run restarted under the new claim (its ``attempt_restarted`` event)."""
    rows = query(url, schema, "SELECT data FROM {schema}.events WHERE session_id = %s", (sid,))
    for (data,) in rows:
        event = json.loads(bytes(data))
        if event["scope"] == ATTEMPT_RESTARTED_SCOPE:
            return datetime.fromisoformat(event["timestamp"]).timestamp()
    raise SystemExit(f"session {sid} was never taken over")


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def measure(
    size: int, worker_counts: Sequence[int], concurrency: int, takeover_sessions: int
) -> dict[str, Any]:
    """Every measurement, as the harness's JSON fields (``value``: sessions/s of the most
    workers)."""
    url = postgres_url()
    result: dict[str, Any] = {"concurrency": concurrency, "lease_s": TAKEOVER_LEASE_S}
    for count in worker_counts:
        run = throughput(url, size, count, concurrency)
        result[f"sessions_per_s_{count}w"] = run.sessions_per_s
        result[f"commits_per_s_{count}w"] = run.commits_per_s
        result[f"wall_s_{count}w"] = run.wall_s
    result["value"] = result[f"sessions_per_s_{worker_counts[-1]}w"]
    waits = takeover(url, takeover_sessions)
    result["takeover_p50_s"] = statistics.median(waits)
    result["takeover_p95_s"] = percentile(waits, 0.95)
    result["takeover_p50_leases"] = result["takeover_p50_s"] / TAKEOVER_LEASE_S
    result["takeover_p95_leases"] = result["takeover_p95_s"] / TAKEOVER_LEASE_S
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=1000, help="queued sessions per worker count")
    parser.add_argument("--workers", default=",".join(map(str, WORKER_COUNTS)))
    parser.add_argument("--concurrency", type=int, default=CONCURRENCY)
    parser.add_argument("--takeover-sessions", type=int, default=TAKEOVER_SESSIONS)
    parser.add_argument("--quick", action="store_true", help="20 sessions, 4 taken over (smoke)")
    args = parser.parse_args()
    size, taken = (20, 4) if args.quick else (args.size, args.takeover_sessions)
    counts = [int(n) for n in args.workers.split(",")]
    result = measure(size, counts, args.concurrency, taken)
    for count in counts:
        print(
            f"{count} worker(s): {result[f'sessions_per_s_{count}w']:.1f} sessions/s, "
            f"{result[f'commits_per_s_{count}w']:.0f} step commits/s"
        )
    print(
        f"takeover after kill -9 (lease {TAKEOVER_LEASE_S:g} s): "
        f"p50 {result['takeover_p50_s']:.2f} s ({result['takeover_p50_leases']:.2f}x lease), "
        f"p95 {result['takeover_p95_s']:.2f} s ({result['takeover_p95_leases']:.2f}x lease)"
    )


if __name__ == "__main__":
    main()
