"""SQLite specifics: URLs, the seed's maintenance SQL, prune, refusals, sharing, processes, growth."""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from checkpoint_histories import evolving

from weavegraph.checkpoint._migration import latest_version
from weavegraph.checkpoint.base import Checkpoint
from weavegraph.checkpoint.sqlite import SQLiteCheckpointer, sqlite_path
from weavegraph.checkpoint.sqlite._schema import SQLITE_MIGRATIONS
from weavegraph.config import migrate
from weavegraph.errors import (
    CheckpointError,
    ConfigError,
    DatabaseSchemaTooNew,
    NotAWeavegraphDatabase,
)
from weavegraph.state import Message
from weavegraph.testing.conformance import make_checkpoint

OLD = datetime.now(UTC) - timedelta(days=40)


def exists(path: str) -> bool:
    return os.path.exists(path)


async def save_all(cp: SQLiteCheckpointer, checkpoints: list[Checkpoint]) -> None:
    for checkpoint in checkpoints:
        await cp.save(checkpoint)


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite://workflow.db", "workflow.db"),
        ("sqlite:///abs/dir/w.db", "/abs/dir/w.db"),
        ("sqlite://data/w.db?mode=rwc", "data/w.db"),
        ("sqlite::memory:", ":memory:"),
        ("sqlite://:memory:", ":memory:"),
        ("plain/file.db", "plain/file.db"),
    ],
)
def test_sqlite_urls(url: str, path: str) -> None:
    assert sqlite_path(url) == path


def test_sqlite_url_without_file_is_refused() -> None:
    with pytest.raises(ConfigError):
        sqlite_path("sqlite://")


@pytest.mark.parametrize("url", ["postgresql://postgres@db/test", "http://host/x.db"])
def test_another_scheme_is_refused_not_taken_for_a_path(url: str) -> None:
    with pytest.raises(ConfigError, match="not a SQLite URL"):
        sqlite_path(url)


async def test_a_path_that_cannot_be_a_database_is_a_checkpoint_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(CheckpointError, match="cannot open the SQLite database") as caught:
        await SQLiteCheckpointer.connect(f"sqlite://{tmp_path}/file/below.db")
    assert isinstance(caught.value.__cause__, OSError)
    with pytest.raises(CheckpointError, match="Is a directory"):
        await SQLiteCheckpointer.connect(f"sqlite://{tmp_path}")


async def test_parent_folders_are_created(tmp_path: Path) -> None:
    async with await SQLiteCheckpointer.connect(f"sqlite://{tmp_path}/a/b/c.db") as cp:
        await cp.save(make_checkpoint("s", 0))
    assert (tmp_path / "a" / "b" / "c.db").exists()


async def test_seed_maintenance_sql_from_a_plain_connection(tmp_path: Path) -> None:
    """The seed's SQL, unchanged, with foreign keys off; the latest checkpoint stays loadable."""
    db = tmp_path / "workflow.db"
    old = evolving("old", 6, start=OLD)
    mixed = evolving("mixed", 6, start=OLD)
    async with await SQLiteCheckpointer.connect(f"sqlite://{db}") as cp:
        await save_all(cp, old)
        await save_all(cp, mixed[:5])
        await cp.save(evolving("mixed", 6)[5])  # only the last step is recent
        await cp.append_events("old", [{"seq": 0}])
    plain = sqlite3.connect(db)
    assert plain.execute("PRAGMA foreign_keys").fetchone() == (0,)
    counts = dict(plain.execute("SELECT session_id, COUNT(*) FROM steps GROUP BY session_id"))
    assert counts == {"old": 6, "mixed": 6}
    plain.execute("DELETE FROM steps WHERE created_at < datetime('now', '-30 days')")
    plain.commit()
    counts = dict(plain.execute("SELECT session_id, COUNT(*) FROM steps GROUP BY session_id"))
    assert counts == {"mixed": 1}
    async with await SQLiteCheckpointer.connect(f"sqlite://{db}") as cp:
        latest = await cp.load_latest("old")
        assert latest is not None
        assert latest.state == old[-1].state
        assert (await cp.load("mixed", 5)) is not None
        assert [info.step for info in await cp.history("old")] == []
    plain.execute("DELETE FROM sessions WHERE id = ?", ("old",))
    plain.commit()
    for table, column in (
        ("steps", "session_id"),
        ("channel_log", "session_id"),
        ("session_extra", "session_id"),
        ("extra_log", "session_id"),
        ("events", "session_id"),
    ):
        assert plain.execute(f"SELECT COUNT(*) FROM {table} WHERE {column} = 'old'").fetchone() == (
            0,
        )
    plain.close()


