"""SQLite checkpointer: the embedded default. Full step history, WAL, safe across processes.

One connection per database file per process, shared by every checkpointer opened on that file and
driven by one worker thread, so concurrent sessions in a process never contend for the write lock
among themselves. A save is one transaction. When the connection is idle it runs inline on the
event loop's thread (a WAL commit without fsync costs less than the hop to a thread and back), with
a busy timeout of 0: if another process holds the write lock, the save is handed to the worker
thread instead, which waits with the normal busy timeout and retries, so the loop never waits for
another process and writers never fail with "database is locked". A lock guarantees that the
connection is used by one thread at a time. ``synchronous=NORMAL`` in WAL mode keeps every committed
step across a process crash (kill -9); the WAL is folded into the database by the worker thread
(never by an inline commit, which would fsync on the loop).

Before anything is written, an existing file is inspected read-only: a file that is not SQLite, a
SQLite database with someone else's tables, or a weavegraph database from a newer version is refused
and left byte-for-byte unchanged. The storage layout is described in ``_sqlite_store`` and
``migrations``.
"""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar, TypeVar, cast
from urllib.parse import quote

from ..errors import CheckpointError, ConfigError, DatabaseSchemaTooNew, NotAWeavegraphDatabase
from . import _sqlite_maint as maint
from ._maintenance import PruneResult, StorageStats
from ._model import Checkpoint, SessionInfo, StepInfo
from ._sqlite_store import SQLiteStore
from .migrations import SCHEMA_TABLE, SQLITE_MIGRATIONS, MigrationResult, latest_version

__all__ = ["PruneResult", "SQLiteCheckpointer", "StorageStats", "migrate_sqlite", "sqlite_path"]

T = TypeVar("T")
MEMORY = ":memory:"
SQLITE_MAGIC = b"SQLite format 3\x00"
BUSY_TIMEOUT_MS = 10_000
# Commits between two WAL checkpoints (run by the worker; automatic checkpoints are off so that an
# inline commit never pays for one on the event loop's thread).
CHECKPOINT_EVERY = 100
# WAL pages past which a checkpoint makes sure the WAL starts over (SQLite's own default: 1000).
WAL_RESTART_FRAMES = 1000


_FOREIGN_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")


def sqlite_path(url: str) -> str:
    """The file path of ``sqlite://file.db``, ``sqlite:///abs/file.db``, ``sqlite::memory:`` or a path.

    ``sqlite://`` is followed by the path as written (relative to the working directory unless it
    starts with ``/``); a ``?query`` (e.g. sqlx's ``?mode=rwc``) is ignored.
    """
    text = url.strip()
    if not text:
        raise ConfigError("empty SQLite URL")
    if text.startswith("sqlite:"):
        text = text.removeprefix("sqlite:").removeprefix("//")
        text = text.split("?", 1)[0]
    elif _FOREIGN_SCHEME.match(text):
        # A PostgreSQL (or any other) URL given here would otherwise become a directory named
        # "postgresql:" holding a new, empty database.
        raise ConfigError(f"{url!r} is not a SQLite URL: expected sqlite://path or a file path")
    if not text:
        raise ConfigError(f"the SQLite URL {url!r} names no file")
    return text


def _schema_state(conn: sqlite3.Connection, location: str) -> int:
    """The schema version of an open database (0: empty); refuses foreign or newer ones."""
    tables = {
        cast("str", name)
        for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        ).fetchall()
    }
    if not tables:
        return 0
    if SCHEMA_TABLE not in tables:
        shown = ", ".join(sorted(tables)[:5])
        raise NotAWeavegraphDatabase(
            location, f"it has other tables ({shown}) and no {SCHEMA_TABLE}"
        )
    version = cast(
        "int | None", conn.execute(f"SELECT MAX(version) FROM {SCHEMA_TABLE}").fetchone()[0]
    )
    supported = latest_version(SQLITE_MIGRATIONS)
    if (version or 0) > supported:
        raise DatabaseSchemaTooNew(location, version or 0, supported)
    return version or 0


