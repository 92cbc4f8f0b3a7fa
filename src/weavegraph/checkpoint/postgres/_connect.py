"""Where a PostgreSQL checkpointer connects, and connecting fast or failing fast.

A URL may carry the schema as ``?schema=NAME`` and ``?prepared_statements=off`` (``_prepared``):
libpq itself would reject those parameters, so they are removed before connecting. The first
connection is a single direct one with a short ``connect_timeout``: an unreachable server fails
in seconds with its own error, instead of a pool retrying in the background for its whole open
timeout and logging a warning each time.

A server that stops while sessions run fails fast too: an operation that meets a dropped connection
(or waits PROBE_AFTER for a pooled one, see :func:`checkout`) probes the server with one direct connection, and when
that fails the operation raises at once, and so does every operation for DOWN_GRACE seconds after
(:class:`Liveness`). The pool's own reconnection warnings reach ``logging`` rate-limited
(``_pool_log``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ...errors import CheckpointError, ConfigError
from ._pool_log import bridge_pool_logging
from ._prepared import URL_PARAMETER, PreparedStatements, parse_switch

if TYPE_CHECKING:
    from psycopg_pool import AsyncConnectionPool

CONNECT_TIMEOUT = 5  # seconds, libpq's connect_timeout unless the URL or PGCONNECT_TIMEOUT sets one
POOL_OPEN_TIMEOUT = 10.0  # the server just answered; this only bounds a pathological pool open
CHECKOUT_TIMEOUT = 5.0  # seconds an operation waits for a pooled connection at most
PROBE_AFTER = 0.5  # seconds of waiting for a pooled connection before probing the server
DOWN_GRACE = 5.0  # seconds operations fail at once after a probe found the server unreachable
_UNREACHABLE_HELP = "Check that the server is running and the URL (host, port, database, user)."


@dataclass(frozen=True, slots=True)
class PgTarget:
    """A parsed URL: what libpq gets, the schema, and a password-free ``location`` for messages."""

    conninfo: str
    schema: str
    location: str
    connect_kwargs: tuple[tuple[str, Any], ...]
    prepared: bool = True
    """Whether the pool's connections may prepare statements (``?prepared_statements=``)."""

    def kwargs(self) -> dict[str, Any]:
        """What a connection gets (without prepared statements: see :func:`open_pool`)."""
        return dict(self.connect_kwargs)


def parse_target(url: str, schema: str | None = None) -> PgTarget:
    """Split ``?schema=`` and ``?prepared_statements=`` off ``url``; ``schema`` given in code
    must agree with the URL's."""
    from psycopg import ProgrammingError
    from psycopg.conninfo import conninfo_to_dict

    scheme = urlsplit(url).scheme if "://" in url else ""
    if scheme and scheme not in ("postgres", "postgresql"):
        # libpq's own message ("missing '=' after ...") would not say what is wrong.
        raise ConfigError(
            f"{url.split('://', 1)[0]}:// is not a PostgreSQL URL: expected "
            "postgresql://user@host/db or a key=value connection string"
        )
    conninfo, own = _split_own(url)
    url_schema = own.get("schema") or None
    if schema and url_schema and schema != url_schema:
        raise ConfigError(f"schema={schema!r} does not match the URL's ?schema={url_schema}")
    chosen = schema or url_schema or "public"
    try:
        params = conninfo_to_dict(conninfo)
    except ProgrammingError as exc:
        raise ConfigError(f"invalid PostgreSQL URL: {exc}") from exc
    host = str(params.get("host") or params.get("hostaddr") or "localhost")
    port = str(params.get("port") or "5432")
    where = f"{host}:{port}/{params.get('dbname') or params.get('user') or ''}"
    kwargs: dict[str, Any] = {"prepare_threshold": None}  # (a pool's: ``PreparedStatements``)
    if "connect_timeout" not in params and not os.environ.get("PGCONNECT_TIMEOUT"):
        kwargs["connect_timeout"] = CONNECT_TIMEOUT
    return PgTarget(
        conninfo=conninfo,
        schema=chosen,
        location=f"{where} schema {chosen}",
        connect_kwargs=tuple(kwargs.items()),
        prepared=parse_switch(own[URL_PARAMETER]) if URL_PARAMETER in own else True,
    )


_OWN_PARAMETERS = ("schema", URL_PARAMETER)


def _split_own(url: str) -> tuple[str, dict[str, str]]:
    """``url`` without weavegraph's own query parameters, and their values (the last given)."""
    if not url.startswith(("postgres://", "postgresql://")):
        return url, {}
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    own = {key: value for key, value in query if key in _OWN_PARAMETERS}
    if not own:
        return url, {}
    rest = urlencode([(key, value) for key, value in query if key not in _OWN_PARAMETERS])
    return urlunsplit(parts._replace(query=rest)), own


