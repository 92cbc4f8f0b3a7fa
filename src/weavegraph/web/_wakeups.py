"""What wakes a server's event streams when another process commits a session's step.

On PostgreSQL, one ``LISTEN`` connection per server process hears the ``NOTIFY`` each commit
sends (after its COMMIT, payload the session id) and rings the streams waiting on that session
(``events.log.ring``). With ``--redis``, the same announcements also come (and go) through Redis
pub/sub. Either is only a hint: streams poll the log as well, since a notification can be lost.
"""

from __future__ import annotations

import logging

from ..checkpoint import Checkpointer
from ..checkpoint.postgres import PostgresCheckpointer
from ..checkpoint.postgres._notify import Listener, session_channel
from ..errors import ConfigError
from ..events import log as event_log
from ..queue.redis_wakeups import RedisWakeups

__all__ = ["Wakeups"]

_log = logging.getLogger(__name__)


class Wakeups:
    """The server's listeners (none on SQLite or in memory, where every run is in-process)."""

    def __init__(self, listener: Listener | None, redis: RedisWakeups | None) -> None:
        self._listener = listener
        self._redis = redis

    @classmethod
    async def start(cls, checkpointer: Checkpointer, redis_url: str | None) -> Wakeups:
        """Listen for ``checkpointer``'s commits (and through Redis at ``redis_url``)."""
        if not isinstance(checkpointer, PostgresCheckpointer):
            if redis_url is not None:
                raise ConfigError(
                    "--redis wakes the streams of a server on PostgreSQL (runs of other "
                    f"processes), not on {type(checkpointer).__name__}"
                )
            return cls(None, None)
        channel = session_channel(checkpointer.schema)
        listener = Listener(
            checkpointer.target.conninfo, checkpointer.target.kwargs(), (channel,), _ring
        )
        redis = None
        if redis_url is not None:
            redis = await RedisWakeups.connect(redis_url)
            checkpointer.notifier.publishers.append(redis.publish)
            redis.subscribe((channel,), _ring)
        listener.start()
        _log.debug("streams woken by NOTIFY on %s%s", channel, " and Redis" if redis else "")
        return cls(listener, redis)

    async def close(self) -> None:
        if self._listener is not None:
            await self._listener.close()
        if self._redis is not None:
            await self._redis.close()


def _ring(_channel: str, session_id: str) -> None:
    event_log.ring(session_id)
