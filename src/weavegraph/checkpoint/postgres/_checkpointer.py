"""PostgreSQL checkpointer: the shared engine when many processes run sessions.

Same layout as SQLite (see ``checkpoint/_migration``): TIMESTAMPTZ times, JSONB name lists, BYTEA (orjson)
payloads so any JSON string, even one holding U+0000, round-trips exactly. Saves lock the session
row and only move its latest pointer forward, so many writers are safe (``_store``). The pool's
connections prepare their statements, and stop for good where a transaction pooler loses them
(``_prepared``). Connecting tries one direct connection first, so an unreachable server fails
within seconds (``_connect``); the URL may name the schema (``?schema=NAME``). Saves of sessions
running at once share transactions (``_group_commit``). An operation that meets a dropped pooled
connection (they are not pinged on checkout) probes the server and, if it answers, is retried once
on a fresh connection (the pool's broken connections replaced first), else fails at once (a server
stopped mid-run ends the run in seconds).
psycopg is imported lazily: it is the optional ``postgres`` extra.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast

from ...errors import CheckpointError, ConfigError
from ...status import RunStatus
from .. import _codec as codec
from .._save_plan import check_builds_on, plan_append
from ..base import (
    NAMESPACE_SEPARATOR,
    Checkpoint,
    MigrationResult,
    PruneResult,
    PruneRolledBack,
    SessionInfo,
    StepInfo,
    StorageStats,
    check_events_query,
    loaded_form,
    storage_key,
    stored_form,
)
from . import _claim as claims
from . import _fast_save as fast_save
from . import _maint as maint
from ._batch import duplicate_row
from ._claim import DEFAULT_LEASE_S, Claim
from ._claim_batch import (
    ClaimRequest,
    ReleaseRequest,
    claim_existing,
    read_claims,
    release_all,
    send_claims,
)
from ._claim_context import current, working_under
from ._connect import (
    Liveness,
    PgTarget,
    checkout,
    connect_once,
    open_pool,
    parse_target,
    with_settings,
)
from ._group_commit import GroupCommit
from ._hold import hold, in_process_holder
from ._lease import Heartbeats
from ._notify import Notifier
from ._prepared import PreparedStatements
from ._rows import PgAppend, PgSave
from ._schema import migrate, version
from ._sql import pipelined
from ._store import PgStore

if TYPE_CHECKING:
    from psycopg_pool import AsyncConnectionPool

__all__ = ["PostgresCheckpointer", "migrate_postgres"]

T = TypeVar("T")


class PostgresCheckpointer:
    """Checkpoints in PostgreSQL, safe for many writers and processes."""

    keeps_history: ClassVar[bool] = True

    def __init__(
        self, pool: AsyncConnectionPool[Any], target: PgTarget, prepared: PreparedStatements
    ) -> None:
        self._pool = pool
        self._prepared = prepared
        self.schema = target.schema
        self.location = target.location  # host:port/database and schema, never the password
        self.schema_before = 0
        self._store = PgStore(target.schema, target.location)
        self._liveness = Liveness(target)
        # A few batches in flight (not one per connection): saves that arrive meanwhile gather
        # into the next batch, and connections stay free for reads.
        batches = max(2, pool.max_size // 4)
        self._saves = GroupCommit[PgSave | PgAppend](self._save_batch, batches)
        # Claims and releases of runs starting and ending together share commits too.
        self._claims = GroupCommit[ClaimRequest](self._claim_batch, batches)
        self._releases = GroupCommit[ReleaseRequest](self._release_batch, batches)
        # And loads of sessions opening together share statements.
        self._loads = GroupCommit[_LoadRequest](self._load_batch, batches)
        self.target = target
        self.claims: dict[str, Claim] = {}
        """Sessions this process has claimed (a run, or ``weavegraph.queue``): the newest claim
        of each. Writes are fenced by the claim their task works under (:meth:`working_under`)."""
        self.lease_s = DEFAULT_LEASE_S
        """The lease of the claims this process's runs take (seconds; see :meth:`hold`)."""
        self.holder = in_process_holder()
        """The name those claims show to other processes (``SessionBusy`` names it)."""
        self.notifier = Notifier(target.conninfo, target.kwargs(), target.schema)
        """Announces committed steps to other processes (NOTIFY after commit)."""
        self.heartbeats = Heartbeats(self.execute, target.schema)
        """Keeps the claims of this process's in-process runs alive (``_hold``)."""
        self.giving_back: set[asyncio.Future[None]] = set()
        """Claims being given back by runs cancelled while claiming (waited for by close)."""

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        schema: str | None = None,
        max_size: int = 10,
        settings: dict[str, Any] | None = None,
        lease_s: float = DEFAULT_LEASE_S,
    ) -> PostgresCheckpointer:
        """Connect to ``url`` and migrate ``schema`` (else the URL's ``?schema=``, else ``public``).

        An unreachable server raises a CheckpointError naming it within a few seconds.
        ``settings``: extra libpq connection keywords (a worker's timeouts and keepalives).
        ``lease_s``: how long the claim of a run in this process outlives the process (a run
        killed mid-step is taken over after it).
        """
        claims.check_lease(lease_s)
        try:
            import psycopg
        except ImportError as exc:  # pragma: no cover - depends on the installed extras
            raise ConfigError(
                "PostgreSQL needs the extra: pip install 'weavegraph[postgres]'"
            ) from exc
        target = with_settings(parse_target(url, schema), settings)
        conn = await connect_once(target)
        try:
            async with conn.transaction():
                before = await migrate(conn, target.schema, target.location)
        except psycopg.Error as exc:
            raise CheckpointError(f"PostgreSQL at {target.location}: {exc}") from exc
        finally:
            await conn.close()
        prepared = PreparedStatements(target.prepared, target.location)
        checkpointer = cls(await open_pool(target, max_size, prepared), target, prepared)
        checkpointer.schema_before = before
        checkpointer.lease_s = lease_s
        return checkpointer

    async def _run(
        self, work: Callable[[Any], Awaitable[T]], *, pipeline: bool = False, block: bool = True
    ) -> T:
        """Run ``work(conn)`` in one transaction; retried once when the connection was dropped
        (or none came in time) and the server still answers; failing at once if it does not;
        retried unprepared once when a pooler lost a prepared statement (``_prepared``).
        ``pipeline``: in pipeline mode, so statements whose results are not read go to the server
        together (with the commit). ``block=False``: no transaction block, for ``work`` whose
        statements need no common transaction (the pool's connections are in autocommit mode:
        each is its own transaction, one round trip); with ``pipeline``, ``work``'s statements
        are one implicit transaction instead, committed by the pipeline's closing Sync (no BEGIN
        or COMMIT to send; ``work`` must not read a result before the end)."""
        import psycopg

        self._liveness.check()
        for attempt in (1, 2):
            try:
                conn = await checkout(self._pool, self._liveness)
                self._prepared.apply(conn)
                try:
                    if not block:
                        if pipeline:  # (one implicit transaction, committed by the Sync)
                            async with conn.pipeline():
                                return await work(conn)
                        return await work(conn)
                    if pipeline:
                        async with conn.pipeline() as pipe, conn.transaction():
                            with pipelined(conn, pipe):
                                return await work(conn)
                    async with conn.transaction():
                        return await work(conn)
                finally:
                    await self._pool.putconn(conn)
            except psycopg.OperationalError as exc:  # also PoolTimeout
                self._store.forget()
                down = await self._liveness.probe(exc)
                if down is not None:
                    raise down from exc
                if attempt == 2:
                    raise CheckpointError(f"PostgreSQL at {self.location}: {exc}") from exc
                # The server answers, but its other pooled connections may be cut too (a
                # restart, pg_terminate_backend): replace the broken ones before the retry.
                await self._pool.check()
            except psycopg.Error as exc:
                self._store.forget()
                if attempt == 1 and self._prepared.lost(exc, self._pool):
                    continue  # (the statement wrote nothing: again, unprepared)
                raise CheckpointError(f"PostgreSQL at {self.location}: {exc}") from exc
        raise AssertionError("unreachable")

    async def execute(self, work: Callable[[Any], Awaitable[T]]) -> T:
        """Run ``work(conn)`` in one transaction of this checkpointer's pool (the queue's SQL)."""
        return await self._run(work)

    def working_under(self, claim: Claim) -> AbstractContextManager[Claim]:
        """While inside, this task and the tasks it starts write ``claim``'s session fenced by
        ``claim`` (a worker's, shared with the runs it drives; ``_claim_context``)."""
        return working_under(claim, self.claims)

    async def claim(self, session_id: str) -> Claim:
        """Claim ``session_id`` for a run in this process (its row made if new); SessionBusy
        while another claim on it is alive. Claims requested together share one commit."""
        request = ClaimRequest(session_id, self.holder, self.lease_s)
        await self._claims.submit(request)
        assert request.claim is not None
        return request.claim

    async def _claim_batch(self, batch: Sequence[ClaimRequest]) -> Sequence[Exception | None]:
        """Sessions whose rows this process committed are claimed with one statement (rows
        missing after all, deleted by another process meanwhile, go the general way: made,
        locked and claimed in a transaction)."""
        for request in batch:  # (a retry after a lost connection claims afresh)
            request.claim = None
        keys = {request.session_id for request in batch}
        if len(keys) == len(batch) and all(key in self._store.rows for key in keys):
            refused, missing = await self._run(
                lambda conn: claim_existing(conn, self.schema, batch), block=False
            )
            if not missing:
                return refused
            rest = [batch[index] for index in missing]
            for index, outcome in zip(missing, await self._claim_made(rest), strict=True):
                refused[index] = outcome
            return refused
        return await self._claim_made(batch)

    async def _claim_made(self, batch: Sequence[ClaimRequest]) -> list[Exception | None]:
        sent = await self._run(lambda conn: send_claims(conn, self.schema, batch), pipeline=True)
        # (the cursors' results came with the COMMIT's: reading them needs no connection)
        return await read_claims(sent, len(batch))

    async def release(
        self, claim: Claim, status: RunStatus, error: str | None = None
    ) -> RunStatus | None:
        """Give ``claim``'s session back as ``status`` (``queued`` instead while requests wait,
        unless it is cancelled or dead; ``error`` is kept as its last error) and mark the
        claim's applied requests done. The status set, or None when the claim was no longer the
        session's. Releases requested together share one commit."""
        request = ReleaseRequest(claim, status, error)
        await self._releases.submit(request)
        return request.result

    async def _release_batch(self, batch: Sequence[ReleaseRequest]) -> None:
        await self._run(lambda conn: release_all(conn, self.schema, batch), pipeline=True)

    def hold(self, session_id: str) -> AbstractAsyncContextManager[Claim]:
        """Claim ``session_id`` for one run in this process, like a worker (``_hold``): other
        processes get ``SessionBusy`` until it is given back with ``claim.ended``; the run's
        saves are fenced by it. Inside a worker's claim of the session: that claim."""
        return hold(self, session_id)

    async def schema_version(self) -> int:
        return await self._run(lambda conn: version(conn, self.schema, self.location))

    # --- checkpoints -----------------------------------------------------------------------

    async def save(
        self,
        checkpoint: Checkpoint,
        *,
        events: Sequence[Mapping[str, Any]] = (),
        builds_on: int | None = None,
    ) -> None:
        """Commit ``checkpoint`` and its events, fenced by ``builds_on``; saves of other
        sessions arriving meanwhile share its commit. A session this process claimed is fenced
        by its claim too (LeaseLost once another process took it over), and the commit extends
        the claim's lease."""
        check_builds_on(builds_on)
        claim = current(self.claims, checkpoint.session_id)
        item = PgSave(stored_form(checkpoint), builds_on, tuple(events), claim=claim)
        if item.extends is not None and claim is not None:
            item.consume = tuple(claim.consume)
            item.release = _release_with(claim)
        await self._saves.submit(item)
        if item.extends is not None and claim is not None:
            if item.release is not None:  # (the claim was given back with the step)
                claim.released = True
            del claim.consume[: len(item.consume)]  # (requests applied since wait for the next)
            claim.last_step = max(claim.last_step, checkpoint.step)
            claim.cancel_requested = item.cancel_requested
            if item.renews:
                claim.renewed_at = max(claim.renewed_at, item.planned_at)
        self.notifier.session_changed(checkpoint.session_id)

    async def _save_batch(self, batch: Sequence[PgSave | PgAppend]) -> Sequence[Exception | None]:
        """One transaction for ``batch`` (the group commit's); each save's refusal, if any. A
        batch decided from this process's own last commits goes in one round trip
        (``_fast_save``); a retry after a COMMIT whose answer was lost finds its steps already
        stored."""
        try:
            fast = fast_save.plan(self._store, batch)
            if fast is not None:
                if await self._save_fast(fast):
                    return [None] * len(batch)
                fast.undo()  # nothing was written: the rows were not as this process left them
            return await self._save_checked(batch)
        except Exception as exc:
            self._store.forget()  # the transaction rolled back: what was cached may not be
            if len(batch) == 1 and isinstance(exc, CheckpointError):  # a save alone: name it
                conflict = duplicate_row(batch[0].key, exc.__cause__)
                if conflict is not None:
                    raise conflict from exc.__cause__
            raise

    async def _save_fast(self, fast: fast_save.FastBatch) -> bool:
        if not fast.new:
            one = _marking_retries(
                fast.items, lambda conn: fast_save.send_one(conn, self._store, fast)
            )
            return await self._run(one, block=False)
        send = _marking_retries(fast.items, lambda conn: fast_save.send(conn, self._store, fast))
        answer = await self._run(send, pipeline=True, block=False)
        # (the answer came with the commit's: reading it needs no connection)
        return await fast_save.finish(fast, answer)

    async def _save_checked(self, batch: Sequence[PgSave | PgAppend]) -> Sequence[Exception | None]:
        save = _marking_retries(batch, lambda conn: self._store.save_all(conn, batch))
        return await self._run(save, pipeline=True)  # (a refused save wrote nothing)

    async def load_latest(self, session_id: str, *, namespace: str = "") -> Checkpoint | None:
        """The latest checkpoint; loads requested together share their statements."""
        request = _LoadRequest(storage_key(session_id, namespace))
        await self._loads.submit(request)
        return loaded_form(request.found, session_id, namespace)

    async def _load_batch(self, batch: Sequence[_LoadRequest]) -> None:
        keys = [request.key for request in batch]
        # Autocommit statements, no transaction block: each reads its own snapshot either way
        # (read committed), and a batch of new sessions' probes is one round trip.
        found = await self._run(lambda conn: self._store.load_heads(conn, keys), block=False)
        for request in batch:
            request.found = found.get(request.key)

    async def load(self, session_id: str, step: int, *, namespace: str = "") -> Checkpoint | None:
        key = storage_key(session_id, namespace)
        found = await self._run(lambda conn: self._store.load(conn, key, step))
        return loaded_form(found, session_id, namespace)

    async def history(self, session_id: str, *, namespace: str = "") -> list[StepInfo]:
        key = storage_key(session_id, namespace)

        async def work(conn: Any) -> list[StepInfo]:
            rows = await self._store.fetchall(
                conn,
                "SELECT step, created_at, ran_nodes, skipped_nodes, updated_channels "
                "FROM {schema}.steps WHERE session_id = %s ORDER BY step",
                (key,),
            )
            return [
                StepInfo(step=s, created_at=c, ran_nodes=tuple(r), skipped_nodes=tuple(k),
                         updated_channels=tuple(u))
                for s, c, r, k, u in rows
            ]  # fmt: skip

        return await self._run(work)

    async def list_sessions(self) -> list[SessionInfo]:
        async def work(conn: Any) -> list[SessionInfo]:
            rows = await self._store.fetchall(
                conn,
                "SELECT id, created_at, updated_at, latest_step FROM {schema}.sessions "
                f"WHERE latest_step >= 0 AND strpos(id, '{NAMESPACE_SEPARATOR}') = 0 "
                "ORDER BY created_at, id",
            )
            return [
                SessionInfo(session_id=i, created_at=c, updated_at=u, latest_step=s)
                for i, c, u, s in rows
            ]

        return await self._run(work)

    async def delete_session(self, session_id: str) -> bool:
        """The session's rows go, and its subgraphs' with them (the delete trigger's work)."""

        async def work(conn: Any) -> bool:
            deleted = 0
            for table, column in (("sessions", "id"), ("events", "session_id")):
                cur = await conn.execute(
                    self._store.q(f"DELETE FROM {{schema}}.{table} WHERE {column} = %s"),
                    (session_id,),
                )
                deleted += cast("int", cur.rowcount)
            return deleted > 0

        self._store.forget_session(session_id)
        return await self._run(work)

    # --- events ----------------------------------------------------------------------------

    async def append_events(
        self,
        session_id: str,
        events: Sequence[Mapping[str, Any]],
        *,
        builds_on: int | None = None,
    ) -> None:
        """Insert events with the session's latest step, under its row lock; fenced."""
        check_builds_on(builds_on)
        events = tuple(events)
        if not events and builds_on is None:
            return

        claim = current(self.claims, session_id)
        if claim is not None and builds_on is not None:  # (a run's closing events)
            item = _closing(claim, builds_on, events)
            await self._saves.submit(item)
            if item.release is not None:  # (the claim was given back with them)
                claim.released = True
                del claim.consume[: len(item.consume)]
            self.notifier.session_changed(session_id)
            return

        async def work(conn: Any) -> None:
            if claim is None:
                latest = await self._store.latest_for_update(conn, session_id)
            else:
                stored = await claims.check(conn, self.schema, claim, None)
                latest = None if stored < 0 else stored
            plan = plan_append(session_id, builds_on, latest, events)
            if plan.replaces and plan.rows:
                await conn.execute(
                    self._store.q(
                        "DELETE FROM {schema}.events WHERE session_id = %s AND seq = ANY(%s)"
                    ),
                    (session_id, [seq for seq, _, _ in plan.rows]),
                )
            await self._store.insert_events(conn, session_id, plan.rows)

        try:
            await self._run(work)
        except CheckpointError as exc:
            raise duplicate_row(session_id, exc.__cause__) or exc from exc.__cause__
        self.notifier.session_changed(session_id)

    async def load_events(
        self, session_id: str, after_seq: int = -1, limit: int | None = None
    ) -> list[dict[str, Any]]:
        check_events_query(after_seq, limit)

        async def work(conn: Any) -> list[dict[str, Any]]:
            rows = await self._store.fetchall(
                conn,
                "SELECT data FROM {schema}.events WHERE session_id = %s AND seq > %s "
                "ORDER BY seq LIMIT %s",
                (session_id, after_seq, limit),
            )
            return [cast("dict[str, Any]", codec.loads(bytes(data))) for (data,) in rows]

        return await self._run(work)

    # --- saved task results -----------------------------------------------------------------

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
            await self._run(
                lambda conn: self._store.save_task_results(conn, key, builds_on_step, results)
            )

    async def load_task_results(
        self, session_id: str, builds_on_step: int, *, namespace: str = ""
    ) -> dict[int, Any]:
        key = storage_key(session_id, namespace)
        return await self._run(
            lambda conn: self._store.load_task_results(conn, key, builds_on_step)
        )

    # --- storage management (the CLI's `db` commands) --------------------------------------

    async def stats(self) -> StorageStats:
        """Counts of sessions, steps, events and log items, and the tables' total size."""
        return await self._run(lambda conn: maint.stats(self._store, conn))

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
        try:
            return await self._run(
                lambda conn: maint.prune(self._store, conn, older_than, keep_last, dry_run)
            )
        except PruneRolledBack as rolled_back:  # a dry run: the transaction was rolled back
            return rolled_back.result
        finally:
            self._store.forget()

    async def vacuum(self) -> tuple[int, int]:
        """Collect unreached ``extra_log`` rows, then VACUUM ANALYZE the weavegraph tables.

        Returns their total size in bytes before and after.
        """
        import psycopg

        before = await self._run(lambda conn: maint.collect_extra_log(self._store, conn))
        try:
            async with self._pool.connection() as conn:
                # (VACUUM cannot run inside a transaction block: pooled connections autocommit)
                return before, await maint.vacuum(self._store, conn)
        except psycopg.Error as exc:
            raise CheckpointError(f"PostgreSQL at {self.location}: {exc}") from exc

    # --- lifecycle -------------------------------------------------------------------------

    async def close(self) -> None:
        self.heartbeats.close()
        await self.notifier.close()
        if self.giving_back:
            await asyncio.gather(*self.giving_back, return_exceptions=True)
        await self._claims.aclose()
        await self._saves.aclose()
        await self._releases.aclose()
        await self._loads.aclose()
        await self._pool.close()

    async def __aenter__(self) -> PostgresCheckpointer:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


