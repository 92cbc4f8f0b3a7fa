"""A batch of saves planned from this process's own last commits: one round trip.

The ordinary batch (``PgStore.save_all``) locks its session rows, reads them, decides each save
and then writes: two round trips. Most batches save sessions whose rows this process itself left
as they are (``PgStore.rows``: the latest step, the log counters, the row's incarnation) under
claims it holds: :func:`plan` decides such a batch before anything is read, and :func:`send_one`
runs it as one statement, its own transaction: the rows locked (in session id order, as every
batch locks them), then the writes, each part of which writes only if every locked row is still
what the plan assumed (``_batch.GUARD``: latest step, counters, incarnation, claim, the
``extra_log`` row a delta builds on). A batch that makes sessions (:func:`send`) inserts their rows
first, in the same implicit transaction of one pipeline. If the guard failed nothing was written,
and the batch goes the ordinary way.

A batch is planned only when nothing of it needs a read first: no session twice, no re-save of
a stored step, no saved task results to drop, no new ``extra_log`` row, no subgraph saved under
its parent's claim. A session this process never committed is planned only as a new one (its
row made by this batch).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ...errors import CheckpointError, SessionBusy
from .. import _codec as codec
from .. import _save_plan as saves
from .._extra_plan import Append, Reuse, plan_extra
from . import _batch as batch
from ._rows import PgAppend, PgSave, RowState
from ._sql import ids
from ._store import PgStore

__all__ = ["FastBatch", "finish", "plan", "send", "send_one"]


@dataclass(slots=True)
class FastBatch:
    """A batch decided from the cached rows: what to write and what it assumes."""

    items: Sequence[PgSave | PgAppend]
    now: datetime
    undo: Callable[[], None]
    """Puts the store's bookkeeping of the batch's sessions back as it was before planning."""
    writes: batch.Writes = field(default_factory=batch.Writes)
    guard: batch.GuardRows = field(default_factory=batch.GuardRows)
    new: list[str] = field(default_factory=list[str])
    """Sessions this batch makes (none of this process's commits named them)."""


def plan(store: PgStore, items: Sequence[PgSave | PgAppend]) -> FastBatch | None:
    """``items`` decided from the cached rows, or None when any of them needs a read first.

    Planning updates the store's caches as an ordinary batch does; ``FastBatch.undo`` puts
    them back if it is not committed as planned (as this function does when it gives up)."""
    keys = {item.key for item in items}
    if len(keys) != len(items):
        return None
    fast = FastBatch(items, datetime.now(UTC), store.remember(keys))
    for item in items:
        if item.retried or not _add(store, fast, item):
            fast.undo()
            return None
    return fast


def _add(store: PgStore, fast: FastBatch, item: PgSave | PgAppend) -> bool:
    claim = item.claim
    if claim is not None and claim.session_id != item.key:
        return False  # a subgraph under its session's claim: that row is fenced too
    token = None if claim is None else claim.token
    row = store.rows.get(item.key)
    if type(item) is PgAppend:
        if row is None:
            return False
        try:
            planned = saves.plan_append(item.key, item.builds_on, _stored(row), item.events)
        except CheckpointError:
            return False
        fast.writes.append(item, planned.rows)
        fast.guard.add(item.key, row, token, None)
        return True
    assert type(item) is PgSave
    cp = item.checkpoint
    if row is None:
        if item.builds_on not in (None, -1):
            return False
        row = RowState.of(-1, 0, 0, fast.now)
        fast.new.append(item.key)
    try:
        if claim is not None and not row.latest <= cp.step <= row.latest + 1:
            return False
        decided = saves.plan_save(item.key, cp.step, item.builds_on, _stored(row), item.events)
    except (CheckpointError, SessionBusy):
        return False
    if decided.write is saves.StepWrite.REWRITE or decided.replaces:
        return False
    head = store.trusted_head(item.key, row)
    if not _no_tasks(store, item, row, trusted=head is not None):
        return False
    extra = _extra(store, item, row)
    if extra is None:
        return False
    stored_extra, ref = extra
    store.add_rows(item, decided, row, head, stored_extra, fast.writes)
    fast.writes.done.extend(item.consume)
    fast.guard.add(item.key, row, token, ref)
    return True


def _stored(row: RowState) -> int | None:
    return None if row.latest < 0 else row.latest


def _no_tasks(store: PgStore, item: PgSave, row: RowState, *, trusted: bool) -> bool:
    """Whether the session has no saved task results to drop (the ordinary batch's check)."""
    if item.checkpoint.keep_tasks_of is not None:
        return False
    if row.latest < 0:
        store.tasks_clean.add(item.key)
        return True
    return trusted and item.key in store.tasks_clean


def _extra(
    store: PgStore, item: PgSave, row: RowState
) -> tuple[tuple[int | None, bytes | None], int | None] | None:
    """The step row's extra columns and the ``extra_log`` row they build on (for the guard);
    None when a new ``extra_log`` row is needed."""
    sid, extra = item.key, item.checkpoint.state.extra
    uid = row.uid
    base = store.bases.get(sid)
    if base is not None and base.uid != uid:
        return None
    step = plan_extra(uid, base, extra, codec.dumps(extra))
    if isinstance(step, Append):
        return None
    ref, data, after = step.row()
    if after is None:
        store.bases.pop(sid, None)
    else:
        store.bases[sid] = after
    return (ref, data), (ref if isinstance(step, Reuse) else None)


async def send_one(conn: Any, store: PgStore, fast: FastBatch) -> bool:
    """Run a batch that makes no session as one statement on ``conn`` (outside a transaction
    block: the statement is its own transaction), which locks the rows, checks the guard and
    writes; whether it wrote. If so, each claimed save learns whether a cancel was requested."""
    statement = fast.writes.statement(fast.now, fast.guard, lock=True)
    assert statement is not None  # (the guard's answer at least)
    return await finish(fast, await conn.execute(store.q(statement[0]), statement[1]))


async def send(conn: Any, store: PgStore, fast: FastBatch) -> Any:
    """Queue a batch that makes sessions on ``conn`` (in pipeline mode, one implicit
    transaction): the missing rows made, then the batch's statement as :func:`send_one` runs
    it (locking them all in session id order, the new ones included). Its cursor, whose answer
    arrives with the commit's (:func:`finish`)."""
    await conn.execute(store.q(batch.CREATE_SESSIONS), (fast.now, fast.now, ids(fast.new)))
    statement = fast.writes.statement(fast.now, fast.guard, lock=True)
    assert statement is not None  # (the guard's answer at least)
    return await conn.execute(store.q(statement[0]), statement[1])


async def finish(fast: FastBatch, answer: Any) -> bool:
    """Whether the batch's statement wrote (its cursor, once committed); if so, each claimed
    save learns whether a cancel was requested."""
    row = await answer.fetchone()
    if row is None or not row[0]:
        return False
    _note_cancels(fast, set(row[1]))
    return True


def _note_cancels(fast: FastBatch, cancelled: set[str]) -> None:
    for item in fast.items:
        if type(item) is PgSave and item.claim is not None:
            item.cancel_requested = item.key in cancelled
