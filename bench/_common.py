"""What both workload scripts share: the workload table, the command line, RSS and the JSON line.

Each workload script is run as ``python bench/<fw>_workloads.py WORKLOAD --size N`` in a fresh
process and prints exactly one JSON line on stdout. Keeping the measured graphs identical on both
sides is the point: the node bodies are trivial, so framework overhead is what is measured.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class Workload:
    """One row of SPEC section 8: its default and quick sizes and how its main number reads."""

    name: str
    size: int
    quick_size: int
    metric: str
    unit: str
    higher_is_better: bool = False
    target: float | None = None
    """SPEC section 8: how many times better than LangGraph weavegraph must be (None: no target)."""
    frameworks: tuple[str, ...] = ("weavegraph", "langgraph")
    """Who runs it (LangGraph has no open-source equivalent of some workloads)."""


WORKLOADS: dict[str, Workload] = {
    w.name: w
    for w in (
        Workload("chain100", 100, 10, "per_node", "us/node", target=10),
        Workload("fanout1000", 1000, 20, "per_task", "us/task", target=10),
        Workload("loop1000", 1000, 20, "per_step", "us/step", target=10),
        Workload("chain100_sqlite", 100, 10, "per_checkpoint", "us/ckpt", target=10),
        Workload("stream_chain100", 100, 10, "stream_over_invoke", "x invoke"),
        Workload("stream_updates", 20000, 200, "events_per_s", "ev/s", True),
        Workload("stream_steps", 1000, 20, "events_per_s", "ev/s", True, target=10),
        Workload("state_growth", 1000, 30, "per_step", "us/step"),
        Workload("sessions", 1000, 20, "sessions_per_s", "sessions/s", True, target=10),
        Workload("sessions_pg", 1000, 20, "sessions_per_s", "sessions/s", True, target=10),
        Workload("large_extra", 100, 10, "per_step", "us/step"),
        Workload("map_reduce", 10_000, 50, "per_task", "us/task", target=10),
        Workload(
            "workers", 1000, 20, "sessions_per_s", "sessions/s", True, frameworks=("weavegraph",)
        ),
    )
}

PAYLOAD_BYTES = 1024
"""What one state_growth step appends."""
STREAM_YIELD_EVERY = 100
"""stream_updates nodes give the event loop a turn this often, on both sides alike."""
SESSION_STEPS = 5
"""sessions: each session runs a chain of this many nodes, one checkpoint per step."""
SESSIONS_AT_ONCE = 50
"""sessions: how many sessions run concurrently through the one runner / compiled graph."""
LARGE_VALUE_BYTES = 10 * 1024 * 1024
"""large_extra: the untouched value every step carries (each step changes one small key)."""
POSTGRES_POOL_SIZE = 10
"""sessions_pg: connections in the pool on both sides (weavegraph's default pool size)."""


def postgres_url() -> str:
    """The server sessions_pg uses: ``BENCH_POSTGRES_URL``, else the test server's URL, else the
    local default. Each run works in a schema of its own and drops it afterwards."""
    return (
        os.environ.get("BENCH_POSTGRES_URL")
        or os.environ.get("WEAVEGRAPH_POSTGRES_TEST_URL")
        or "postgresql://postgres@127.0.0.1:5432/postgres"
    )


def bench_schema(framework: str) -> str:
    return f"bench_{framework[:2]}_{os.getpid()}"


def drop_schema(url: str, schema: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


async def run_sessions(count: int, one: Callable[[int], Coroutine[Any, Any, None]]) -> float:
    """Run ``one(i)`` for ``i`` in ``range(count)``, SESSIONS_AT_ONCE at a time; the seconds taken."""
    gate = asyncio.Semaphore(SESSIONS_AT_ONCE)

    async def gated(index: int) -> None:
        async with gate:
            await one(index)

    t0 = now()
    await asyncio.gather(*(gated(i) for i in range(count)))
    return now() - t0


STREAM_REPS = 30
"""stream_chain100: runs of each kind, alternated; the best of each are compared (the best is
what the framework costs; slower runs measure other processes on a busy machine)."""


async def stream_vs_invoke(
    streamed: Callable[[], Coroutine[Any, Any, float]],
    invoked: Callable[[], Coroutine[Any, Any, float]],
    size: int,
) -> dict[str, Any]:
    """stream_chain100 on either side: the best streamed run over the best plain one."""
    await streamed()  # warm-up: first-call caches on both sides
    await invoked()
    stream_s: list[float] = []
    invoke_s: list[float] = []
    for _ in range(STREAM_REPS):
        stream_s.append(await streamed())
        invoke_s.append(await invoked())
    stream = min(stream_s)
    invoke = min(invoke_s)
    return {
        "value": stream / invoke,
        "total_s": sum(stream_s) + sum(invoke_s),
        "stream_us_per_node": stream / size * 1e6,
        "invoke_us_per_node": invoke / size * 1e6,
        "extra_us_per_event": (stream - invoke) / size * 1e6,
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """``WORKLOAD --size N [--workdir DIR]``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("workload", choices=sorted(WORKLOADS))
    parser.add_argument("--size", type=int, default=None)
    parser.add_argument("--workdir", type=Path, default=None, help="where SQLite files go")
    args = parser.parse_args(argv)
    if args.size is None:
        args.size = WORKLOADS[args.workload].size
    if args.workdir is None:
        args.workdir = Path.cwd()
    args.workdir.mkdir(parents=True, exist_ok=True)
    return args


def max_rss_kb() -> int:
    """Peak resident set size of this process so far, in KiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def now() -> float:
    return time.perf_counter()


def files_size(paths: Sequence[Path]) -> int:
    """Total bytes of the files that exist (a SQLite database plus its -wal and -shm)."""
    return sum(p.stat().st_size for p in paths if p.exists())


def bytes_written() -> int:
    """Bytes this process passed to write() so far, every thread included (Linux; 0 elsewhere)."""
    try:
        text = Path("/proc/self/io").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    return 0


def large_step_stats(marks: Sequence[tuple[float, int]], warmup: int = 2) -> dict[str, float]:
    """Per-step time (us) and bytes written, from ``(time, bytes_written)`` taken at each entry
    into the looping node, leaving out the first ``warmup`` steps (the first save of the large
    value)."""
    (t0, w0), (t1, w1) = marks[warmup], marks[-1]
    steps = max(1, len(marks) - 1 - warmup)
    return {"value": (t1 - t0) / steps * 1e6, "bytes_per_step": (w1 - w0) / steps}


def sqlite_files(db: Path) -> list[Path]:
    return [db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")]


def step_window_stats(stamps: Sequence[float], window: int = 100) -> dict[str, float]:
    """Mean step time (us) of the first and last ``window`` steps, from node-entry timestamps.

    A step's time is the gap between two consecutive entries into the looping node, so it covers
    everything the framework does between them (merge, checkpoint, routing), measured identically
    on both sides.
    """
    gaps = [(b - a) * 1e6 for a, b in itertools.pairwise(stamps)]
    if not gaps:
        return {"first_us": 0.0, "last_us": 0.0, "growth": 0.0}
    window = max(1, min(window, len(gaps) // 3 or 1))
    first = statistics.fmean(gaps[:window])
    last = statistics.fmean(gaps[-window:])
    return {"first_us": first, "last_us": last, "growth": last / first if first else 0.0}


def emit(framework: str, workload: str, size: int, **fields: Any) -> None:
    """Print the one JSON result line (the harness reads only the last stdout line)."""
    spec = WORKLOADS[workload]
    record = {
        "framework": framework,
        "workload": workload,
        "size": size,
        "metric": spec.metric,
        "unit": spec.unit,
        "pid": os.getpid(),
        "python": sys.version.split()[0],
        "rss_peak_kb": max_rss_kb(),
        **fields,
    }
    sys.stdout.write(json.dumps(record, sort_keys=True) + "\n")
    sys.stdout.flush()


WorkloadFn = Callable[[int, Path], Coroutine[Any, Any, dict[str, Any]]]


def run_workload_cli(framework: str, workloads: Sequence[WorkloadFn], rss_import_kb: int) -> None:
    """The ``*_workloads.py`` entry point: run the workload named on the command line (each
    function is named after its workload) and print its result line."""
    by_name = {workload.__name__: workload for workload in workloads}
    args = parse_args()
    result = asyncio.run(by_name[args.workload](args.size, args.workdir))
    emit(framework, args.workload, args.size, rss_import_kb=rss_import_kb, **result)
