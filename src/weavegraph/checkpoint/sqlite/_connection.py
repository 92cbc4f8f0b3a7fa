"""One SQLite connection per database file per process, and opening it safely.

Before anything is written, an existing file is inspected read-only: a file that is not SQLite, a
SQLite database with someone else's tables, or a weavegraph database from a newer version is refused
and left byte-for-byte unchanged. Every checkpointer opened on one file shares its connection
(:class:`Shared`), driven by one worker thread; WAL checkpoints run on a thread of their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from ...errors import CheckpointError, ConfigError, NotAWeavegraphDatabase
from .._migration import SCHEMA_TABLE, SQLITE_APPLICATION_ID
from ..base import Checkpoint
from ._schema import apply_migrations, schema_state
from ._store import Fence, SQLiteStore

__all__ = ["MEMORY", "Shared", "acquire", "inspect_file", "release", "sqlite_path"]

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


def inspect_file(path: str) -> int:
    """Classify an existing file without writing to it: its schema version, 0 if new or empty."""
    if path == MEMORY or not os.path.exists(path) or os.path.getsize(path) == 0:
        return 0
    with open(path, "rb") as handle:
        if handle.read(len(SQLITE_MAGIC)) != SQLITE_MAGIC:
            raise NotAWeavegraphDatabase(path, "the file is not an SQLite database")
    conn = sqlite3.connect(f"file:{quote(os.path.abspath(path))}?mode=ro", uri=True)
    try:
        return schema_state(conn, path)
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
_APPLICATION_ID_AT = 68  # the header field's offset (big-endian, 4 bytes)


def _has_weavegraph_schema(path: str) -> bool:
    """Whether the file's header carries weavegraph's ``application_id`` or its schema (kept near
    its start) creates weavegraph's schema table, read as raw bytes: SQLite itself could not
    read the file."""
    with open(path, "rb") as handle:
        head = handle.read(_SCHEMA_SCAN_BYTES)
    if head[_APPLICATION_ID_AT : _APPLICATION_ID_AT + 4] == SQLITE_APPLICATION_ID.to_bytes(
        4, "big"
    ):
        return True
    return f"CREATE TABLE {SCHEMA_TABLE} (".encode() in head


def _enable_wal(conn: sqlite3.Connection) -> None:
    """Switch the file to WAL. Processes opening a new file at once can meet a lock SQLite does
    not wait for (an upgrade it refuses in order not to deadlock): retry within the busy timeout."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.005)


def open_store(path: str) -> tuple[SQLiteStore, int, int]:
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
            _enable_wal(conn)
            conn.execute("PRAGMA wal_autocheckpoint = 0")
        conn.execute("PRAGMA synchronous = NORMAL")
        store = SQLiteStore(conn, path)
        after = store.transaction(lambda c: apply_migrations(c, path))
    except BaseException:
        conn.close()
        raise
    return store, before, after


Queued = tuple[Checkpoint, Fence, "asyncio.Future[None]"]
"""A save waiting for the worker thread: the checkpoint, its fence, and its outcome (a future of
the caller's event loop, settled there)."""


@dataclass(slots=True)
class Shared:
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
    queue_lock: threading.Lock = field(default_factory=threading.Lock)
    queued: list[Queued] = field(default_factory=list[Queued])
    draining: bool = False

    def run_locked(self, store: SQLiteStore, fn: Callable[..., T], *args: Any) -> T:
        """In the worker thread: run ``fn`` holding the connection, with the normal busy timeout."""
        with self.lock:
            if self.nowait:
                store.conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
                self.nowait = False
            return fn(*args)

    def queue_save(
        self, store: SQLiteStore, checkpoint: Checkpoint, fence: Fence
    ) -> asyncio.Future[None]:
        """Queue a save for the worker thread, which commits every save queued by the time it
        gets to them in one transaction (:meth:`drain`); the future (of the calling event loop)
        tells this save's outcome."""
        done = asyncio.get_running_loop().create_future()
        with self.queue_lock:
            self.queued.append((checkpoint, fence, done))
            start = not self.draining
            self.draining = True
        if start:
            self.executor.submit(self.drain, store)
        return done

    def drain(self, store: SQLiteStore) -> None:
        """In the worker thread: commit the queued saves, a batch at a time, until none is left.

        While a drain runs, new saves join the queue rather than try the connection inline (see
        ``SQLiteCheckpointer.save``), so saves that arrive while the connection is busy share
        one commit instead of each waiting for the one before. A batch's outcomes go back to
        its callers' event loop in one call (not one thread hop per save).
        """
        while True:
            with self.queue_lock:
                taken, self.queued = self.queued, []
                if not taken:
                    self.draining = False
                    return
            # A save whose caller was cancelled while it waited is dropped, as a job the worker
            # has not started is; the others commit, also for a caller cancelled meanwhile.
            batch = [item for item in taken if not item[2].cancelled()]
            if not batch:
                continue
            try:
                outcomes: list[BaseException | None] = list(
                    self.run_locked(store, self._commit_batch, store, batch)
                )
            except BaseException as exc:  # (the transaction failed: every save in it did)
                outcomes = [exc] * len(batch)
            _report(batch, outcomes)

    def _commit_batch(self, store: SQLiteStore, batch: list[Queued]) -> list[Exception | None]:
        outcomes = store.save_batch([(checkpoint, fence) for checkpoint, fence, _ in batch])
        self.after_commit(store)
        return outcomes

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


def _report(batch: list[Queued], outcomes: list[BaseException | None]) -> None:
    """Settle the batch's futures on their event loops (in the worker thread: one call per
    loop; a loop that closed meanwhile has nobody waiting)."""
    by_loop: dict[
        asyncio.AbstractEventLoop, list[tuple[asyncio.Future[None], BaseException | None]]
    ] = {}
    for (_, _, done), outcome in zip(batch, outcomes, strict=True):
        by_loop.setdefault(done.get_loop(), []).append((done, outcome))
    for loop, settled in by_loop.items():
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(_settle, settled)


def _settle(settled: list[tuple[asyncio.Future[None], BaseException | None]]) -> None:
    for done, outcome in settled:
        if done.done():  # (its caller was cancelled while the batch committed)
            continue
        if outcome is None:
            done.set_result(None)
        else:
            done.set_exception(outcome)


_SHARED: dict[str, Shared] = {}
_SHARED_LOCK = threading.Lock()


def acquire(path: str) -> tuple[str, Shared]:
    key = path if path == MEMORY else os.path.realpath(path)
    with _SHARED_LOCK:
        shared = _SHARED.get(key) if path != MEMORY else None
        if shared is None:
            executor = ThreadPoolExecutor(1, thread_name_prefix="weavegraph-sqlite")
            shared = Shared(executor, executor.submit(open_store, path))
            if path != MEMORY:
                _SHARED[key] = shared
        else:
            shared.users += 1
    return key, shared


def release(key: str, shared: Shared) -> bool:
    """Drop one user; True when it was the last one (the caller then closes the connection)."""
    with _SHARED_LOCK:
        shared.users -= 1
        if shared.users > 0:
            return False
        if _SHARED.get(key) is shared:
            del _SHARED[key]
        return True