async def connect_once(target: PgTarget) -> Any:
    """One direct connection (the caller closes it); a CheckpointError naming the server if not."""
    import psycopg

    try:
        return await psycopg.AsyncConnection.connect(target.conninfo, **target.kwargs())
    except psycopg.Error as exc:
        raise CheckpointError(
            f"cannot connect to PostgreSQL at {target.location}: {exc}", help=_UNREACHABLE_HELP
        ) from exc


class Liveness:
    """Whether the server answered lately, so a stopped server fails operations in seconds."""

    def __init__(self, target: PgTarget, clock: Callable[[], float] = time.monotonic) -> None:
        self._target = target
        self._clock = clock
        self._down: tuple[float, CheckpointError] | None = None

    def check(self) -> None:
        """Raise the last probe's error while it is less than DOWN_GRACE seconds old."""
        if self._down is not None:
            since, error = self._down
            if self._clock() - since < DOWN_GRACE:
                raise CheckpointError(error.message, help=error.help) from error.__cause__
            self._down = None

    async def probe(self, cause: BaseException) -> CheckpointError | None:
        """None when a fresh direct connection succeeds; else the error to raise (remembered)."""
        try:
            conn = await connect_once(self._target)
        except CheckpointError as exc:
            reason = exc.__cause__ or cause
            error = CheckpointError(
                f"PostgreSQL at {self._target.location} stopped answering: {str(reason).strip()}",
                help=_UNREACHABLE_HELP + " The last saved step is kept; resume once it is back.",
            )
            error.__cause__ = reason
            self._down = (self._clock(), error)
            return error
        await conn.close()
        self._down = None
        return None


async def open_pool(
    target: PgTarget, max_size: int, prepared: PreparedStatements
) -> AsyncConnectionPool[Any]:
    """A pool, opened once the server has answered. Connections are not pinged on checkout (a
    round trip per operation): the operation that meets a dropped one retries (``_run``). They
    are in autocommit mode: work that needs a transaction block opens one
    (``conn.transaction()``), and a lone statement is its own transaction. They prepare their
    statements as ``prepared`` says."""
    from psycopg_pool import AsyncConnectionPool, PoolTimeout

    bridge_pool_logging()
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        target.conninfo, min_size=1, max_size=max_size, open=False,
        kwargs={**target.kwargs(), **prepared.connection_kwargs(), "autocommit": True},
        timeout=CHECKOUT_TIMEOUT,
    )  # fmt: skip
    try:
        await pool.open(wait=True, timeout=POOL_OPEN_TIMEOUT)
    except PoolTimeout as exc:
        await pool.close()
        raise CheckpointError(f"cannot open a connection pool on {target.location}: {exc}") from exc
    return pool


async def checkout(pool: AsyncConnectionPool[Any], liveness: Liveness) -> Any:
    """A pooled connection (the caller puts it back); the probe's error if the wait for one
    lasts PROBE_AFTER seconds and the server does not answer. Awaited in this task: a free
    connection comes without suspending it, so a batch goes to the server at once instead of
    after everything else ready to run (measured: +14% sessions/s over a task waited for with
    a timeout). A connection that comes after a cancelled wait goes back to the pool."""
    from psycopg_pool import PoolTimeout

    try:
        return await pool.getconn(timeout=PROBE_AFTER)
    except PoolTimeout as exc:
        down = await liveness.probe(TimeoutError("no pooled connection came"))
        if down is not None:
            raise down from exc
    return await pool.getconn(timeout=max(CHECKOUT_TIMEOUT - PROBE_AFTER, PROBE_AFTER))


def worker_settings(lease_s: float, name: str) -> dict[str, Any]:
    """Connection settings for a worker holding leases of ``lease_s`` seconds: a worker cut off
    mid-transaction (stopped, partitioned) cannot hold the session's row lock for long, and a
    dead peer is noticed by TCP keepalives. Its connections show as ``weavegraph worker NAME``
    in ``pg_stat_activity``."""
    hold_ms = max(1000, int(lease_s * 1000 / 2))
    options = (
        f"-c idle_in_transaction_session_timeout={hold_ms} -c lock_timeout={hold_ms} "
        f"-c statement_timeout={max(hold_ms, int(lease_s * 1000))}"
    )
    return {
        "application_name": f"weavegraph worker {name}"[:63],
        "options": options,
        "keepalives": 1,
        "keepalives_idle": max(1, int(lease_s / 3)),
        "keepalives_interval": max(1, int(lease_s / 6)),
        "keepalives_count": 3,
    }


def with_settings(target: PgTarget, settings: dict[str, Any] | None) -> PgTarget:
    """``target`` whose connections also get ``settings`` (libpq keywords)."""
    if not settings:
        return target
    return PgTarget(
        conninfo=target.conninfo,
        schema=target.schema,
        location=target.location,
        connect_kwargs=tuple({**target.kwargs(), **settings}.items()),
        prepared=target.prepared,
    )