def _release_with(claim: Claim) -> RunStatus | None:
    """How the run ended, when its claim is given back with the commit being queued: an
    in-process run's claim, with the run's last events (``Claim.closing``)."""
    if not claim.closing or claim.shared or not claim.held:
        return None
    return claim.ended


def _closing(claim: Claim, builds_on: int, events: tuple[Mapping[str, Any], ...]) -> PgAppend:
    """The append of a claimed run's events; the run's last ones give an in-process run's
    claim back in the same commit (:func:`_release_with`)."""
    release = _release_with(claim)
    if release is None:
        return PgAppend(claim, builds_on, events)
    return PgAppend(claim, builds_on, events, release=release, consume=tuple(claim.consume))


def _marking_retries(
    items: Sequence[PgSave | PgAppend], work: Callable[[Any], Awaitable[T]]
) -> Callable[[Any], Awaitable[T]]:
    """``work`` for ``_run``; from its second attempt on (the first lost its connection, maybe
    during COMMIT) ``items`` are marked ``retried``: each then checks whether it landed."""
    attempts = 0

    async def attempt(conn: Any) -> T:
        nonlocal attempts
        attempts += 1
        if attempts > 1:
            for item in items:
                item.retried = True
        return await work(conn)

    return attempt


@dataclass(slots=True)
class _LoadRequest:
    """A :meth:`PostgresCheckpointer.load_latest` of the session stored as ``key``."""

    key: str
    found: Checkpoint | None = None


async def migrate_postgres(url: str, *, schema: str | None = None) -> MigrationResult:
    """Connect (which migrates under the advisory lock) and report the versions."""
    checkpointer = await PostgresCheckpointer.connect(url, schema=schema, max_size=1)
    try:
        after = await checkpointer.schema_version()
        return MigrationResult(
            location=checkpointer.location, before=checkpointer.schema_before, after=after
        )
    finally:
        await checkpointer.close()
