"""Query templates bound to a schema, and JSONB parameters: what every PostgreSQL module uses."""

from __future__ import annotations

from collections.abc import Generator, Iterable
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache
from typing import Any, LiteralString, cast

import orjson

from .. import _codec as codec

__all__ = ["IDS", "fetchall", "fetchone", "ids", "jsonb", "pipelined", "q", "recordset", "settle"]

IDS = "ARRAY(SELECT json_array_elements_text(%s::json))"
"""The session ids of a JSON array parameter (:func:`ids`), as the array ``id = ANY(...)`` looks
up in the primary key. Every statement that reads or writes rows of many sessions (or their
steps) names them so: joined only with the rows of a JSON parameter, which the server guesses are
100, ``sessions`` would be read whole (a hash join over a scan of the table) each time."""


def ids(values: Iterable[str]) -> str:
    """Session ids as the JSON array :data:`IDS` takes."""
    return orjson.dumps(list(values)).decode()


def recordset(columns: str, alias: str) -> str:
    """The rows of one JSON parameter (an array of arrays, each row's values in the order of
    ``columns``: "name type, ..."), as a subquery named ``alias`` with those columns. Read by
    position, they cost the server about half of what objects with named keys cost
    (``json_to_recordset``), and this process the keys; a value missing at the end of a row
    reads as NULL."""
    values = ", ".join(
        f"(r.v->>{index})::{kind} AS {name}"
        for index, (name, kind) in enumerate(column.split(" ", 1) for column in columns.split(", "))
    )
    return f"(SELECT {values} FROM jsonb_array_elements(%s::jsonb) AS r (v)) AS {alias}"


_PIPELINE: ContextVar[tuple[Any, Any] | None] = ContextVar("weavegraph_pipeline", default=None)
"""The connection and pipeline of the transaction this task runs in pipeline mode."""


@contextmanager
def pipelined(conn: Any, pipeline: Any) -> Generator[None]:
    """While inside, this task's transaction on ``conn`` runs in ``pipeline`` (see
    :func:`settle`)."""
    token = _PIPELINE.set((conn, pipeline))
    try:
        yield
    finally:
        _PIPELINE.reset(token)


async def settle(conn: Any) -> None:
    """Call before reading a result inside a transaction: in pipeline mode, a Sync first.

    Reading a result in pipeline mode otherwise asks the server for it with a flush, after which
    the server, waiting for the client's next message, still counts as running a statement: its
    ``idle_in_transaction_session_timeout`` never starts. A worker stopped (``SIGSTOP``) or cut
    off between two statements of a transaction would then hold its sessions' row locks for as
    long as it is gone, and no other worker could take them over. After a Sync the server waits
    as ``idle in transaction``, which the timeout bounds."""
    current = _PIPELINE.get()
    if current is not None and current[0] is conn:
        await current[1].sync()


async def fetchone(conn: Any, query: Any, params: Any = ()) -> Any:
    """Run ``query`` and read its first row (:func:`settle` first)."""
    cursor = await conn.execute(query, params)
    await settle(conn)
    return await cursor.fetchone()


async def fetchall(conn: Any, query: Any, params: Any = ()) -> list[Any]:
    """Run ``query`` and read its rows (:func:`settle` first)."""
    cursor = await conn.execute(query, params)
    await settle(conn)
    return await cursor.fetchall()


@lru_cache(maxsize=512)
def q(template: str, schema: str) -> Any:
    """``template`` with ``{schema}`` replaced by the quoted schema name (composed once per
    template and schema: the save path uses a handful of templates many times)."""
    from psycopg import sql

    # Templates are this package's constants; only the schema name varies, quoted as an identifier.
    return sql.SQL(cast("LiteralString", template)).format(schema=sql.Identifier(schema))


def jsonb(value: object) -> Any:
    """A JSONB parameter serialized with orjson (the codec's rules)."""
    from psycopg.types.json import Jsonb

    return Jsonb(value, dumps=lambda v: codec.dumps(v).decode())