@pytest.mark.skipif(shutil.which("sqlite3") is None, reason="the sqlite3 shell is not installed")
async def test_seed_sql_from_the_sqlite3_shell(tmp_path: Path) -> None:
    db = tmp_path / "workflow.db"
    async with await SQLiteCheckpointer.connect(f"sqlite://{db}") as cp:
        await save_all(cp, evolving("a", 3))
        await save_all(cp, evolving("b", 2))

    def shell(sql: str) -> str:
        return subprocess.run(
            ["sqlite3", str(db), sql], check=True, capture_output=True, text=True
        ).stdout

    assert (
        shell("SELECT session_id, COUNT(*) FROM steps GROUP BY session_id ORDER BY 1")
        == "a|3\nb|2\n"
    )
    shell("DELETE FROM sessions WHERE id = 'a'")
    assert shell("SELECT COUNT(*) FROM steps WHERE session_id = 'a'") == "0\n"
    async with await SQLiteCheckpointer.connect(f"sqlite://{db}") as cp:
        assert await cp.load_latest("a") is None
        assert [s.session_id for s in await cp.list_sessions()] == ["b"]


async def test_prune_keeps_newest_steps_per_session(tmp_path: Path) -> None:
    """The seed's keep-last SQL keeps a global top-N of step numbers; prune keeps N per session."""
    db = tmp_path / "p.db"
    long, short = evolving("long", 10), evolving("short", 3)
    async with await SQLiteCheckpointer.connect(f"sqlite://{db}") as cp:
        await save_all(cp, long)
        await save_all(cp, short)
        seed_sql = (
            "SELECT session_id, step FROM steps WHERE step NOT IN (SELECT step FROM steps "
            "WHERE session_id = steps.session_id ORDER BY step DESC LIMIT 2)"
        )
        with sqlite3.connect(db) as plain:
            doomed_by_seed = set(plain.execute(seed_sql).fetchall())
        assert ("short", 2) in doomed_by_seed  # the seed would delete short's latest step
        result = await cp.prune(keep_last=2)
        assert result.steps_deleted == 8 + 1
        assert [i.step for i in await cp.history("long")] == [8, 9]
        assert [i.step for i in await cp.history("short")] == [1, 2]
        for checkpoint in (long[8], long[9], short[1], short[2]):
            loaded = await cp.load(checkpoint.session_id, checkpoint.step)
            assert loaded is not None
            assert loaded.state == checkpoint.state
        await cp.prune(keep_last=0)
        assert [i.step for i in await cp.history("long")] == [9]
        # Saving continues normally after maintenance.
        more = evolving("long", 12)[10:]
        await save_all(cp, more)
        loaded = await cp.load("long", 11)
        assert loaded is not None
        assert loaded.state == more[-1].state


async def test_prune_older_than_keeps_latest_and_chains(tmp_path: Path) -> None:
    async with await SQLiteCheckpointer.connect(f"sqlite://{tmp_path}/o.db") as cp:
        old = evolving("s", 8, start=OLD)
        await save_all(cp, old[:6])
        recent = evolving("s", 8)
        await save_all(cp, recent[6:])
        await save_all(cp, evolving("idle", 4, start=OLD))
        result = await cp.prune(older_than=timedelta(days=30))
        assert result.steps_deleted == 6 + 3
        assert [i.step for i in await cp.history("s")] == [6, 7]
        assert [i.step for i in await cp.history("idle")] == [3]
        loaded = await cp.load("s", 6)
        assert loaded is not None
        assert loaded.state == recent[6].state
        with pytest.raises(ValueError, match="older_than"):
            await cp.prune()


@pytest.mark.parametrize(
    ("content", "error"),
    [
        (b"this is not a database at all" * 10, NotAWeavegraphDatabase),
        (b"SQLite format 3\x00" + b"\xff" * 200, NotAWeavegraphDatabase),
    ],
)
async def test_garbage_files_are_refused_untouched(
    tmp_path: Path, content: bytes, error: type[Exception]
) -> None:
    db = tmp_path / "garbage.db"
    db.write_bytes(content)
    with pytest.raises(error):
        await SQLiteCheckpointer.connect(f"sqlite://{db}")
    assert db.read_bytes() == content


async def test_foreign_database_is_refused_untouched(tmp_path: Path) -> None:
    db = tmp_path / "foreign.db"
    with sqlite3.connect(db) as plain:
        plain.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
        plain.execute("INSERT INTO customers (name) VALUES ('ada')")
    plain.close()
    before = db.read_bytes()
    with pytest.raises(NotAWeavegraphDatabase, match="customers"):
        await SQLiteCheckpointer.connect(f"sqlite://{db}")
    with pytest.raises(NotAWeavegraphDatabase):
        await migrate(f"sqlite://{db}")
    assert db.read_bytes() == before
    assert not exists(f"{db}-wal")


