"""Every step left in ``steps`` loads after hand-written deletes of any subset; migration 1 -> 2.

A step's ``extra`` is stored whole or as one delta over a row of the session's ``extra_log``, so deleting
steps (the seed's SQL from the plain sqlite3 shell, foreign keys off) never orphans another step.
"""

from __future__ import annotations

import asyncio
import random
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from checkpoint_histories import check_survivors, load_all

from weavegraph.checkpoint import _codec as codec
from weavegraph.checkpoint._migration import latest_version
from weavegraph.checkpoint.base import Checkpoint
from weavegraph.checkpoint.sqlite import SQLiteCheckpointer
from weavegraph.checkpoint.sqlite._schema import SQLITE_MIGRATIONS
from weavegraph.testing.conformance import evolving_extra, evolving_history, make_checkpoint

SESSIONS = ("a", "b")
STEPS = 60


async def _save_sessions(db: Path) -> dict[tuple[str, int], Checkpoint]:
    async with await SQLiteCheckpointer.connect(f"sqlite://{db}") as cp:
        for sid in SESSIONS:
            for checkpoint in evolving_history(sid, STEPS):
                await cp.save(checkpoint)
        await cp.checkpoint_wal()
        return await load_all(cp, SESSIONS)


def _integrity_ok(db: Path) -> None:
    plain = sqlite3.connect(db)
    try:
        assert plain.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        plain.close()


@pytest.fixture(scope="module")
def saved_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[Any, Checkpoint]]:
    db = tmp_path_factory.mktemp("snap") / "base.db"
    before = asyncio.run(_save_sessions(db))
    return db, before


def _bundle(tmp_path: Path, base: Path) -> Path:
    db = tmp_path / "copy.db"
    shutil.copyfile(base, db)
    return db


async def test_every_step_is_self_contained(
    saved_db: tuple[Path, dict[Any, Checkpoint]],
) -> None:
    db, before = saved_db
    assert {key: cp.state for key, cp in before.items()} == {
        (sid, cp.step): cp.state for sid in SESSIONS for cp in evolving_history(sid, STEPS)
    }
    plain = sqlite3.connect(db)
    try:
        kinds = dict(
            plain.execute(
                "SELECT base IS NULL, COUNT(*) FROM extra_log WHERE session_id = 'a' GROUP BY 1"
            ).fetchall()
        )
        (deltas,) = plain.execute(
            "SELECT COUNT(*) FROM steps WHERE extra_ref IS NOT NULL AND extra_data IS NOT NULL"
        ).fetchone()
    finally:
        plain.close()
    # Several snapshots and log deltas over them; most steps store a delta over a log row.
    assert kinds[1] >= 2
    assert kinds[0] >= 2
    assert deltas > 0


@pytest.mark.parametrize("seed", range(12))
async def test_random_deletes_leave_every_remaining_step_loadable(
    tmp_path: Path, saved_db: tuple[Path, dict[Any, Checkpoint]], seed: int
) -> None:
    base, before = saved_db
    db = _bundle(tmp_path, base)
    chooser = random.Random(seed)
    doomed = [key for key in before if chooser.random() < chooser.choice((0.2, 0.5, 0.9))]
    plain = sqlite3.connect(db)
    plain.executemany("DELETE FROM steps WHERE session_id = ? AND step = ?", doomed)
    plain.commit()
    plain.close()
    _integrity_ok(db)
    async with await SQLiteCheckpointer.connect(f"sqlite://{db}") as cp:
        await check_survivors(cp, before, doomed, SESSIONS, chooser)
    _integrity_ok(db)


async def test_unreached_extra_log_rows_are_collected_by_vacuum(
    tmp_path: Path, saved_db: tuple[Path, dict[Any, Checkpoint]]
) -> None:
    db = _bundle(tmp_path, saved_db[0])
    plain = sqlite3.connect(db)
    plain.execute("DELETE FROM steps WHERE step < 45")
    plain.commit()
    (total,) = plain.execute("SELECT COUNT(*) FROM extra_log").fetchone()
    plain.close()
    async with await SQLiteCheckpointer.connect(f"sqlite://{db}") as cp:
        await cp.vacuum()
        await load_all(cp, SESSIONS)
    plain = sqlite3.connect(db)
    (left,) = plain.execute("SELECT COUNT(*) FROM extra_log").fetchone()
    (unreached,) = plain.execute(
        "WITH RECURSIVE live(id) AS (SELECT extra_ref FROM steps WHERE extra_ref IS NOT NULL "
        "UNION SELECT e.base FROM extra_log e JOIN live ON e.id = live.id) "
        "SELECT COUNT(*) FROM extra_log WHERE id NOT IN (SELECT id FROM live)"
    ).fetchone()
    plain.close()
    assert unreached == 0
    assert 0 < left < total


async def test_deleting_the_session_in_the_shell_removes_its_extra_log(
    tmp_path: Path, saved_db: tuple[Path, dict[Any, Checkpoint]]
) -> None:
    db = _bundle(tmp_path, saved_db[0])
    plain = sqlite3.connect(db)
    plain.execute("DELETE FROM sessions WHERE id = ?", ("a",))
    plain.commit()
    counts = [
        plain.execute(f"SELECT COUNT(*) FROM {table} WHERE session_id = 'a'").fetchone()[0]
        for table in ("steps", "extra_log", "channel_log")
    ]
    plain.close()
    assert counts == [0, 0, 0]


