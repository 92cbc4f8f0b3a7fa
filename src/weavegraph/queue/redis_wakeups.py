"""Wake-ups through Redis pub/sub (``--redis URL``): the same announcements as PostgreSQL's
``NOTIFY``, on the same channel names, payload the session id.

Optional and never needed for correctness: a worker polls for work and a stream polls the event
log whatever Redis does; Redis only makes the wake-up quicker, or spares the database the
``LISTEN`` connections. Needs the ``redis`` extra (redis-py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["RedisWakeups"]

_log = logging.getLogger(__name__)
_RECONNECT_S = 1.0


class RedisWakeups:
    """One Redis client: :meth:`publish` announcements, :meth:`subscribe` to channels."""

    def __init__(self, client: Redis, url: str) -> None:
        self._client = client
        self.url = url
        self._tasks: list[asyncio.Task[None]] = []

    @classmethod
    async def connect(cls, url: str) -> RedisWakeups:
        """Connect and check the server answers; ConfigError naming the problem otherwise."""
        try:
            from redis.asyncio import Redis
            from redis.exceptions import RedisError
        except ImportError as exc:
            raise ConfigError(
                f"--redis needs the 'redis' extra: {exc}", help="pip install 'weavegraph[redis]'"
            ) from None
        try:
            client = Redis.from_url(url, socket_connect_timeout=5)  # pyright: ignore[reportUnknownMemberType]
        except ValueError as exc:
            raise ConfigError(f"invalid Redis URL {url!r}: {exc}") from None
        try:
            await client.ping()  # pyright: ignore[reportUnknownMemberType]
        except (RedisError, OSError) as exc:
            await client.aclose()
            raise ConfigError(f"cannot reach Redis at {url}: {exc}") from None
        return cls(client, url)

    async def publish(self, channel: str, session_ids: Sequence[str]) -> None:
        """Announce ``session_ids`` on ``channel`` (a hint: a failure is only logged)."""
        try:
            for session_id in session_ids:
                await self._client.publish(channel, session_id)  # pyright: ignore[reportUnknownMemberType]
        except Exception as exc:
            _log.debug("Redis publish on %s failed: %s", channel, exc)

    def subscribe(self, channels: Sequence[str], on_message: Callable[[str, str], None]) -> None:
        """Call ``on_message(channel, session_id)`` for every announcement on ``channels``
        (resubscribing after a lost connection) until :meth:`close`."""
        task = asyncio.get_running_loop().create_task(self._listen(tuple(channels), on_message))
        self._tasks.append(task)

    async def _listen(
        self, channels: tuple[str, ...], on_message: Callable[[str, str], None]
    ) -> None:
        while True:
            try:
                async with self._client.pubsub() as pubsub:  # pyright: ignore[reportUnknownMemberType]
                    await pubsub.subscribe(*channels)  # pyright: ignore[reportUnknownMemberType]
                    async for message in pubsub.listen():  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
                        _deliver(message, on_message)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                _log.debug("Redis subscription lost (%s); subscribing again", exc)
            await asyncio.sleep(_RECONNECT_S)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._client.aclose()


def _deliver(message: Any, on_message: Callable[[str, str], None]) -> None:
    if not isinstance(message, dict) or message.get("type") != "message":  # pyright: ignore[reportUnknownMemberType]
        return
    channel, data = message.get("channel"), message.get("data")  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
    if isinstance(channel, bytes) and isinstance(data, bytes):
        on_message(channel.decode(), data.decode())
