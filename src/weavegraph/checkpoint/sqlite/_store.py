"""The synchronous core of the SQLite checkpointer: one connection, used from one worker thread.

Storage design (why storage grows linearly with what nodes wrote):

- ``messages`` and ``errors`` live in ``channel_log``, an append-only log owned by the session.
  A step records a window ``(start, count)`` into it. When a channel extends the previous step's
  (checked by identity of the shared prefix: states share their frozen items), only the new items
  are appended; otherwise the whole channel is appended after the log's end and the window moves.
  No row is ever rewritten, so old steps stay loadable and no snapshot ever copies old messages.
- ``extra`` is stored per step either whole (when small) or as one delta over a base in
  ``extra_log``, a log owned by the session (see ``_extra``). A step never builds on
  another step, so any subset of ``steps`` rows can be deleted by hand-written SQL and every
  remaining step still loads.
- The latest checkpoint is materialized in ``sessions.head``, so loading it never depends on
  ``steps`` rows: the guide's ``DELETE FROM steps WHERE created_at < ...`` can never make a session
  unresumable. A small ``extra`` is inside the head; a larger one is referenced the way the step
  row references it (an ``extra_log`` row and the delta from it, see ``_extra``), so a step that
  changed one small key next to a large untouched value writes that key, not the whole ``extra``
  (and encodes only the changed keys: ``codec.ExtraJson``). Schema versions 1-3 kept a large head
  ``extra`` whole in ``session_extra``; such a row is still read until the session's next save.

A save touches as few b-trees as it can (each costs tens of microseconds): the ``steps`` row and the
``sessions`` row, plus the log when a channel grew. What this connection last wrote is cached and
trusted while ``PRAGMA data_version`` shows no other connection committed since, which saves the
reads that would otherwise re-check it.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple, TypeVar, cast

from ...errors import CheckpointError
from ...state import VersionedState
from .. import _codec as codec
from .. import _save_plan as saves
from .._codec import HeadCache as _Head
from ..base import Checkpoint, SessionInfo, StepInfo, session_of, subgraph_keys_prefix
from . import _extra as extras
from . import _tasks as tasks
from ._read import (
    ERRORS,
    MESSAGES,
    HeadExtra,
    encode_head,
    load_head_extra,
    load_step,
    now_text,
    read_history,
    read_log,
    read_sessions,
    time_text,
)
from ._rows import delete_events, insert_events, select_events, write_step

T = TypeVar("T")

RETRY_DEADLINE = 60.0
# An ``extra`` up to this size (JSON bytes) is stored inside the head row; a larger one is
# referenced there as its step row references it.
HEAD_EXTRA_MAX = 4096
# A save appending more log items than this (messages, errors) runs on the worker thread rather
# than inline on the event loop's (see sqlite.py): encoding and writing them takes a while.
INLINE_MAX_ITEMS = 32


class Fence(NamedTuple):
    """What a save builds on (see ``_save_plan``) and the events written with it."""

    builds_on: int | None = None
    events: Sequence[Mapping[str, Any]] = ()


NO_FENCE = Fence()


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


class SQLiteStore:
    """All reads and writes, each one transaction, retried while another process holds the lock."""

    def __init__(self, conn: sqlite3.Connection, location: str) -> None:
        self.conn = conn
        self.location = location
        self._heads: dict[str, _Head] = {}
        # Per session, its sessions row as this connection last wrote it (valid while no other
        # connection committed: see _trusted), and the last extra with its JSON.
        self._rows: dict[str, _Row] = {}
        self._extra_json: dict[str, codec.ExtraJson] = {}
        # Per session, the extra_log row this connection writes extra deltas against.
        self._bases: dict[str, extras.Base] = {}
        # Sessions known to have no saved task results (so a save need not delete any).
        self._tasks_clean: set[str] = set()
        self._data_version: int | None = None

    # --- transactions --------------------------------------------------------------------

    def transaction(self, work: Callable[[sqlite3.Connection], T], *, write: bool = True) -> T:
        """Run ``work`` in one transaction; SQLITE_BUSY (another process) is waited out."""
        deadline = time.monotonic() + RETRY_DEADLINE
        delay = 0.005
        while True:
            try:
                self.conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                try:
                    result = work(self.conn)
                    self.conn.execute("COMMIT")
                except BaseException:
                    if self.conn.in_transaction:
                        self.conn.execute("ROLLBACK")
                    raise
                return result
            except sqlite3.OperationalError as exc:
                if write:
                    self.forget_heads()  # a failed write may have left the cache ahead of the file
                if not _is_busy(exc) or time.monotonic() > deadline:
                    raise CheckpointError(f"{self.location}: {exc}") from exc
                time.sleep(delay)
                delay = min(delay * 2, 0.2)
            except sqlite3.DatabaseError as exc:
                raise CheckpointError(f"{self.location}: {exc}") from exc

    # --- save ------------------------------------------------------------------------------

    def save(self, checkpoint: Checkpoint, fence: Fence = NO_FENCE) -> None:
        try:
            self.transaction(lambda conn: self._save(conn, checkpoint, fence))
        except BaseException:
            self._forget(checkpoint.session_id)
            raise

    def save_batch(self, items: Sequence[tuple[Checkpoint, Fence]]) -> list[Exception | None]:
        """Saves of several sessions in one transaction (the worker's queue: ``Shared.drain``),
        each in a savepoint of its own: a save that fails (a fence refused, a value the database
        rejects) fails alone, with its error in its place of the result, and the others commit.
        A failure of the transaction itself raises as from :meth:`save`."""
        outcomes: list[Exception | None] = []

        def work(conn: sqlite3.Connection) -> None:
            outcomes.clear()  # (a busy transaction is run again from the start)
            for checkpoint, fence in items:
                conn.execute("SAVEPOINT one_save")
                try:
                    self._save(conn, checkpoint, fence)
                except Exception as exc:
                    conn.execute("ROLLBACK TO one_save")
                    self._forget(checkpoint.session_id)
                    if isinstance(exc, sqlite3.DatabaseError):
                        exc = CheckpointError(f"{self.location}: {exc}")
                    outcomes.append(exc)
                else:
                    outcomes.append(None)
                conn.execute("RELEASE one_save")

        try:
            self.transaction(work)
        except BaseException:
            for checkpoint, _ in items:
                self._forget(checkpoint.session_id)
            raise
        return outcomes

    def is_small(self, checkpoint: Checkpoint, fence: Fence = NO_FENCE) -> bool:
        """Whether saving appends at most INLINE_MAX_ITEMS log items and events (by the cached
        head)."""
        state = checkpoint.state
        head = self._heads.get(checkpoint.session_id)
        added = len(fence.events)
        if head is None:
            added += len(state.messages) + len(state.errors)
        else:
            added += len(state.messages) - len(head.messages)
            added += len(state.errors) - len(head.errors)
        return added <= INLINE_MAX_ITEMS

    def try_save(self, checkpoint: Checkpoint, fence: Fence = NO_FENCE) -> bool:
        """One attempt at :meth:`save` that never waits: False when the database was busy.

        Run with a busy timeout of 0 (on the event loop's thread); the caller then hands the save
        to the worker thread, which waits and retries. Other failures raise as from ``save``.
        """
        return self._try_write(
            lambda conn: self._save(conn, checkpoint, fence), checkpoint.session_id
        )

    def try_append_events(self, session_id: str, fence: Fence) -> bool:
        """One attempt at :meth:`append_events` that never waits (see :meth:`try_save`)."""
        if not (fence.events or fence.builds_on is not None):
            return True
        return self._try_write(self._append_work(session_id, fence), session_id)

    def _try_write(self, work: Callable[[sqlite3.Connection], object], sid: str) -> bool:
        conn = self.conn
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if _is_busy(exc):
                return False  # nothing was done: the cached head is still right
            raise CheckpointError(f"{self.location}: {exc}") from exc
        except sqlite3.DatabaseError as exc:
            raise CheckpointError(f"{self.location}: {exc}") from exc
        try:
            work(conn)
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            self._forget(sid)
            if isinstance(exc, sqlite3.OperationalError) and _is_busy(exc):
                return False
            if isinstance(exc, sqlite3.DatabaseError):
                raise CheckpointError(f"{self.location}: {exc}") from exc
            raise
        return True

    def _save(self, conn: sqlite3.Connection, cp: Checkpoint, fence: Fence) -> None:
        sid, state = cp.session_id, cp.state
        row = self._rows.get(sid) if self._trusted(conn) else None
        if row is None:
            fetched = conn.execute(
                "SELECT latest_step, uid, msg_next, err_next FROM sessions WHERE id = ?", (sid,)
            ).fetchone()
            if fetched is None:
                latest, uid, msg_next, err_next = None, uuid.uuid4().hex, 0, 0
            else:
                latest, uid, msg_next, err_next = cast("tuple[int, str, int, int]", fetched)
        else:
            latest, uid, msg_next, err_next = row.latest, row.uid, row.msg_next, row.err_next
        plan = saves.plan_save(sid, cp.step, fence.builds_on, latest, fence.events)
        head = self._heads.get(sid)
        if head is not None and (head.uid != uid or head.step != latest):
            head = None
        if head is not None and head.messages is state.messages and head.errors is state.errors:
            # Neither channel changed (same frozen tuples): nothing to append, windows unchanged.
            msg_start, err_start = head.msg_start, head.err_start
        else:
            msg_start, msg_next = self._place(
                conn, sid, MESSAGES, head, state.messages, msg_next, codec.encode_messages
            )
            err_start, err_next = self._place(
                conn, sid, ERRORS, head, state.errors, err_next, codec.encode_errors
            )
        keep = cp.keep_tasks_of
        if keep is not None or row is None or sid not in self._tasks_clean:
            tasks.drop(conn, sid, keep)
            if keep is None:
                self._tasks_clean.add(sid)
        new_head = _Head(
            uid=uid,
            step=cp.step,
            messages=state.messages,
            msg_start=msg_start,
            errors=state.errors,
            err_start=err_start,
            extra=state.extra,
            extra_step=None,
        )
        extra_json = self._encode_extra(sid, state.extra)
        ref, data = self._plan_extra(
            conn, sid, uid, state.extra, extra_json, checked=row is not None
        )
        parts = codec.StepJson.of(cp)
        columns = (
            time_text(cp.created_at),
            parts.ran,
            parts.skipped,
            parts.updated,
            parts.frontier,
            parts.versions,
            parts.cursor,
            msg_start,
            len(state.messages),
            err_start,
            len(state.errors),
            ref,
            data,
        )
        write_step(conn, plan, sid, cp.step, columns)
        insert_events(conn, session_of(sid), plan.events)  # a subgraph's: the session's
        now = now_text()
        if not plan.moves_head:  # an older step than the stored latest: history only
            assert latest is not None
            conn.execute(
                "UPDATE sessions SET msg_next = ?, err_next = ?, updated_at = ? WHERE id = ?",
                (msg_next, err_next, now, sid),
            )
            legacy = row.legacy if row else True
            saves.remember(
                self._rows, sid, _Row(latest, uid, msg_next, err_next, legacy), self._forget
            )
            return
        if len(extra_json) <= HEAD_EXTRA_MAX or ref is None:
            whole = data if ref is None and data is not None else extra_json.data()
            head_extra = HeadExtra(whole=whole)
        else:
            head_extra = HeadExtra(ref=ref, delta=data)
        head_blob = encode_head(cp, msg_start, err_start, parts, head_extra)
        if latest is None:
            conn.execute(
                "INSERT INTO sessions (id, created_at, updated_at, latest_step, uid, msg_next, "
                "err_next, head) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (sid, now, now, cp.step, uid, msg_next, err_next, head_blob),
            )
        else:
            conn.execute(
                "UPDATE sessions SET updated_at = ?, latest_step = ?, msg_next = ?, "
                "err_next = ?, head = ? WHERE id = ?",
                (now, cp.step, msg_next, err_next, head_blob, sid),
            )
        if latest is not None and (row is None or row.legacy):
            # A head written before schema version 4 may have left its extra there.
            conn.execute("DELETE FROM session_extra WHERE session_id = ?", (sid,))
        saves.remember(self._heads, sid, new_head, self._forget)
        saves.remember(self._rows, sid, _Row(cp.step, uid, msg_next, err_next, False), self._forget)

    def _trusted(self, conn: sqlite3.Connection) -> bool:
        """Whether what this connection cached is still what the file holds.

        ``data_version`` changes when another connection (another process, or a hand-written
        ``DELETE``) commits; this connection's own commits leave it unchanged.
        """
        version = cast("int", conn.execute("PRAGMA data_version").fetchone()[0])
        if version == self._data_version:
            return True
        self._data_version = version
        self._rows.clear()
        self._tasks_clean.clear()
        return False

    def _encode_extra(self, sid: str, extra: Mapping[str, Any]) -> codec.ExtraJson:
        cached = self._extra_json.get(sid)
        if cached is not None and cached.extra is extra:  # frozen: same object, same JSON
            return cached
        encoded = codec.ExtraJson.of(extra, cached)
        self._extra_json[sid] = encoded
        return encoded

    def _forget(self, sid: str) -> None:
        self._tasks_clean.discard(sid)
        self._heads.pop(sid, None)
        self._bases.pop(sid, None)
        self._rows.pop(sid, None)
        self._extra_json.pop(sid, None)

    def _place(
        self,
        conn: sqlite3.Connection,
        sid: str,
        channel: str,
        head: _Head | None,
        current: tuple[Any, ...],
        log_next: int,
        encode: Callable[[Sequence[Any]], list[bytes]],
    ) -> tuple[int, int]:
        """Where a channel's items live in the log (appending what is new): (start, log_next)."""
        if head is None:
            previous, previous_start = None, 0
        elif channel == MESSAGES:
            previous, previous_start = head.messages, head.msg_start
        else:
            previous, previous_start = head.errors, head.err_start
        if previous is current and previous_start + len(current) == log_next:
            return previous_start, log_next
        start, first_new = codec.plan_append(previous, previous_start, current, log_next)
        items = encode(current[first_new:])
        if items:
            conn.executemany(
                "INSERT INTO channel_log (session_id, channel, idx, item) VALUES (?, ?, ?, ?)",
                [(sid, channel, log_next + offset, item) for offset, item in enumerate(items)],
            )
        return start, log_next + len(items)

    def _plan_extra(
        self,
        conn: sqlite3.Connection,
        sid: str,
        uid: str,
        extra: Mapping[str, Any],
        blob: codec.ExtraJson,
        *,
        checked: bool,
    ) -> tuple[int | None, bytes | None]:
        """The step row's ``(extra_ref, extra_data)``; ``checked``: the cache is trusted."""
        base = self._bases.get(sid)
        if base is not None and (
            base.uid != uid or (not checked and not extras.ref_exists(conn, sid, base.ref))
        ):
            base = None  # another connection deleted the session or collected the row
        ref, data, base = extras.plan(conn, sid, uid, base, extra, blob)
        if base is None:
            self._bases.pop(sid, None)
        else:
            self._bases[sid] = base
        return ref, data

    # --- load ------------------------------------------------------------------------------

    def probe_absent(self, session_id: str) -> bool:
        """One autocommit read: True iff no such session; any error answers False (unknown)."""
        try:
            found = self.conn.execute(
                "SELECT 1 FROM sessions WHERE id = ?", (session_id,)
            ).fetchone()
        except sqlite3.Error:
            return False  # the worker's load will retry or report it
        return found is None

    def load_latest(self, session_id: str) -> Checkpoint | None:
        return self.transaction(lambda conn: self._load_head(conn, session_id), write=False)

    def load(self, session_id: str, step: int) -> Checkpoint | None:
        def work(conn: sqlite3.Connection) -> Checkpoint | None:
            row = conn.execute(
                "SELECT latest_step FROM sessions WHERE id = ?", (session_id,)
            ).fetchone()
            if row is not None and row[0] == step:
                return self._load_head(conn, session_id)
            return load_step(conn, self.location, session_id, step)

        return self.transaction(work, write=False)

    def _load_head(self, conn: sqlite3.Connection, sid: str) -> Checkpoint | None:
        row = conn.execute(
            "SELECT s.uid, s.head, e.extra FROM sessions s "
            "LEFT JOIN session_extra e ON e.session_id = s.id WHERE s.id = ?",
            (sid,),
        ).fetchone()
        if row is None:
            return None
        uid, head_blob, extra_blob = cast("tuple[str, bytes, bytes | None]", row)
        head = cast("dict[str, Any]", codec.loads(head_blob))
        msg_start, msg_count = cast("list[int]", head["messages"])
        err_start, err_count = cast("list[int]", head["errors"])
        messages = codec.decode_messages(
            read_log(conn, self.location, sid, MESSAGES, msg_start, msg_count)
        )
        errors = codec.decode_errors(
            read_log(conn, self.location, sid, ERRORS, err_start, err_count)
        )
        extra = codec.decode_extra(load_head_extra(conn, self.location, sid, head, extra_blob))
        state = VersionedState(
            messages=messages, extra=extra, errors=errors, versions=head["versions"]
        )
        checkpoint = Checkpoint(
            session_id=sid,
            step=head["step"],
            state=state,
            frontier=tuple(head["frontier"]),
            ran_nodes=tuple(head["ran"]),
            skipped_nodes=tuple(head["skipped"]),
            updated_channels=tuple(head["updated"]),
            cursor=codec.freeze_cursor(head["cursor"]),
            created_at=datetime.fromisoformat(head["created_at"]),
        )
        # Resuming continues the log where it is; the first changed extra after it gets a new base.
        saves.remember(self._heads, sid, _Head(
            uid=uid,
            step=checkpoint.step,
            messages=messages,
            msg_start=msg_start,
            errors=errors,
            err_start=err_start,
            extra=extra,
            extra_step=None,
        ), self._forget)  # fmt: skip
        return checkpoint

    # --- listing, deleting, events -----------------------------------------------------------

    def history(self, session_id: str) -> list[StepInfo]:
        return self.transaction(lambda conn: read_history(conn, session_id), write=False)

    def list_sessions(self) -> list[SessionInfo]:
        return self.transaction(read_sessions, write=False)

    def delete_session(self, session_id: str) -> bool:
        """The session's rows go, and its subgraphs' with them (the delete trigger's work)."""

        def work(conn: sqlite3.Connection) -> bool:
            deleted = conn.execute("DELETE FROM sessions WHERE id = ?", (session_id,)).rowcount
            events = conn.execute("DELETE FROM events WHERE session_id = ?", (session_id,)).rowcount
            return deleted + events > 0

        prefix = subgraph_keys_prefix(session_id)
        for key in {*self._heads, *self._rows, *self._bases, *self._extra_json}:
            if key.startswith(prefix):
                self._forget(key)
        self._forget(session_id)
        return self.transaction(work)

    def append_events(self, session_id: str, fence: Fence) -> None:
        """Insert events after the session's latest step (recorded with it), fenced."""
        if fence.events or fence.builds_on is not None:
            self.transaction(self._append_work(session_id, fence))

    def _append_work(self, session_id: str, fence: Fence) -> Callable[[sqlite3.Connection], None]:
        def work(conn: sqlite3.Connection) -> None:
            latest = self._latest(conn, session_id)
            plan = saves.plan_append(session_id, fence.builds_on, latest, fence.events)
            if plan.replaces:
                delete_events(conn, session_id, plan.rows)
            insert_events(conn, session_id, plan.rows)

        return work

    def _latest(self, conn: sqlite3.Connection, sid: str) -> int | None:
        row = self._rows.get(sid) if self._trusted(conn) else None
        if row is not None:
            return row.latest
        found = conn.execute("SELECT latest_step FROM sessions WHERE id = ?", (sid,)).fetchone()
        return None if found is None else cast("int", found[0])

    def load_events(
        self, session_id: str, after_seq: int, limit: int | None
    ) -> list[dict[str, Any]]:
        return self.transaction(
            lambda conn: select_events(conn, session_id, after_seq, limit), write=False
        )

    def save_task_results(self, sid: str, builds_on: int, results: Mapping[int, Any]) -> None:
        self._tasks_clean.discard(sid)
        self.transaction(lambda conn: tasks.save(conn, sid, builds_on, results))

    def load_task_results(self, sid: str, builds_on: int) -> dict[int, Any]:
        found = self.transaction(lambda conn: tasks.load(conn, sid, builds_on), write=False)
        if found:
            self._tasks_clean.discard(sid)
        return found

    def forget_heads(self) -> None:
        """Drop the delta bookkeeping (after maintenance rewrote rows)."""
        self._tasks_clean.clear()
        self._heads.clear()
        self._bases.clear()
        self._rows.clear()


class _Row(NamedTuple):
    """A session's row as this connection last wrote it; ``legacy``: ``session_extra`` may hold a
    row for it (written before schema version 4; the next head write deletes it).

    (A NamedTuple: built at every save, and a frozen dataclass costs several times as much.)"""

    latest: int
    uid: str
    msg_next: int
    err_next: int
    legacy: bool
