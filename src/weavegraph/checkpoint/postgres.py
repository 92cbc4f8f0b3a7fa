"""PostgreSQL checkpointer: the shared engine when many processes run sessions.

Same layout as SQLite (see ``migrations``): TIMESTAMPTZ times, JSONB name lists, BYTEA (orjson)
payloads so any JSON string, even one holding U+0000, round-trips exactly. A save is one
transaction holding the session row's lock (``SELECT ... FOR UPDATE``), and the latest pointer
only moves forward (``UPDATE ... WHERE latest_step <= new``), so many writers are safe. No
server-side prepared statements (``prepare_threshold=None``): works behind transaction poolers.
Pooled connections are checked on checkout and an operation that meets a dropped connection is
retried once on a fresh one. psycopg is imported lazily: it is the optional ``postgres`` extra.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar, LiteralString, TypeVar, cast

from ..errors import CheckpointError, ConfigError, DatabaseSchemaTooNew, NotAWeavegraphDatabase
from ..state import VersionedState
from . import _codec as codec
from ._codec import HeadCache
from ._model import Checkpoint, SessionInfo, StepInfo
from .migrations import POSTGRES_MIGRATIONS, SCHEMA_TABLE, MigrationResult, latest_version

if TYPE_CHECKING:
    from psycopg_pool import AsyncConnectionPool

__all__ = ["PostgresCheckpointer", "migrate_postgres"]

T = TypeVar("T")
_STEP_COLUMNS = (
    "created_at, ran_nodes, skipped_nodes, updated_channels, frontier, versions, cursor, "
    "msg_start, msg_count, err_start, err_count, extra_base, extra_data"
)


def _sql(template: str, schema: str) -> Any:
    from psycopg import sql

    # Templates are this module's constants; only the schema name varies, quoted as an identifier.
    return sql.SQL(cast("LiteralString", template)).format(schema=sql.Identifier(schema))


class PostgresCheckpointer:
    """Checkpoints in PostgreSQL, safe for many writers and processes."""

    keeps_history: ClassVar[bool] = True

    def __init__(self, pool: AsyncConnectionPool[Any], schema: str, location: str) -> None:
        self._pool = pool
        self.schema = schema
        self.location = location
        self.schema_before = 0
        self._heads: dict[str, HeadCache] = {}

    @classmethod
    async def connect(
        cls, url: str, *, schema: str | None = None, max_size: int = 10
    ) -> PostgresCheckpointer:
        """Open a pool on ``url`` and migrate ``schema`` (default ``public``) under an advisory lock."""
        try:
            from psycopg_pool import AsyncConnectionPool
        except ImportError as exc:  # pragma: no cover - depends on the installed extras
            raise ConfigError(
                "PostgreSQL needs the extra: pip install 'weavegraph[postgres]'"
            ) from exc
        pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            url, min_size=1, max_size=max_size, open=False,
            kwargs={"prepare_threshold": None}, check=AsyncConnectionPool.check_connection,
        )  # fmt: skip
        try:
            await pool.open(wait=True, timeout=30)
        except Exception as exc:
            await pool.close()
            raise CheckpointError(f"cannot connect to PostgreSQL: {exc}") from exc
        checkpointer = cls(pool, schema or "public", url.split("@")[-1])
        try:
            checkpointer.schema_before = await checkpointer._run(checkpointer._migrate)
        except BaseException:
            await pool.close()
            raise
        return checkpointer

    async def _run(self, work: Callable[[Any], Awaitable[T]]) -> T:
        """Run ``work(conn)`` in one transaction; retried once when the connection was dropped."""
        import psycopg

        for attempt in (1, 2):
            try:
                async with self._pool.connection() as conn, conn.transaction():
                    return await work(conn)
            except psycopg.OperationalError as exc:
                self._heads.clear()
                if attempt == 2:
                    raise CheckpointError(f"PostgreSQL at {self.location}: {exc}") from exc
            except psycopg.Error as exc:
                self._heads.clear()
                raise CheckpointError(f"PostgreSQL at {self.location}: {exc}") from exc
        raise AssertionError("unreachable")

    def _q(self, template: str) -> Any:
        return _sql(template, self.schema)

    # --- schema ----------------------------------------------------------------------------

    async def _migrate(self, conn: Any) -> int:
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtext(%s))", (f"weavegraph:{self.schema}",)
        )
        await conn.execute(self._q("CREATE SCHEMA IF NOT EXISTS {schema}"))
        current = await self._version(conn)
        for migration in POSTGRES_MIGRATIONS:
            if migration.version > current:
                for statement in migration.statements:
                    await conn.execute(self._q(statement))
                await conn.execute(
                    self._q(f"INSERT INTO {{schema}}.{SCHEMA_TABLE} (version) VALUES (%s)"),
                    (migration.version,),
                )
        return current

    async def _version(self, conn: Any) -> int:
        rows = await (
            await conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                (self.schema,),
            )
        ).fetchall()
        tables = {cast("str", name) for (name,) in rows}
        if SCHEMA_TABLE not in tables:
            clash = tables & {"sessions", "steps", "channel_log", "events"}
            if clash:
                raise NotAWeavegraphDatabase(
                    f"{self.location} schema {self.schema}",
                    f"it has tables {sorted(clash)} but no {SCHEMA_TABLE}",
                )
            return 0
        row = await (
            await conn.execute(self._q(f"SELECT MAX(version) FROM {{schema}}.{SCHEMA_TABLE}"))
        ).fetchone()
        version = cast("int | None", row[0]) or 0
        supported = latest_version(POSTGRES_MIGRATIONS)
        if version > supported:
            raise DatabaseSchemaTooNew(f"{self.location} schema {self.schema}", version, supported)
        return version

    async def schema_version(self) -> int:
        return await self._run(self._version)

    # --- save ------------------------------------------------------------------------------

    async def save(self, checkpoint: Checkpoint) -> None:
        await self._run(lambda conn: self._save(conn, checkpoint))

    async def _save(self, conn: Any, cp: Checkpoint) -> None:
        sid, state, now = cp.session_id, cp.state, datetime.now(UTC)
        await conn.execute(
            self._q(
                "INSERT INTO {schema}.sessions (id, created_at, updated_at, latest_step, head, "
                "extra) VALUES (%s, %s, %s, -1, '', '') ON CONFLICT (id) DO NOTHING"
            ),
            (sid, now, now),
        )
        row = await (
            await conn.execute(
                self._q(
                    "SELECT latest_step, msg_next, err_next, created_at FROM {schema}.sessions "
                    "WHERE id = %s FOR UPDATE"
                ),
                (sid,),
            )
        ).fetchone()
        latest, msg_next, err_next, created = cast("tuple[int, int, int, datetime]", row)
        uid = created.isoformat()
        head = self._heads.get(sid)
        if head is not None and (head.uid != uid or head.step != latest):
            head = None
        msg_start, msg_new = codec.plan_append(
            head.messages if head else None, head.msg_start if head else 0, state.messages, msg_next
        )
        err_start, err_new = codec.plan_append(
            head.errors if head else None, head.err_start if head else 0, state.errors, err_next
        )
        await self._append_log(
            conn, sid, "messages", msg_next, codec.encode_messages(state.messages[msg_new:])
        )
        await self._append_log(
            conn, sid, "errors", err_next, codec.encode_errors(state.errors[err_new:])
        )
        msg_next += len(state.messages) - msg_new
        err_next += len(state.errors) - err_new
        if await self._step_exists(conn, sid, cp.step):
            await self._detach_dependents(conn, sid, cp.step)
            if head is not None and head.step != cp.step:
                head.extra_step = None
        new_head = HeadCache(
            uid=uid, step=cp.step, messages=state.messages, msg_start=msg_start,
            errors=state.errors, err_start=err_start, extra=state.extra, extra_step=cp.step,
        )  # fmt: skip
        base = codec.extra_base_candidate(head, cp.step)
        usable = base is not None and await self._step_exists(conn, sid, base)
        extra_base, extra_data = codec.plan_extra(head if usable else None, state.extra, new_head)
        await conn.execute(
            self._q(
                f"INSERT INTO {{schema}}.steps (session_id, step, {_STEP_COLUMNS}) VALUES "
                "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (session_id, step) DO UPDATE SET "
                + ", ".join(f"{c} = excluded.{c}" for c in _STEP_COLUMNS.split(", "))
            ),
            (
                sid, cp.step, codec.utc(cp.created_at), _jsonb(cp.ran_nodes),
                _jsonb(cp.skipped_nodes), _jsonb(cp.updated_channels), _jsonb(cp.frontier),
                _jsonb(state.versions), codec.dumps(cp.cursor), msg_start, len(state.messages),
                err_start, len(state.errors), extra_base, extra_data,
            ),
        )  # fmt: skip
        await conn.execute(
            self._q(
                "UPDATE {schema}.sessions SET msg_next = %s, err_next = %s, updated_at = %s "
                "WHERE id = %s"
            ),
            (msg_next, err_next, now, sid),
        )
        if cp.step < latest:
            return
        changed = head is None or codec.extra_delta(head.extra, state.extra) is not None
        await conn.execute(
            self._q(
                "UPDATE {schema}.sessions SET latest_step = %s, head = %s"
                + (", extra = %s" if changed else "")
                + " WHERE id = %s AND latest_step <= %s"
            ),
            (cp.step, _encode_head(cp, msg_start, err_start))
            + ((codec.dumps(state.extra),) if changed else ())
            + (sid, cp.step),
        )
        self._heads[sid] = new_head

    async def _append_log(
        self, conn: Any, sid: str, channel: str, start: int, items: list[bytes]
    ) -> None:
        if items:
            async with conn.cursor() as cur:
                await cur.executemany(
                    self._q(
                        "INSERT INTO {schema}.channel_log (session_id, channel, idx, item) "
                        "VALUES (%s, %s, %s, %s)"
                    ),
                    [(sid, channel, start + offset, item) for offset, item in enumerate(items)],
                )

    async def _step_exists(self, conn: Any, sid: str, step: int) -> bool:
        row = await (
            await conn.execute(
                self._q("SELECT 1 FROM {schema}.steps WHERE session_id = %s AND step = %s"),
                (sid, step),
            )
        ).fetchone()
        return row is not None

    async def _detach_dependents(self, conn: Any, sid: str, step: int) -> None:
        rows = await (
            await conn.execute(
                self._q(
                    "SELECT step FROM {schema}.steps WHERE session_id = %s AND extra_base = %s "
                    "AND step <> %s"
                ),
                (sid, step, step),
            )
        ).fetchall()
        for (dependent,) in rows:
            extra = await self._extra_at(conn, sid, dependent)
            if extra is not None:
                await conn.execute(
                    self._q(
                        "UPDATE {schema}.steps SET extra_base = NULL, extra_data = %s "
                        "WHERE session_id = %s AND step = %s"
                    ),
                    (codec.dumps(extra), sid, dependent),
                )

    # --- load ------------------------------------------------------------------------------

    async def load_latest(self, session_id: str) -> Checkpoint | None:
        return await self._run(lambda conn: self._load_head(conn, session_id))

    async def load(self, session_id: str, step: int) -> Checkpoint | None:
        async def work(conn: Any) -> Checkpoint | None:
            row = await (
                await conn.execute(
                    self._q("SELECT latest_step FROM {schema}.sessions WHERE id = %s"),
                    (session_id,),
                )
            ).fetchone()
            if row is not None and row[0] == step:
                return await self._load_head(conn, session_id)
            return await self._load_step(conn, session_id, step)

        return await self._run(work)

    async def _load_head(self, conn: Any, sid: str) -> Checkpoint | None:
        row = await (
            await conn.execute(
                self._q("SELECT head, extra, created_at FROM {schema}.sessions WHERE id = %s"),
                (sid,),
            )
        ).fetchone()
        if row is None:
            return None
        head = cast("dict[str, Any]", codec.loads(bytes(row[0])))
        msg_start, msg_count = cast("list[int]", head["messages"])
        err_start, err_count = cast("list[int]", head["errors"])
        messages = codec.decode_messages(
            await self._read_log(conn, sid, "messages", msg_start, msg_count)
        )
        errors = codec.decode_errors(
            await self._read_log(conn, sid, "errors", err_start, err_count)
        )
        extra = codec.decode_extra(codec.loads(bytes(row[1])))
        checkpoint = Checkpoint(
            session_id=sid, step=head["step"], frontier=tuple(head["frontier"]),
            state=VersionedState(messages=messages, extra=extra, errors=errors, versions=head["versions"]),
            ran_nodes=tuple(head["ran"]), skipped_nodes=tuple(head["skipped"]),
            updated_channels=tuple(head["updated"]), cursor=codec.freeze_cursor(head["cursor"]),
            created_at=datetime.fromisoformat(head["created_at"]),
        )  # fmt: skip
        self._heads[sid] = HeadCache(
            uid=cast("datetime", row[2]).isoformat(), step=checkpoint.step, messages=messages,
            msg_start=msg_start, errors=errors, err_start=err_start, extra=extra, extra_step=None,
        )  # fmt: skip
        return checkpoint

    async def _load_step(self, conn: Any, sid: str, step: int) -> Checkpoint | None:
        row = await (
            await conn.execute(
                self._q(
                    f"SELECT {_STEP_COLUMNS} FROM {{schema}}.steps WHERE session_id = %s AND step = %s"
                ),
                (sid, step),
            )
        ).fetchone()
        if row is None:
            return None
        (created, ran, skipped, updated, frontier, versions, cursor,
         msg_start, msg_count, err_start, err_count, base, data) = row  # fmt: skip
        extra = await self._resolve_extra(conn, sid, base, data)
        if extra is None:
            return None
        state = VersionedState(
            messages=codec.decode_messages(
                await self._read_log(conn, sid, "messages", msg_start, msg_count)
            ),
            extra=codec.decode_extra(extra),
            errors=codec.decode_errors(
                await self._read_log(conn, sid, "errors", err_start, err_count)
            ),
            versions=versions,
        )
        return Checkpoint(
            session_id=sid, step=step, state=state, frontier=tuple(frontier), ran_nodes=tuple(ran),
            skipped_nodes=tuple(skipped), updated_channels=tuple(updated),
            cursor=codec.decode_cursor(bytes(cursor)), created_at=cast("datetime", created),
        )  # fmt: skip

    async def _read_log(
        self, conn: Any, sid: str, channel: str, start: int, count: int
    ) -> list[bytes]:
        if count == 0:
            return []
        rows = await (
            await conn.execute(
                self._q(
                    "SELECT item FROM {schema}.channel_log WHERE session_id = %s AND channel = %s "
                    "AND idx >= %s AND idx < %s ORDER BY idx"
                ),
                (sid, channel, start, start + count),
            )
        ).fetchall()
        if len(rows) != count:
            raise CheckpointError(f"{self.location}: the {channel} log of {sid!r} is incomplete")
        return [bytes(item) for (item,) in rows]

    async def _extra_at(self, conn: Any, sid: str, step: int) -> dict[str, Any] | None:
        row = await (
            await conn.execute(
                self._q(
                    "SELECT extra_base, extra_data FROM {schema}.steps WHERE session_id = %s AND step = %s"
                ),
                (sid, step),
            )
        ).fetchone()
        return None if row is None else await self._resolve_extra(conn, sid, row[0], row[1])

    async def _resolve_extra(
        self, conn: Any, sid: str, base: int | None, data: bytes | None
    ) -> dict[str, Any] | None:
        deltas: list[Mapping[str, Any]] = []
        for _ in range(codec.MAX_CHAIN * 4 + 8):
            if base is None:
                if data is None:
                    raise CheckpointError(f"{self.location}: a step of {sid!r} has no extra data")
                extra = cast("dict[str, Any]", codec.loads(bytes(data)))
                for delta in reversed(deltas):
                    codec.apply_delta(extra, delta)
                return extra
            if data is not None:
                deltas.append(cast("Mapping[str, Any]", codec.loads(bytes(data))))
            row = await (
                await conn.execute(
                    self._q(
                        "SELECT extra_base, extra_data FROM {schema}.steps WHERE session_id = %s AND step = %s"
                    ),
                    (sid, base),
                )
            ).fetchone()
            if row is None:
                return None
            base, data = row[0], row[1]
        raise CheckpointError(f"{self.location}: the extra delta chain of {sid!r} is too long")

    # --- listing, deleting, events -----------------------------------------------------------

    async def history(self, session_id: str) -> list[StepInfo]:
        async def work(conn: Any) -> list[StepInfo]:
            rows = await (
                await conn.execute(
                    self._q(
                        "SELECT step, created_at, ran_nodes, skipped_nodes, updated_channels "
                        "FROM {schema}.steps WHERE session_id = %s ORDER BY step"
                    ),
                    (session_id,),
                )
            ).fetchall()
            return [
                StepInfo(step=s, created_at=c, ran_nodes=tuple(r), skipped_nodes=tuple(k),
                         updated_channels=tuple(u))
                for s, c, r, k, u in rows
            ]  # fmt: skip

        return await self._run(work)

    async def list_sessions(self) -> list[SessionInfo]:
        async def work(conn: Any) -> list[SessionInfo]:
            rows = await (
                await conn.execute(
                    self._q(
                        "SELECT id, created_at, updated_at, latest_step FROM {schema}.sessions "
                        "WHERE latest_step >= 0 ORDER BY created_at, id"
                    )
                )
            ).fetchall()
            return [
                SessionInfo(session_id=i, created_at=c, updated_at=u, latest_step=s)
                for i, c, u, s in rows
            ]

        return await self._run(work)

    async def delete_session(self, session_id: str) -> bool:
        async def work(conn: Any) -> bool:
            cur = await conn.execute(
                self._q("DELETE FROM {schema}.sessions WHERE id = %s"), (session_id,)
            )
            deleted = cast("int", cur.rowcount)
            cur = await conn.execute(
                self._q("DELETE FROM {schema}.events WHERE session_id = %s"), (session_id,)
            )
            return deleted + cast("int", cur.rowcount) > 0

        self._heads.pop(session_id, None)
        return await self._run(work)

    async def append_events(self, session_id: str, events: Sequence[Mapping[str, Any]]) -> None:
        rows = [(session_id, int(event["seq"]), codec.dumps(event)) for event in events]
        if not rows:
            return

        async def work(conn: Any) -> None:
            async with conn.cursor() as cur:
                await cur.executemany(
                    self._q(
                        "INSERT INTO {schema}.events (session_id, seq, data) VALUES (%s, %s, %s) "
                        "ON CONFLICT (session_id, seq) DO UPDATE SET data = excluded.data"
                    ),
                    rows,
                )

        await self._run(work)

    async def load_events(self, session_id: str, after_seq: int = -1) -> list[dict[str, Any]]:
        async def work(conn: Any) -> list[dict[str, Any]]:
            rows = await (
                await conn.execute(
                    self._q(
                        "SELECT data FROM {schema}.events WHERE session_id = %s AND seq > %s "
                        "ORDER BY seq"
                    ),
                    (session_id, after_seq),
                )
            ).fetchall()
            return [cast("dict[str, Any]", codec.loads(bytes(data))) for (data,) in rows]

        return await self._run(work)

    async def close(self) -> None:
        await self._pool.close()

    async def __aenter__(self) -> PostgresCheckpointer:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


def _jsonb(value: object) -> Any:
    from psycopg.types.json import Jsonb

    return Jsonb(value, dumps=lambda v: codec.dumps(v).decode())


def _encode_head(cp: Checkpoint, msg_start: int, err_start: int) -> bytes:
    return codec.dumps(
        {
            "step": cp.step,
            "created_at": codec.utc(cp.created_at).isoformat(),
            "frontier": cp.frontier,
            "ran": cp.ran_nodes,
            "skipped": cp.skipped_nodes,
            "updated": cp.updated_channels,
            "versions": cp.state.versions,
            "cursor": cp.cursor,
            "messages": [msg_start, len(cp.state.messages)],
            "errors": [err_start, len(cp.state.errors)],
        }
    )


async def migrate_postgres(url: str, *, schema: str | None = None) -> MigrationResult:
    """Connect (which migrates under the advisory lock) and report the versions."""
    checkpointer = await PostgresCheckpointer.connect(url, schema=schema)
    try:
        after = await checkpointer.schema_version()
        return MigrationResult(
            location=f"{checkpointer.location} schema {checkpointer.schema}",
            before=checkpointer.schema_before, after=after,
        )  # fmt: skip
    finally:
        await checkpointer.close()
