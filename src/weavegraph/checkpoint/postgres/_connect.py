"""Where a PostgreSQL checkpointer connects, and connecting fast or failing fast.

A URL may carry the schema as ``?schema=NAME`` (libpq itself would reject the parameter, so it is
removed before connecting). The first connection is a single direct one with a short
``connect_timeout``: an unreachable server fails in seconds with its own error, instead of a pool
retrying in the background for its whole open timeout and logging a warning each time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ...errors import CheckpointError, ConfigError

if TYPE_CHECKING:
    from psycopg_pool import AsyncConnectionPool

CONNECT_TIMEOUT = 5  # seconds, libpq's connect_timeout unless the URL or PGCONNECT_TIMEOUT sets one
POOL_OPEN_TIMEOUT = 10.0  # the server just answered; this only bounds a pathological pool open


@dataclass(frozen=True, slots=True)
class PgTarget:
    """A parsed URL: what libpq gets, the schema, and a password-free ``location`` for messages."""

    conninfo: str
    schema: str
    location: str
    connect_kwargs: tuple[tuple[str, Any], ...]

    def kwargs(self) -> dict[str, Any]:
        return dict(self.connect_kwargs)


def parse_target(url: str, schema: str | None = None) -> PgTarget:
    """Split ``?schema=`` off ``url``; ``schema`` given in code must agree with it."""
    from psycopg import ProgrammingError
    from psycopg.conninfo import conninfo_to_dict

    scheme = urlsplit(url).scheme if "://" in url else ""
    if scheme and scheme not in ("postgres", "postgresql"):
        # libpq's own message ("missing '=' after ...") would not say what is wrong.
        raise ConfigError(
            f"{url.split('://', 1)[0]}:// is not a PostgreSQL URL: expected "
            "postgresql://user@host/db or a key=value connection string"
        )
    conninfo, url_schema = _split_schema(url)
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
    kwargs: dict[str, Any] = {"prepare_threshold": None}
    if "connect_timeout" not in params and not os.environ.get("PGCONNECT_TIMEOUT"):
        kwargs["connect_timeout"] = CONNECT_TIMEOUT
    return PgTarget(
        conninfo=conninfo,
        schema=chosen,
        location=f"{where} schema {chosen}",
        connect_kwargs=tuple(kwargs.items()),
    )


def _split_schema(url: str) -> tuple[str, str | None]:
    if not url.startswith(("postgres://", "postgresql://")):
        return url, None
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schemas = [value for key, value in query if key == "schema"]
    if not schemas:
        return url, None
    rest = urlencode([(key, value) for key, value in query if key != "schema"])
    return urlunsplit(parts._replace(query=rest)), schemas[-1] or None


async def connect_once(target: PgTarget) -> Any:
    """One direct connection (the caller closes it); a CheckpointError naming the server if not."""
    import psycopg

    try:
        return await psycopg.AsyncConnection.connect(target.conninfo, **target.kwargs())
    except psycopg.Error as exc:
        raise CheckpointError(
            f"cannot connect to PostgreSQL at {target.location}: {exc}",
            help="Check that the server is running and the URL (host, port, database, user).",
        ) from exc


async def open_pool(target: PgTarget, max_size: int) -> AsyncConnectionPool[Any]:
    """A pool whose connections are checked on checkout; opened once the server has answered."""
    from psycopg_pool import AsyncConnectionPool, PoolTimeout

    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        target.conninfo, min_size=1, max_size=max_size, open=False, kwargs=target.kwargs(),
        check=AsyncConnectionPool.check_connection,
    )  # fmt: skip
    try:
        await pool.open(wait=True, timeout=POOL_OPEN_TIMEOUT)
    except PoolTimeout as exc:
        await pool.close()
        raise CheckpointError(f"cannot open a connection pool on {target.location}: {exc}") from exc
    return pool


def worker_settings(lease_s: float) -> dict[str, Any]:
    """Connection settings for a worker holding leases of ``lease_s`` seconds: a worker cut off
    mid-transaction (stopped, partitioned) cannot hold the session's row lock for long, and a
    dead peer is noticed by TCP keepalives."""
    hold_ms = max(1000, int(lease_s * 1000 / 2))
    options = (
        f"-c idle_in_transaction_session_timeout={hold_ms} -c lock_timeout={hold_ms} "
        f"-c statement_timeout={max(hold_ms, int(lease_s * 1000))}"
    )
    return {
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
    )