async def test_newer_schema_is_refused_untouched(tmp_path: Path) -> None:
    db = tmp_path / "newer.db"
    async with await SQLiteCheckpointer.connect(f"sqlite://{db}") as cp:
        await cp.save(make_checkpoint("s", 0))
        await cp.checkpoint_wal()
    plain = sqlite3.connect(db)
    plain.execute("INSERT INTO weavegraph_schema (version) VALUES (99)")
    plain.commit()
    plain.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    plain.close()
    before = db.read_bytes()
    with pytest.raises(DatabaseSchemaTooNew, match="99") as raised:
        await SQLiteCheckpointer.connect(f"sqlite://{db}")
    assert raised.value.found == 99
    assert db.read_bytes() == before


async def test_migrate_reports_versions(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path}/m.db"
    latest = latest_version(SQLITE_MIGRATIONS)
    assert latest >= 2
    first = await migrate(url)
    assert (first.before, first.after) == (0, latest)
    again = await migrate(url)
    assert (again.before, again.after, again.applied) == (latest, latest, 0)


async def test_one_connection_per_file_is_shared(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path}/shared.db"
    first = await SQLiteCheckpointer.connect(url)
    second = await SQLiteCheckpointer.connect(f"sqlite://{tmp_path}/./shared.db")
    assert first._store is second._store  # pyright: ignore[reportPrivateUsage]
    await first.save(make_checkpoint("s", 0))
    await first.close()
    await second.save(make_checkpoint("s", 1))
    latest = await second.load_latest("s")
    assert latest is not None
    assert latest.step == 1
    await second.close()


async def test_storage_grows_linearly_with_appended_messages(tmp_path: Path) -> None:
    """200 steps each appending 1 KB: the log holds each message once, steps rows stay small."""
    async with await SQLiteCheckpointer.connect(f"sqlite://{tmp_path}/g.db") as cp:
        messages: tuple[Message, ...] = ()
        for step in range(200):
            messages = (*messages, Message.assistant(f"{step:04d}" + "x" * 1020))
            await cp.save(make_checkpoint("g", step, messages=messages, extra={"n": step % 2}))
        stats = await cp.stats()
        assert stats.log_items == 200
        assert stats.steps == 200
        with sqlite3.connect(tmp_path / "g.db") as plain:
            (step_bytes,) = plain.execute(
                "SELECT SUM(LENGTH(cursor) + IFNULL(LENGTH(extra_data), 0)) FROM steps"
            ).fetchone()
        plain.close()
        assert step_bytes < 200 * 200
        loaded = await cp.load("g", 100)
        assert loaded is not None
        assert len(loaded.state.messages) == 101


async def test_resume_after_reopen_appends_without_duplicating(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path}/r.db"
    saved = evolving("r", 10)
    async with await SQLiteCheckpointer.connect(url) as cp:
        await save_all(cp, saved[:5])
    async with await SQLiteCheckpointer.connect(url) as cp:
        latest = await cp.load_latest("r")
        assert latest is not None
        messages = latest.state.messages
        for checkpoint in saved[5:]:
            messages = (*messages, checkpoint.state.messages[-1])
            await cp.save(
                Checkpoint(
                    session_id="r",
                    step=checkpoint.step,
                    frontier=checkpoint.frontier,
                    state=type(checkpoint.state)(
                        messages=messages,
                        extra=checkpoint.state.extra,
                        errors=checkpoint.state.errors,
                        versions=checkpoint.state.versions,
                    ),
                )
            )
        assert (await cp.stats()).log_items == 10
        for checkpoint in saved:
            loaded = await cp.load("r", checkpoint.step)
            assert loaded is not None
            assert loaded.state == checkpoint.state


WRITER = """
import asyncio, sys
from weavegraph.checkpoint.sqlite import SQLiteCheckpointer
from weavegraph.state import Message
from weavegraph.testing.conformance import make_checkpoint

async def main(url, worker):
    cp = await SQLiteCheckpointer.connect(url)
    async def session(index):
        sid = f"w{worker}-s{index}"
        messages = ()
        for step in range(15):
            messages = (*messages, Message.user(f"{sid}-{step}"))
            await cp.save(make_checkpoint(sid, step, messages=messages))
            await cp.append_events(sid, [{"seq": step}])
    await asyncio.gather(*(session(i) for i in range(6)))
    await cp.close()

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


@pytest.mark.slow
async def test_several_processes_write_one_file(tmp_path: Path) -> None:
    """Four processes, six sessions each, all at once: nobody sees "database is locked"."""
    url = f"sqlite://{tmp_path}/multi.db"
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            WRITER,
            url,
            str(worker),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for worker in range(4)
    ]
    results = [await proc.communicate() for proc in procs]
    for proc, (_, stderr) in zip(procs, results, strict=True):
        assert proc.returncode == 0, stderr.decode()
    async with await SQLiteCheckpointer.connect(url) as cp:
        sessions = await cp.list_sessions()
        assert len(sessions) == 24
        assert {info.latest_step for info in sessions} == {14}
        latest = await cp.load_latest("w3-s5")
        assert latest is not None
        assert [m.content for m in latest.state.messages][-1] == "w3-s5-14"
