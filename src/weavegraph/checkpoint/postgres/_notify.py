"""Wake-ups between processes sharing a PostgreSQL schema: ``NOTIFY`` after commit, ``LISTEN``.

Two channels per schema: :func:`work_channel` (a session was queued: workers claim) and
:func:`session_channel` (a session committed a step or events: streams read the log). A
notification is only a hint (they can be lost when a listener reconnects); everyone who waits also
polls. Notifications are sent after the commit, never inside the step's transaction (``NOTIFY``
in a transaction serializes every committing transaction of the database on one lock), and
coalesced: one statement on a connection of the notifier's own (autocommit: no BEGIN and COMMIT
around it) announces every session that changed since the last one, at most every
:data:`NOTIFY_EVERY` seconds (the first change after a quiet spell goes at once).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import orjson

__all__ = [
    "Listener",
    "Notifier",
    "Publisher",
    "notify_work",
    "session_channel",
    "work_channel",
]

_log = logging.getLogger(__name__)
_RECONNECT_S = 1.0

NOTIFY_EVERY = 0.02
"""Seconds between two announcements at most: with many sessions committing, one statement
announces all of them (each announcement cost this process as much as 6% of a busy run's time),
and a listener learns of a commit at most this much later (listeners also poll)."""

Publisher = Callable[[str, Sequence[str]], Awaitable[None]]
"""Another way to announce (channel, session ids) besides NOTIFY, such as Redis pub/sub."""


def _channel(kind: str, schema: str) -> str:
    # Channel names are identifiers (at most 63 bytes); schema names may be that long themselves.
    return f"weavegraph_{kind}_{hashlib.sha1(schema.encode()).hexdigest()[:20]}"


def work_channel(schema: str) -> str:
    """Where enqueues are announced (payload: the session id)."""
    return _channel("work", schema)


def session_channel(schema: str) -> str:
    """Where committed steps and events are announced (payload: the session id)."""
    return _channel("session", schema)


async def notify_work(conn: Any, schema: str, session_id: str) -> None:
    """Announce queued work (on an autocommit connection, or after the transaction committed)."""
    await conn.execute("SELECT pg_notify(%s, %s)", (work_channel(schema), session_id))


class Notifier:
    """Coalesces "session changed" announcements and sends them after the commits."""

    def __init__(self, conninfo: str, kwargs: dict[str, Any], schema: str) -> None:
        self._conninfo = conninfo
        self._kwargs = kwargs
        self._channel = session_channel(schema)
        self._pending: set[str] = set()
        self._task: asyncio.Task[None] | None = None
        self._conn: Any = None
        self._sent_at = -NOTIFY_EVERY  # (loop time of the last announcement)
        self.publishers: list[Publisher] = []
        """Also told of every announcement (``--redis``)."""

    def session_changed(self, session_id: str) -> None:
        """Called after a commit; the NOTIFY follows on a pooled connection."""
        self._pending.add(session_id)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._flush())

    async def publish(self, channel: str, session_ids: Sequence[str]) -> None:
        """Tell the other publishers (NOTIFY is the caller's, in its own transaction)."""
        for publisher in self.publishers:
            await publisher(channel, session_ids)

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending:
            wait = self._sent_at + NOTIFY_EVERY - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            self._sent_at = loop.time()
            batch, self._pending = sorted(self._pending), set()
            await self.publish(self._channel, batch)
            try:
                await self._notify(batch)
            except Exception as exc:  # a hint only: the listeners poll as well
                _log.debug("NOTIFY on %s failed: %s", self._channel, exc)
                await self._disconnect()
                return

    async def _notify(self, session_ids: list[str]) -> None:
        import psycopg

        conn = self._conn
        if conn is None or conn.closed:
            conn = await psycopg.AsyncConnection.connect(
                self._conninfo, autocommit=True, **self._kwargs
            )
            self._conn = conn
        await conn.execute(
            "SELECT pg_notify(%s, sid) FROM json_array_elements_text(%s::json) AS sid",
            (self._channel, orjson.dumps(session_ids).decode()),
        )

    async def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()

    async def close(self) -> None:
        if self._task is not None and not self._task.done():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._task, 2.0)
            self._task.cancel()
        await self._disconnect()


class Listener:
    """``LISTEN`` on channels from one dedicated connection; ``on_notify(channel, payload)`` is
    called for each notification. Reconnects after a lost connection (the waiters also poll)."""

    def __init__(
        self, conninfo: str, kwargs: dict[str, Any], channels: tuple[str, ...],
        on_notify: Callable[[str, str], None],
    ) -> None:  # fmt: skip
        self._conninfo = conninfo
        self._kwargs = kwargs
        self._channels = channels
        self._on_notify = on_notify
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        import psycopg
        from psycopg import sql

        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._conninfo, autocommit=True, **self._kwargs
                ) as conn:
                    for channel in self._channels:
                        await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                    async for note in conn.notifies():
                        self._on_notify(note.channel, note.payload)
            except psycopg.Error as exc:
                _log.debug("LISTEN connection lost (%s); reconnecting", exc)
            await asyncio.sleep(_RECONNECT_S)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