def inspect_file(path: str) -> int:
    """Classify an existing file without writing to it: its schema version, 0 if new or empty."""
    if path == MEMORY or not os.path.exists(path) or os.path.getsize(path) == 0:
        return 0
    with open(path, "rb") as handle:
        if handle.read(len(SQLITE_MAGIC)) != SQLITE_MAGIC:
            raise NotAWeavegraphDatabase(path, "the file is not an SQLite database")
    conn = sqlite3.connect(f"file:{quote(os.path.abspath(path))}?mode=ro", uri=True)
    try:
        return _schema_state(conn, path)
    except sqlite3.DatabaseError as exc:
        if _has_weavegraph_schema(path):  # ours, damaged (e.g. truncated): not "foreign"
            raise CheckpointError(
                f"{path} is a weavegraph database but it is corrupt: {exc}",
                help="Restore the file from a backup (sqlite3's .recover command may save what "
                "is left); weavegraph left it untouched.",
            ) from exc
        raise NotAWeavegraphDatabase(path, str(exc)) from exc
    finally:
        conn.close()


_SCHEMA_SCAN_BYTES = 1 << 20


def _has_weavegraph_schema(path: str) -> bool:
    """Whether the file's schema (kept at its start) creates weavegraph's schema table, read as
    raw bytes: SQLite itself could not read the file."""
    with open(path, "rb") as handle:
        head = handle.read(_SCHEMA_SCAN_BYTES)
    return f"CREATE TABLE {SCHEMA_TABLE} (".encode() in head


def _open(path: str) -> tuple[SQLiteStore, int, int]:
    """Inspect, open and migrate; returns the store and the schema version before and after."""
    try:
        before = inspect_file(path)
        if path != MEMORY:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    except (OSError, sqlite3.Error) as exc:
        raise CheckpointError(f"cannot open the SQLite database {path}: {exc}") from exc
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if path != MEMORY:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA wal_autocheckpoint = 0")
        conn.execute("PRAGMA synchronous = NORMAL")
        store = SQLiteStore(conn, path)
        after = store.transaction(lambda c: _migrate(c, path))
    except BaseException:
        conn.close()
        raise
    return store, before, after


def _migrate(conn: sqlite3.Connection, location: str) -> int:
    current = _schema_state(conn, location)
    for migration in SQLITE_MIGRATIONS:
        if migration.version > current:
            for statement in migration.statements:
                conn.execute(statement)
            if migration.convert is not None:
                migration.convert(conn)
            for statement in migration.then:
                conn.execute(statement)
            conn.execute(f"INSERT INTO {SCHEMA_TABLE} (version) VALUES (?)", (migration.version,))
            current = migration.version
    return current


@dataclass(slots=True)
class _Shared:
    """One database file's connection, its worker thread and how many checkpointers use it.

    ``lock`` is held by whichever thread uses the connection; ``nowait`` says its busy timeout is
    currently 0 (set by the inline path, restored by the worker); ``commits`` counts commits since
    the last WAL checkpoint (both only read or written under ``lock``). WAL checkpoints run on a
    thread and a connection of their own (``wal_executor``, ``wal_conn``): they fsync, and neither
    inline saves nor the worker's loads should queue behind that.
    """

    executor: ThreadPoolExecutor
    opened: Future[tuple[SQLiteStore, int, int]]
    users: int = 1
    lock: threading.Lock = field(default_factory=threading.Lock)
    nowait: bool = False
    commits: int = 0
    wal_executor: ThreadPoolExecutor | None = None
    wal_conn: sqlite3.Connection | None = None

    def run_locked(self, store: SQLiteStore, fn: Callable[..., T], *args: Any) -> T:
        """In the worker thread: run ``fn`` holding the connection, with the normal busy timeout."""
        with self.lock:
            if self.nowait:
                store.conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
                self.nowait = False
            return fn(*args)

    def counted_save(self, store: SQLiteStore, checkpoint: Checkpoint) -> None:
        store.save(checkpoint)
        self.after_commit(store)

    def after_commit(self, store: SQLiteStore) -> None:
        """Count a commit (holding ``lock``); every CHECKPOINT_EVERY, queue a WAL checkpoint."""
        self.commits += 1
        if self.commits >= CHECKPOINT_EVERY and store.location != MEMORY:
            self.commits = 0
            if self.wal_executor is None:
                self.wal_executor = ThreadPoolExecutor(1, thread_name_prefix="weavegraph-wal")
            self.wal_executor.submit(self.fold_wal, store.location)

    def fold_wal(self, path: str) -> None:
        """On the WAL thread: copy the WAL into the database file as far as readers allow.

        PASSIVE never waits. Under a steady stream of commits it rarely catches up completely, and
        SQLite only starts the WAL over once it has: so when the WAL has grown past
        ``WAL_RESTART_FRAMES``, the copy runs again holding ``lock`` (no commit of this process in
        between), after which the next commit starts the WAL over and the file stops growing.
        Saves meanwhile wait in the worker thread, never on the event loop.
        """
        if self.wal_conn is None:
            self.wal_conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        _, frames, _ = self.wal_conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        if frames >= WAL_RESTART_FRAMES:
            with self.lock:
                self.wal_conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    def close(self, store: SQLiteStore) -> None:
        """In the worker thread: close both connections (the main one last: it removes the WAL)."""
        if self.wal_executor is not None:
            self.wal_executor.shutdown(wait=True)  # lets a running checkpoint finish
            self.wal_executor = None
        if self.wal_conn is not None:
            self.wal_conn.close()
            self.wal_conn = None
        self.run_locked(store, store.conn.close)


