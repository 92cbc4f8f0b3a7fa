"""What plain Python costs on this machine: the floor under every framework number.

Prints one JSON line: the cost of one bare asyncio task (create + gather of 1000 no-op
coroutines, per task) and of one small SQLite WAL commit (``synchronous=NORMAL``, per commit).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

TASKS = 1000
COMMITS = 500


async def _noop() -> None:
    return None


async def asyncio_task_us() -> float:
    samples: list[float] = []
    for _ in range(5):
        t0 = time.perf_counter()
        await asyncio.gather(*(asyncio.create_task(_noop()) for _ in range(TASKS)))
        samples.append((time.perf_counter() - t0) / TASKS * 1e6)
    return statistics.median(samples)


def sqlite_commit_us(workdir: Path) -> float:
    conn = sqlite3.connect(workdir / "floor.db", isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)")
        blob = b"x" * 200
        t0 = time.perf_counter()
        for i in range(COMMITS):
            conn.execute("BEGIN")
            conn.execute("INSERT INTO t VALUES (?, ?)", (i, blob))
            conn.execute("COMMIT")
        return (time.perf_counter() - t0) / COMMITS * 1e6
    finally:
        conn.close()


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="weavegraph-floor-") as tmp:
        record = {
            "asyncio_task_us": asyncio.run(asyncio_task_us()),
            "sqlite_wal_commit_us": sqlite_commit_us(Path(tmp)),
        }
    sys.stdout.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
