"""Why SQLiteCheckpointer drives sqlite3 from one worker thread instead of through aiosqlite.

A checkpoint save is one short transaction of a few statements. aiosqlite hops to its thread and back
for every statement; our checkpointer hops once per transaction. This script times the same
4-statement transaction (BEGIN IMMEDIATE, INSERT, UPDATE, COMMIT) three ways:

    .bench-venv/bin/python bench/sqlite_driver.py [--saves 2000]

aiosqlite comes with langgraph-checkpoint-sqlite in the bench environment.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import tempfile
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

PAYLOAD = b"x" * 100


def _create(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE sessions(id TEXT PRIMARY KEY, latest INTEGER)")
    conn.execute("CREATE TABLE steps(session_id TEXT, step INTEGER, data BLOB)")
    conn.execute("INSERT INTO sessions VALUES ('s', 0)")
    return conn


def _save(conn: sqlite3.Connection, step: int) -> None:
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO steps VALUES ('s', ?, ?)", (step, PAYLOAD))
    conn.execute("UPDATE sessions SET latest = ? WHERE id = 's'", (step,))
    conn.execute("COMMIT")


async def per_statement_hops_aiosqlite(path: Path, saves: int) -> float:
    import aiosqlite  # pyright: ignore[reportMissingImports]  (only in the bench environment)

    _create(path).close()
    async with aiosqlite.connect(path, isolation_level=None) as db:
        started = time.perf_counter()
        for step in range(saves):
            await db.execute("BEGIN IMMEDIATE")
            await db.execute("INSERT INTO steps VALUES ('s', ?, ?)", (step, PAYLOAD))
            await db.execute("UPDATE sessions SET latest = ? WHERE id = 's'", (step,))
            await db.execute("COMMIT")
        return time.perf_counter() - started


async def one_hop_per_transaction(path: Path, saves: int) -> float:
    conn = _create(path)
    with ThreadPoolExecutor(1) as writer:
        started = time.perf_counter()
        for step in range(saves):
            await asyncio.wrap_future(writer.submit(_save, conn, step))
        elapsed = time.perf_counter() - started
    conn.close()
    return elapsed


async def no_hop_blocking_floor(path: Path, saves: int) -> float:
    conn = _create(path)
    started = time.perf_counter()
    for step in range(saves):
        _save(conn, step)
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed


async def main(saves: int) -> None:
    ways: list[tuple[str, Callable[[Path, int], Awaitable[float]]]] = [
        ("aiosqlite, a hop per statement", per_statement_hops_aiosqlite),
        ("sqlite3 + one writer thread, a hop per save", one_hop_per_transaction),
        ("sqlite3 on the loop (blocking; the floor)", no_hop_blocking_floor),
    ]
    with tempfile.TemporaryDirectory() as folder:
        for repetition in range(2):
            for index, (label, way) in enumerate(ways):
                path = Path(folder) / f"{repetition}-{index}.db"
                elapsed = await way(path, saves)
                print(f"{label:48s} {elapsed / saves * 1e6:8.1f} us/save")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Time a checkpoint-sized SQLite save three ways.")
    parser.add_argument("--saves", type=int, default=2000)
    asyncio.run(main(parser.parse_args().saves))