_SHARED: dict[str, _Shared] = {}
_SHARED_LOCK = threading.Lock()


def _acquire(path: str) -> tuple[str, _Shared]:
    key = path if path == MEMORY else os.path.realpath(path)
    with _SHARED_LOCK:
        shared = _SHARED.get(key) if path != MEMORY else None
        if shared is None:
            executor = ThreadPoolExecutor(1, thread_name_prefix="weavegraph-sqlite")
            shared = _Shared(executor, executor.submit(_open, path))
            if path != MEMORY:
                _SHARED[key] = shared
        else:
            shared.users += 1
    return key, shared


def _release(key: str, shared: _Shared) -> bool:
    """Drop one user; True when it was the last one (the caller then closes the connection)."""
    with _SHARED_LOCK:
        shared.users -= 1
        if shared.users > 0:
            return False
        if _SHARED.get(key) is shared:
            del _SHARED[key]
        return True


class SQLiteCheckpointer:
    """Checkpoints in an SQLite file: every step kept, storage linear in what nodes wrote."""

    keeps_history: ClassVar[bool] = True

    def __init__(self, key: str, shared: _Shared, store: SQLiteStore, path: str) -> None:
        self._key = key
        self._shared = shared
        self._store = store
        self._closed = False
        self.path = path
        self.schema_before = 0

    @classmethod
    async def connect(cls, url: str = "sqlite://weavegraph.db") -> SQLiteCheckpointer:
        """Open (creating and migrating as needed) the database named by ``url``."""
        path = sqlite_path(url)
        key, shared = _acquire(path)
        try:
            store, before, _ = await asyncio.wrap_future(shared.opened)
        except BaseException:
            if _release(key, shared):
                shared.executor.shutdown(wait=False)
            raise
        checkpointer = cls(key, shared, store, path)
        checkpointer.schema_before = before
        return checkpointer

    @property
    def location(self) -> str:
        return self.path

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._closed:
            raise CheckpointError(f"the checkpointer for {self.path} is closed")
        shared = self._shared
        return await asyncio.wrap_future(
            shared.executor.submit(shared.run_locked, self._store, fn, *args)
        )

    def _save_inline(self, checkpoint: Checkpoint) -> bool:
        """Save on the calling thread if the connection is idle and the write lock free at once.

        False: not done (the connection is busy in the worker, another process holds the
        database's write lock, or the save appends many log items), and the caller hands the save
        to the worker thread.
        """
        shared = self._shared
        if not shared.lock.acquire(blocking=False):
            return False
        try:
            if not self._store.is_small(checkpoint):
                return False  # many new log items: encoded and written off the loop's thread
            if not shared.nowait:
                # Never wait on the loop's thread: SQLITE_BUSY at once, and the worker waits.
                self._store.conn.execute("PRAGMA busy_timeout = 0")
                shared.nowait = True
            if not self._store.try_save(checkpoint):
                return False
            shared.after_commit(self._store)
            return True
        finally:
            shared.lock.release()

    # --- the Checkpointer protocol --------------------------------------------------------

    async def save(self, checkpoint: Checkpoint) -> None:
        if self._closed:
            raise CheckpointError(f"the checkpointer for {self.path} is closed")
        if not self._save_inline(checkpoint):
            await self._run(self._shared.counted_save, self._store, checkpoint)

    async def load_latest(self, session_id: str) -> Checkpoint | None:
        if self._surely_absent(session_id):
            return None  # a new session (the common case of create_session): no thread hop
        return await self._run(self._store.load_latest, session_id)

    def _surely_absent(self, session_id: str) -> bool:
        """True when an inline probe (idle connection, never waiting) finds no such session.

        False means "maybe present": the real load runs on the worker thread as usual.
        """
        if self._closed:
            return False
        shared = self._shared
        if not shared.lock.acquire(blocking=False):
            return False
        try:
            if not shared.nowait:
                self._store.conn.execute("PRAGMA busy_timeout = 0")
                shared.nowait = True
            return self._store.probe_absent(session_id)
        finally:
            shared.lock.release()

    async def load(self, session_id: str, step: int) -> Checkpoint | None:
        return await self._run(self._store.load, session_id, step)

    async def list_sessions(self) -> list[SessionInfo]:
        return await self._run(self._store.list_sessions)

    async def history(self, session_id: str) -> list[StepInfo]:
        return await self._run(self._store.history, session_id)

    async def delete_session(self, session_id: str) -> bool:
        return await self._run(self._store.delete_session, session_id)

    async def append_events(self, session_id: str, events: Sequence[Mapping[str, Any]]) -> None:
        await self._run(self._store.append_events, session_id, list(events))

    async def load_events(self, session_id: str, after_seq: int = -1) -> list[dict[str, Any]]:
        return await self._run(self._store.load_events, session_id, after_seq)

    async def close(self) -> None:
        """Release this checkpointer; the shared connection closes with its last user."""
        if self._closed:
            return
        self._closed = True
        if _release(self._key, self._shared):
            shared = self._shared
            await asyncio.wrap_future(shared.executor.submit(shared.close, self._store))
            self._shared.executor.shutdown(wait=False)

    async def __aenter__(self) -> SQLiteCheckpointer:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # --- storage management (the CLI's `db` commands) --------------------------------------

    async def stats(self) -> StorageStats:
        """Counts of sessions, steps, events and log items, and bytes on disk."""
        return await self._run(maint.stats, self._store, self.path)

    async def prune(
        self, *, older_than: timedelta | None = None, keep_last: int | None = None
    ) -> PruneResult:
        """Delete steps older than ``older_than`` or beyond the newest ``keep_last`` per session.

        A session's latest step is never deleted; every remaining step stays loadable.
        """
        return await self._run(maint.prune, self._store, older_than, keep_last)

    async def vacuum(self) -> tuple[int, int]:
        """Checkpoint the WAL and VACUUM; returns bytes on disk before and after."""
        return await self._run(maint.vacuum, self._store, self.path)

    async def checkpoint_wal(self) -> None:
        """Fold the WAL into the database file (so its size on disk is what it holds)."""
        await self._run(maint.checkpoint_wal, self._store)

    async def schema_version(self) -> int:
        store = self._store
        return await self._run(
            lambda: store.transaction(lambda c: _schema_state(c, self.path), write=False)
        )


async def migrate_sqlite(url: str) -> MigrationResult:
    """Open the database at ``url`` (migrating it) and report the versions before and after."""
    checkpointer = await SQLiteCheckpointer.connect(url)
    try:
        after = await checkpointer.schema_version()
        return MigrationResult(
            location=checkpointer.path, before=checkpointer.schema_before, after=after
        )
    finally:
        await checkpointer.close()
