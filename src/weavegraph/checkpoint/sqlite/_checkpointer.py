"""SQLite checkpointer: the embedded default. Full step history, WAL, safe across processes.

One connection per database file per process, shared by every checkpointer opened on that file and
driven by one worker thread, so concurrent sessions in a process never contend for the write lock
among themselves. A save is one transaction. When the connection is idle it runs inline on the
event loop's thread (a WAL commit without fsync costs less than the hop to a thread and back), with
a busy timeout of 0: if another process holds the write lock, the save is handed to the worker
thread instead, which waits with the normal busy timeout and retries, so the loop never waits for
another process and writers never fail with "database is locked". Saves handed to the worker queue
up while it is busy and are committed together, one transaction with a savepoint per save (a save
that fails, fails alone); until the queue is empty, new saves join it. A lock guarantees that the
connection is used by one thread at a time. ``synchronous=NORMAL`` in WAL mode keeps every committed
step across a process crash (kill -9); the WAL is folded into the database by the worker thread
(never by an inline commit, which would fsync on the loop).

Opening (and refusing foreign or newer files untouched) is ``_connection``'s; the storage layout
is described in ``_store`` and ``checkpoint/_migration``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any, ClassVar, TypeVar

from ...errors import CheckpointError
from .._save_plan import check_builds_on
from ..base import (
    Checkpoint,
    MigrationResult,
    PruneResult,
    SessionInfo,
    StepInfo,
    StorageStats,
    check_events_query,
    loaded_form,
    storage_key,
    stored_form,
)
from . import _maint as maint
from ._connection import Shared, acquire, release, sqlite_path
from ._schema import schema_state
from ._store import INLINE_MAX_ITEMS, NO_FENCE, Fence, SQLiteStore

__all__ = ["SQLiteCheckpointer", "migrate_sqlite"]

T = TypeVar("T")


class SQLiteCheckpointer:
    """Checkpoints in an SQLite file: every step kept, storage linear in what nodes wrote."""

    keeps_history: ClassVar[bool] = True

    def __init__(self, key: str, shared: Shared, store: SQLiteStore, path: str) -> None:
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
        key, shared = acquire(path)
        try:
            store, before, _ = await asyncio.wrap_future(shared.opened)
        except BaseException:
            if release(key, shared):
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

    def _save_inline(self, checkpoint: Checkpoint, fence: Fence) -> bool:
        """Save on the calling thread if the connection is idle and the write lock free at once.

        False: not done (the connection is busy in the worker, another process holds the
        database's write lock, or the save appends many log items), and the caller hands the save
        to the worker thread.
        """
        store = self._store
        # (many new log items: encoded and written off the loop's thread)
        return self._write_inline(
            lambda: store.is_small(checkpoint, fence) and store.try_save(checkpoint, fence)
        )

    def _write_inline(self, attempt: Callable[[], bool]) -> bool:
        """Run one never-waiting write ``attempt`` on the calling thread if the connection is
        idle; False when it is busy (in the worker, or another process holds the write lock)."""
        shared = self._shared
        if not shared.lock.acquire(blocking=False):
            return False
        try:
            if not shared.nowait:
                # Never wait on the loop's thread: SQLITE_BUSY at once, and the worker waits.
                self._store.conn.execute("PRAGMA busy_timeout = 0")
                shared.nowait = True
            if not attempt():
                return False
            shared.after_commit(self._store)
            return True
        finally:
            shared.lock.release()

    # --- the Checkpointer protocol --------------------------------------------------------

    async def save(
        self,
        checkpoint: Checkpoint,
        *,
        events: Sequence[Mapping[str, Any]] = (),
        builds_on: int | None = None,
    ) -> None:
        if self._closed:
            raise CheckpointError(f"the checkpointer for {self.path} is closed")
        checkpoint = stored_form(checkpoint)
        if builds_on is None and not events:
            fence = NO_FENCE
        else:
            check_builds_on(builds_on)
            fence = Fence(builds_on, tuple(events))
        shared = self._shared
        # (while the worker drains queued saves, a save joins them: one commit for all)
        if shared.draining or not self._save_inline(checkpoint, fence):
            await shared.queue_save(self._store, checkpoint, fence)

    async def load_latest(self, session_id: str, *, namespace: str = "") -> Checkpoint | None:
        key = storage_key(session_id, namespace)
        if self._surely_absent(key):
            return None  # a new session (the common case of create_session): no thread hop
        found = await self._run(self._store.load_latest, key)
        return loaded_form(found, session_id, namespace)

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

    async def load(self, session_id: str, step: int, *, namespace: str = "") -> Checkpoint | None:
        found = await self._run(self._store.load, storage_key(session_id, namespace), step)
        return loaded_form(found, session_id, namespace)

    async def list_sessions(self) -> list[SessionInfo]:
        return await self._run(self._store.list_sessions)

    async def history(self, session_id: str, *, namespace: str = "") -> list[StepInfo]:
        return await self._run(self._store.history, storage_key(session_id, namespace))

    async def delete_session(self, session_id: str) -> bool:
        return await self._run(self._store.delete_session, session_id)

    async def append_events(
        self,
        session_id: str,
        events: Sequence[Mapping[str, Any]],
        *,
        builds_on: int | None = None,
    ) -> None:
        check_builds_on(builds_on)
        fence = Fence(builds_on, tuple(events))
        # A run's closing events (a few): written at once like a small save, no thread hop.
        if (
            not self._closed
            and len(fence.events) <= INLINE_MAX_ITEMS
            and self._write_inline(lambda: self._store.try_append_events(session_id, fence))
        ):
            return
        await self._run(self._store.append_events, session_id, fence)

    async def load_events(
        self, session_id: str, after_seq: int = -1, limit: int | None = None
    ) -> list[dict[str, Any]]:
        check_events_query(after_seq, limit)
        return await self._run(self._store.load_events, session_id, after_seq, limit)

    async def save_task_results(
        self,
        session_id: str,
        builds_on_step: int,
        results: Mapping[int, Any],
        *,
        namespace: str = "",
    ) -> None:
        if results:
            key = storage_key(session_id, namespace)
            await self._run(self._store.save_task_results, key, builds_on_step, results)

    async def load_task_results(
        self, session_id: str, builds_on_step: int, *, namespace: str = ""
    ) -> dict[int, Any]:
        key = storage_key(session_id, namespace)
        return await self._run(self._store.load_task_results, key, builds_on_step)

    async def close(self) -> None:
        """Release this checkpointer; the shared connection closes with its last user."""
        if self._closed:
            return
        self._closed = True
        if release(self._key, self._shared):
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
        self,
        *,
        older_than: timedelta | None = None,
        keep_last: int | None = None,
        dry_run: bool = False,
    ) -> PruneResult:
        """Delete steps older than ``older_than`` or beyond the newest ``keep_last`` per session.

        A session's latest step is never deleted; every remaining step stays loadable.
        """
        return await self._run(maint.prune, self._store, older_than, keep_last, dry_run)

    async def vacuum(self) -> tuple[int, int]:
        """Checkpoint the WAL and VACUUM; returns bytes on disk before and after."""
        return await self._run(maint.vacuum, self._store, self.path)

    async def checkpoint_wal(self) -> None:
        """Fold the WAL into the database file (so its size on disk is what it holds)."""
        await self._run(maint.checkpoint_wal, self._store)

    async def schema_version(self) -> int:
        store = self._store
        return await self._run(
            lambda: store.transaction(lambda c: schema_state(c, self.path), write=False)
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