# --- migration from version 1 (extra deltas chained over previous steps) --------------------


def _build_version_1(source: Path, target: Path) -> list[tuple[str, int]]:
    """A version-1 database holding ``source``'s sessions, its extras chained step over step.

    Returns the steps whose chain was broken on purpose (their base row is missing).
    """
    plain = sqlite3.connect(target)
    for statement in SQLITE_MIGRATIONS[0].statements:
        plain.execute(statement)
    plain.execute("INSERT INTO weavegraph_schema (version) VALUES (1)")
    plain.execute("ATTACH DATABASE ? AS src", (str(source),))
    for table in ("sessions", "session_extra", "channel_log"):
        plain.execute(f"INSERT INTO {table} SELECT * FROM src.{table}")
    plain.execute("INSERT INTO events SELECT session_id, seq, data FROM src.events")
    columns = (
        "session_id, step, created_at, ran_nodes, skipped_nodes, updated_channels, frontier, "
        "versions, cursor, msg_start, msg_count, err_start, err_count"
    )
    plain.execute(f"INSERT INTO steps ({columns}) SELECT {columns} FROM src.steps")
    plain.commit()
    plain.execute("DETACH DATABASE src")
    for sid in SESSIONS:
        previous: dict[str, Any] | None = None
        for step in range(STEPS):
            extra = evolving_extra(step)
            if previous is None or step % 10 == 0:
                base, data = None, codec.dumps(extra)  # a snapshot
            else:
                delta = codec.extra_delta(previous, extra)
                base, data = step - 1, None if delta is None else codec.dumps(delta)
            plain.execute(
                "UPDATE steps SET extra_base = ?, extra_data = ? WHERE session_id = ? AND step = ?",
                (base, data, sid, step),
            )
            previous = extra
        _as_version_1_head(plain, sid, evolving_extra(STEPS - 1))
    # Session b already lost step 12 to the seed's delete: 13..19 were unloadable under v1.
    plain.execute("DELETE FROM steps WHERE session_id = 'b' AND step = 12")
    broken = [("b", step) for step in range(12, 20)]
    plain.commit()
    plain.close()
    return broken


def _as_version_1_head(plain: sqlite3.Connection, sid: str, extra: dict[str, Any]) -> None:
    """The head as version 1 wrote it: a large extra whole in session_extra, not referenced."""
    (blob,) = plain.execute("SELECT head FROM sessions WHERE id = ?", (sid,)).fetchone()
    head = codec.loads(blob)
    if "extra" in head:
        return
    head.pop("extra_ref")
    head.pop("extra_delta")
    plain.execute("UPDATE sessions SET head = ? WHERE id = ?", (codec.dumps(head), sid))
    plain.execute(
        "INSERT INTO session_extra (session_id, extra) VALUES (?, ?)", (sid, codec.dumps(extra))
    )


async def test_migration_2_converts_a_version_1_database(
    tmp_path: Path, saved_db: tuple[Path, dict[Any, Checkpoint]]
) -> None:
    source, before = saved_db
    db = tmp_path / "v1.db"
    broken = _build_version_1(source, db)
    async with await SQLiteCheckpointer.connect(f"sqlite://{db}") as cp:
        assert await cp.schema_version() == latest_version(SQLITE_MIGRATIONS)
        for sid, step in before:
            found = await cp.load(sid, step)
            if (sid, step) in broken:
                assert found is None  # lost before the migration; still listed when present
            else:
                assert found == before[(sid, step)], (sid, step)
    _integrity_ok(db)
    # After the migration, the seed's delete no longer breaks the remaining steps.
    plain = sqlite3.connect(db)
    plain.execute("DELETE FROM steps WHERE step % 4 = 1")
    plain.commit()
    plain.close()
    async with await SQLiteCheckpointer.connect(f"sqlite://{db}") as cp:
        for sid, step in before:
            if step % 4 != 1 and (sid, step) not in broken:
                assert await cp.load(sid, step) == before[(sid, step)], (sid, step)


async def test_extra_storage_grows_linearly_with_what_was_written(tmp_path: Path) -> None:
    """600 steps each adding a 100-byte key: stored extra bytes stay a small multiple of that."""
    db = tmp_path / "grow.db"
    extra: dict[str, Any] = {}
    saved: list[Checkpoint] = []
    async with await SQLiteCheckpointer.connect(f"sqlite://{db}") as cp:
        for step in range(600):
            extra[f"key{step:05d}"] = "x" * 100
            saved.append(make_checkpoint("g", step, extra=dict(extra)))
            await cp.save(saved[-1])
        for step in (0, 7, 123, 301, 599):
            loaded = await cp.load("g", step)
            assert loaded is not None
            assert loaded.state == saved[step].state
    plain = sqlite3.connect(db)
    (in_steps,) = plain.execute("SELECT SUM(LENGTH(extra_data)) FROM steps").fetchone()
    (in_log,) = plain.execute("SELECT SUM(LENGTH(data)) FROM extra_log").fetchone()
    plain.close()
    written = 600 * len(b'"key00000":"' + b"x" * 100 + b'",')
    # A full extra per step would be ~300 times what was written; deltas chained on steps ~2.
    assert in_steps + in_log < 8 * written
