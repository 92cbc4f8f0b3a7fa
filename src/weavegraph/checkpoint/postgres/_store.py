"""Saving and loading checkpoints in PostgreSQL, inside a transaction the caller opened.

The layout is SQLite's (see ``sqlite/_store``): messages and errors in the session's append-only
``channel_log``, ``extra`` whole or as a delta over a row of the session's ``extra_log`` (see
``_extra``), never over another step, so any subset of ``steps`` rows can be deleted by hand
and the others still load. A save holds the session row's lock (an upsert that locks it),
checks its fence there (``checkpoint/_save_plan``) and inserts its step and event rows, so many
writers are safe; saves batched by group commit are written with a few statements per batch
(``_batch``). ``heads`` and ``bases`` are this process's bookkeeping; they are checked against the
database on every save.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, cast

from ..._iso import iso
from ...errors import CheckpointConflict, CheckpointError, SessionBusy
from ...state import VersionedState
from .. import _codec as codec
from .. import _save_plan as saves
from .._codec import HeadCache
from ..base import Checkpoint, session_of, subgraph_keys_prefix
from . import _batch as batch
from . import _claim as claims
from . import _extra as extras
from . import _sql as sql
from ._rows import PgAppend, PgSave, RowState, is_stored, refuse_unclaimed
from ._sql import IDS, ids, q

_STEP_COLUMNS = (
    "created_at, ran_nodes, skipped_nodes, updated_channels, frontier, versions, cursor, "
    "msg_start, msg_count, err_start, err_count, extra_ref, extra_data"
)
MESSAGES, ERRORS = "messages", "errors"


class PgStore:
    """Checkpoint rows of one schema; every method runs on the connection it is given."""

    def __init__(self, schema: str, location: str) -> None:
        self.schema = schema
        self.location = location
        self.heads: dict[str, HeadCache] = {}
        # Per session, the extra_log row this process writes extra deltas against.
        self.bases: dict[str, extras.Base] = {}
        # Sessions known to have no saved task results (so a save need not delete any).
        self.tasks_clean: set[str] = set()
        # Per session, its row as this process's last commit of it left it (see ``_fast_save``).
        self.rows: dict[str, RowState] = {}

    def forget(self) -> None:
        """Drop the bookkeeping (after an error or maintenance): the next saves re-read."""
        self.tasks_clean.clear()
        self.heads.clear()
        self.bases.clear()
        self.rows.clear()

    def remember(self, keys: Iterable[str]) -> Callable[[], None]:
        """A function that puts the bookkeeping of these sessions back as it is now (after a
        plan that was not committed)."""
        kept = [
            (key, self.heads.get(key), self.bases.get(key), self.rows.get(key),
             key in self.tasks_clean)
            for key in keys
        ]  # fmt: skip

        def restore() -> None:
            for key, head, base, row, clean in kept:
                for cache, value in ((self.heads, head), (self.bases, base), (self.rows, row)):
                    if value is None:
                        cache.pop(key, None)
                    else:
                        cache[key] = value  # pyright: ignore[reportArgumentType]
                if clean:
                    self.tasks_clean.add(key)
                else:
                    self.tasks_clean.discard(key)

        return restore

    def _forget(self, key: str) -> None:
        """Drop the bookkeeping of the session (or subgraph) stored as ``key``."""
        self.heads.pop(key, None)
        self.bases.pop(key, None)
        self.rows.pop(key, None)
        self.tasks_clean.discard(key)

    def forget_session(self, session_id: str) -> None:
        """Drop the bookkeeping of a deleted session and of its subgraphs."""
        prefix = subgraph_keys_prefix(session_id)
        for key in [key for key in self.rows.keys() | self.heads.keys() | self.bases.keys()
                    if key == session_id or key.startswith(prefix)]:  # fmt: skip
            self._forget(key)

    def q(self, template: str) -> Any:
        return q(template, self.schema)

    async def fetchone(self, conn: Any, template: str, params: tuple[Any, ...] = ()) -> Any:
        return await sql.fetchone(conn, self.q(template), params)

    async def fetchall(self, conn: Any, template: str, params: tuple[Any, ...] = ()) -> list[Any]:
        return await sql.fetchall(conn, self.q(template), params)

    # --- save ------------------------------------------------------------------------------

    async def save(
        self,
        conn: Any,
        cp: Checkpoint,
        builds_on: int | None = None,
        events: Sequence[Mapping[str, Any]] = (),
    ) -> None:
        """Save ``cp`` (and its events, fenced by ``builds_on``) in the caller's transaction."""
        refused = await self.save_all(conn, (PgSave(cp, builds_on, events),))
        if refused[0] is not None:
            raise refused[0]

    async def save_all(
        self, conn: Any, checkpoints: Sequence[PgSave | PgAppend]
    ) -> list[Exception | None]:
        """Save ``checkpoints`` in the caller's transaction, in order per session; per save, the
        error that refused it (nothing of it written) or None. A claimed run's closing events
        (:class:`PgAppend`) go after its session's latest step, in the same statements.

        Each round of distinct sessions is three statements whatever its size (``_batch``): every
        session row upserted and locked at once (in session id order, so concurrent batches never
        wait on each other in a cycle), then all step rows inserted and all session rows moved.
        In pipeline mode that is two round trips. A session's later checkpoints wait for the next
        round. A save is refused alone when its fence (the step it builds on, the claim it holds,
        or another run's claim) says no; a step or event row already stored fails the whole
        transaction (the group commit then retries each save alone)."""
        refused: list[Exception | None] = [None] * len(checkpoints)
        pending = list(enumerate(checkpoints))
        while pending:
            seen: set[str] = set()
            now_round: list[tuple[int, PgSave | PgAppend]] = []
            later: list[tuple[int, PgSave | PgAppend]] = []
            for index, item in pending:
                sid = item.key
                (later if sid in seen else now_round).append((index, item))
                seen.add(sid)
            await self._save_round(conn, now_round, refused)
            pending = later
        return refused

    async def _save_round(
        self, conn: Any, now_round: Sequence[tuple[int, PgSave | PgAppend]],
        refused: list[Exception | None],
    ) -> None:  # fmt: skip
        """One round of :meth:`save_all` (distinct sessions): lock, plan each, write them all."""
        # A subgraph's save is fenced by its session's claim: that row is locked too.
        locks = {item.key for _, item in now_round}
        locks |= {item.claim.session_id for _, item in now_round if item.claim}
        now = datetime.now(UTC)
        keys = ids(locks)
        await conn.execute(self.q(batch.CREATE_SESSIONS), (now, now, keys))
        locked = await self.fetchall(conn, batch.LOCK_SESSIONS, (keys,))
        rows = {cast("str", row[0]): row[1:] for row in locked}
        writes = batch.Writes()
        for index, item in now_round:
            try:
                if type(item) is PgAppend:
                    writes.append(item, self._decide_append(item, rows[item.key]))
                    continue
                assert type(item) is PgSave
                plan = await self._decide(conn, item, rows)
            except (CheckpointError, SessionBusy) as refusal:
                refused[index] = refusal
                continue
            if plan is not None:
                row = RowState.of(*rows[item.key][:4])
                await self._plan(conn, item, plan, row, writes)
                writes.done.extend(item.consume)
        if writes.rewrites:  # rows rewritten under the fence (deleted, then inserted)
            await conn.execute(self.q(batch.DELETE_STEPS), writes.rewrites.params())
        statement = writes.statement(now)
        if statement is not None:
            await conn.execute(self.q(statement[0]), statement[1])

    def _decide_append(self, item: PgAppend, row: Any) -> Sequence[saves.EventRow]:
        """The event rows of ``item``, its fence passed (the claim, the step it builds on)
        under its session row's lock; raises what refuses it."""
        latest = cast("int", row[0])
        claims.verify(item.claim, row[batch.TOKEN], latest, None)
        stored = None if latest < 0 else latest
        return saves.plan_append(item.key, item.builds_on, stored, item.events).rows

    async def _decide(
        self, conn: Any, item: PgSave, rows: Mapping[str, Any]
    ) -> saves.SavePlan | None:
        """The fence of ``item``, given the locked session rows as ``LOCK_SESSIONS`` returned
        them: its save plan, or None when it was already committed (a retry after its COMMIT's
        answer was lost). Raises what refuses it; nothing is written here."""
        cp = item.checkpoint
        sid = cp.session_id
        row = rows[sid]
        latest = cast("int", row[0])
        claim = item.claim
        if claim is None:
            refuse_unclaimed(sid, row[4:7])
        else:
            own = rows[claim.session_id]
            # (a subgraph's step numbers are its own: only the session's claim is checked)
            step = cp.step if item.extends is not None else None
            claims.verify(claim, own[batch.TOKEN], cast("int", own[0]), step)
            item.cancel_requested = bool(own[batch.CANCEL_REQUESTED])
        # -1: the row was created just now (a new session); the fence is checked under its lock.
        stored = None if latest < 0 else latest
        try:
            return saves.plan_save(sid, cp.step, item.builds_on, stored, item.events)
        except CheckpointConflict as conflict:
            if (
                item.retried
                and conflict.stored == cp.step
                and await is_stored(conn, self.schema, cp)
            ):
                return None
            raise

    async def _plan(
        self, conn: Any, item: PgSave, plan: saves.SavePlan, row: RowState, writes: batch.Writes
    ) -> None:
        """Add ``item``'s rows to ``writes`` (its fence passed: ``plan``, on the locked ``row``);
        stale task results are deleted and ``extra_log`` rows written here."""
        cp = item.checkpoint
        sid = cp.session_id
        if plan.write is saves.StepWrite.REWRITE or plan.replaces:
            writes.rewrites.add(sid, cp.step)
        head = self.trusted_head(sid, row)
        if row.latest < 0 and cp.keep_tasks_of is None:  # no step yet: no task results
            self.tasks_clean.add(sid)
        else:
            await self._drop_tasks(conn, sid, cp.keep_tasks_of, trusted=head is not None)
        extra = await self._plan_extra(conn, sid, row.uid, cp.state.extra)
        self.add_rows(item, plan, row, head, extra, writes)

    def trusted_head(self, sid: str, row: RowState) -> HeadCache | None:
        """This process's cache of ``sid``'s head, if ``row`` says it is still the stored one."""
        head = self.heads.get(sid)
        if head is None or head.uid != row.uid or head.step != row.latest:
            return None
        return head

    def add_rows(
        self, item: PgSave, plan: saves.SavePlan, row: RowState, head: HeadCache | None,
        extra: tuple[int | None, bytes | None], writes: batch.Writes,
    ) -> None:  # fmt: skip
        """Add ``item``'s step, session, log and event rows to ``writes`` (nothing is read or
        written here; ``head``: :meth:`trusted_head`) and remember the session row as the commit
        will leave it."""
        cp = item.checkpoint
        sid, state = cp.session_id, cp.state
        latest, msg_next, err_next, created, uid = row
        writes.events.add(session_of(sid), plan.events)  # a subgraph's events are the session's
        msg_start, msg_new = codec.plan_append(
            head.messages if head else None, head.msg_start if head else 0, state.messages, msg_next
        )
        err_start, err_new = codec.plan_append(
            head.errors if head else None, head.err_start if head else 0, state.errors, err_next
        )
        if msg_new < len(state.messages):
            new = codec.encode_messages(state.messages[msg_new:])
            writes.logs.add(sid, MESSAGES, msg_next, new)
        if err_new < len(state.errors):
            writes.logs.add(sid, ERRORS, err_next, codec.encode_errors(state.errors[err_new:]))
        msg_next += len(state.messages) - msg_new
        err_next += len(state.errors) - err_new
        parts = codec.StepJson.of(cp)
        texts = (
            parts.ran.decode(), parts.skipped.decode(), parts.updated.decode(),
            parts.frontier.decode(), parts.versions.decode(),
        )  # fmt: skip
        extends = item.extends
        writes.steps.add(
            sid, cp.step, codec.utc(cp.created_at), texts,
            parts.cursor, (msg_start, len(state.messages), err_start, len(state.errors)),
            extra, None if extends is None else extends.epoch,
        )  # fmt: skip
        claimed = extends is not None
        lease = None
        if extends is not None:
            item.planned_at = time.monotonic()
            lease = claims.renewal(extends, item.planned_at)
            item.renews = lease is not None
        release = None if item.release is None else item.release.value
        if not plan.moves_head:
            writes.sessions.add(
                sid, (msg_next, err_next), None, None, None, claimed, lease, release
            )
            saves.remember(
                self.rows, sid, RowState(latest, msg_next, err_next, created, uid), self._forget
            )
            return
        # The row is locked and latest_step <= cp.step: the head moves to this step.
        changed = head is None or head.extra != state.extra  # (values shared: mostly identity)
        writes.sessions.add(
            sid, (msg_next, err_next), cp.step, codec.encode_head(cp, msg_start, err_start, parts),
            codec.dumps(state.extra) if changed else None, claimed, lease, release,
        )  # fmt: skip
        saves.remember(
            self.rows, sid, RowState(cp.step, msg_next, err_next, created, uid), self._forget
        )
        saves.remember(self.heads, sid, HeadCache(
            uid=uid, step=cp.step, messages=state.messages, msg_start=msg_start,
            errors=state.errors, err_start=err_start, extra=state.extra,
        ), self._forget)  # fmt: skip

    async def latest_for_update(self, conn: Any, sid: str) -> int | None:
        """The session's latest step, its row locked until the transaction ends (None: none);
        SessionBusy while a claim on it is alive (a write without it is refused)."""
        row = await self.fetchone(
            conn,
            "SELECT latest_step, claim_token IS NOT NULL AND lease_until >= now(), worker, "
            "extract(epoch FROM lease_until - now())::float8 "
            "FROM {schema}.sessions WHERE id = %s FOR UPDATE",
            (sid,),
        )
        if row is None:
            return None
        refuse_unclaimed(sid, row[1:])
        return None if row[0] < 0 else cast("int", row[0])

    async def insert_events(self, conn: Any, sid: str, rows: Sequence[saves.EventRow]) -> None:
        """Insert event rows (one statement); a seq already stored fails the transaction."""
        if rows:
            events = batch.EventRows()
            events.add(sid, rows)
            await conn.execute(self.q(batch.INSERT_EVENTS), events.params())

    async def _drop_tasks(self, conn: Any, sid: str, keep: int | None, *, trusted: bool) -> None:
        """Delete saved task results of committed steps (all but those planned after ``keep``).

        Skipped when this process knows there are none and no other process wrote the session
        since (``trusted``: the cached head is still the stored one).
        """
        if keep is None and trusted and sid in self.tasks_clean:
            return
        if keep is None:
            await conn.execute(
                self.q("DELETE FROM {schema}.task_results WHERE session_id = %s"), (sid,)
            )
            self.tasks_clean.add(sid)
        else:
            await conn.execute(
                self.q(
                    "DELETE FROM {schema}.task_results WHERE session_id = %s AND builds_on != %s"
                ),
                (sid, keep),
            )
            self.tasks_clean.discard(sid)

    async def save_task_results(
        self, conn: Any, sid: str, builds_on: int, results: Mapping[int, Any]
    ) -> None:
        self.tasks_clean.discard(sid)
        async with conn.cursor() as cur:
            await cur.executemany(
                self.q(
                    "INSERT INTO {schema}.task_results (session_id, builds_on, idx, result) "
                    "VALUES (%s, %s, %s, %s) ON CONFLICT (session_id, builds_on, idx) "
                    "DO UPDATE SET result = excluded.result"
                ),
                [(sid, builds_on, int(i), codec.dumps(r)) for i, r in results.items()],
            )

    async def load_task_results(self, conn: Any, sid: str, builds_on: int) -> dict[int, Any]:
        rows = await self.fetchall(
            conn,
            "SELECT idx, result FROM {schema}.task_results WHERE session_id = %s "
            "AND builds_on = %s",
            (sid, builds_on),
        )
        if rows:
            self.tasks_clean.discard(sid)
        return {cast("int", idx): codec.loads(bytes(blob)) for idx, blob in rows}

    async def _plan_extra(
        self, conn: Any, sid: str, uid: str, extra: Mapping[str, Any]
    ) -> tuple[int | None, bytes | None]:
        """The step row's ``(extra_ref, extra_data)``, under the session row's lock."""
        base = self.bases.get(sid)
        if base is not None and (
            base.uid != uid or not await extras.ref_exists(conn, self.schema, sid, base.ref)
        ):
            base = None  # the session was re-created, or prune/vacuum collected the row
        full = codec.dumps(extra)
        ref, data, base = await extras.plan(conn, self.schema, sid, uid, base, extra, full)
        if base is None:
            self.bases.pop(sid, None)
        else:
            self.bases[sid] = base
        return ref, data

    # --- load ------------------------------------------------------------------------------

    async def load(self, conn: Any, sid: str, step: int) -> Checkpoint | None:
        row = await self.fetchone(
            conn, "SELECT latest_step FROM {schema}.sessions WHERE id = %s", (sid,)
        )
        if row is not None and row[0] == step:
            checkpoint = await self.load_head(conn, sid)
            # Each statement sees the latest commits: a save may have moved the head since.
            if checkpoint is not None and checkpoint.step == step:
                return checkpoint
        return await self._load_step(conn, sid, step)

    async def load_head(self, conn: Any, sid: str) -> Checkpoint | None:
        return (await self.load_heads(conn, (sid,))).get(sid)

    async def load_heads(self, conn: Any, sids: Sequence[str]) -> dict[str, Checkpoint]:
        """The latest checkpoint of each of ``sids`` that has one: two statements whatever their
        number (the heads, then every message and error window at once)."""
        rows = await self.fetchall(
            conn,
            "SELECT id, head, extra, created_at FROM {schema}.sessions "
            f"WHERE id = ANY({IDS}) AND latest_step >= 0",  # (a queued session has no step yet)
            (ids(sids),),
        )
        heads = [
            (cast("str", sid), cast("dict[str, Any]", codec.loads(bytes(head))), extra, created)
            for sid, head, extra, created in rows
        ]
        windows: list[tuple[str, str, int, int]] = []
        for sid, head, _, _ in heads:
            for channel in (MESSAGES, ERRORS):
                start, count = cast("list[int]", head[channel])
                windows.append((sid, channel, start, count))
        logs = await self.read_logs(conn, windows)
        found: dict[str, Checkpoint] = {}
        for sid, head, extra_blob, created in heads:
            msg_start, _ = cast("list[int]", head["messages"])
            err_start, _ = cast("list[int]", head["errors"])
            messages = codec.decode_messages(logs.get((sid, MESSAGES), ()))
            errors = codec.decode_errors(logs.get((sid, ERRORS), ()))
            extra = codec.decode_extra(codec.loads(bytes(extra_blob)))
            found[sid] = Checkpoint(
                session_id=sid, step=head["step"], frontier=tuple(head["frontier"]),
                state=VersionedState(messages=messages, extra=extra, errors=errors, versions=head["versions"]),
                ran_nodes=tuple(head["ran"]), skipped_nodes=tuple(head["skipped"]),
                updated_channels=tuple(head["updated"]), cursor=codec.freeze_cursor(head["cursor"]),
                created_at=datetime.fromisoformat(head["created_at"]),
            )  # fmt: skip
            saves.remember(self.heads, sid, HeadCache(
                uid=iso(cast("datetime", created)), step=head["step"], messages=messages,
                msg_start=msg_start, errors=errors, err_start=err_start, extra=extra,
            ), self._forget)  # fmt: skip
        return found

    async def _load_step(self, conn: Any, sid: str, step: int) -> Checkpoint | None:
        row = await self.fetchone(
            conn,
            f"SELECT {_STEP_COLUMNS} FROM {{schema}}.steps WHERE session_id = %s AND step = %s",
            (sid, step),
        )
        if row is None:
            return None
        (created, ran, skipped, updated, frontier, versions, cursor,
         msg_start, msg_count, err_start, err_count, ref, data) = row  # fmt: skip
        extra = await extras.resolve(conn, self.schema, self.location, sid, ref, data)
        if extra is None:
            return None
        messages = await self.read_log(conn, sid, MESSAGES, msg_start, msg_count)
        errors = await self.read_log(conn, sid, ERRORS, err_start, err_count)
        state = VersionedState(
            messages=codec.decode_messages(messages), extra=codec.decode_extra(extra),
            errors=codec.decode_errors(errors), versions=versions,
        )  # fmt: skip
        return Checkpoint(
            session_id=sid, step=step, state=state, frontier=tuple(frontier), ran_nodes=tuple(ran),
            skipped_nodes=tuple(skipped), updated_channels=tuple(updated),
            cursor=codec.decode_cursor(bytes(cursor)), created_at=cast("datetime", created),
        )  # fmt: skip

    async def read_log(
        self, conn: Any, sid: str, channel: str, start: int, count: int
    ) -> list[bytes]:
        return (await self.read_logs(conn, ((sid, channel, start, count),))).get((sid, channel), [])

    async def read_logs(
        self, conn: Any, windows: Sequence[tuple[str, str, int, int]]
    ) -> dict[tuple[str, str], list[bytes]]:
        """The items of each ``(session, channel, start, count)`` window (one statement): by
        ``(session, channel)``; CheckpointError when a window is incomplete."""
        windows = [window for window in windows if window[3]]
        if not windows:
            return {}
        columns = tuple(map(list, zip(*windows, strict=True)))
        rows = await self.fetchall(conn, _READ_LOGS, (*columns, sorted(set(columns[0]))))
        logs: dict[tuple[str, str], list[bytes]] = {}
        for sid, channel, item in rows:
            logs.setdefault((sid, channel), []).append(bytes(item))
        for sid, channel, _, count in windows:
            if len(logs.get((sid, channel), ())) != count:
                raise CheckpointError(
                    f"{self.location}: the {channel} log of {sid!r} is incomplete"
                )
        return logs


_READ_LOGS = (
    "SELECT l.session_id, l.channel, l.item FROM {schema}.channel_log AS l "
    "JOIN unnest(%s::text[], %s::text[], %s::integer[], %s::integer[]) AS w (sid, channel, lo, n) "
    "ON l.session_id = w.sid AND l.channel = w.channel AND l.idx >= w.lo AND l.idx < w.lo + w.n "
    "WHERE l.session_id = ANY(%s) "  # (looked up in the key: see _sql.IDS)
    "ORDER BY l.session_id, l.channel, l.idx"
)
