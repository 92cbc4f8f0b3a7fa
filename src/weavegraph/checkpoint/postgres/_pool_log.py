"""The connection pool's own log records, re-logged under weavegraph's name and rate-limited.

``psycopg_pool`` logs a warning each time its background workers fail to reconnect, so a stopped
server printed hundreds of lines. :func:`bridge_pool_logging` installs one filter on the
``psycopg.pool`` logger: each kind of record (its message template) is re-logged on
``weavegraph.checkpoint.postgres.pool`` at most once per REPEAT_INTERVAL seconds, saying how many
like it were held back; the original record is dropped. ``WEAVEGRAPH_LOG`` then controls them like
any weavegraph logger.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

__all__ = ["POOL_LOGGER", "REPEAT_INTERVAL", "PoolLogBridge", "bridge_pool_logging"]

POOL_LOGGER = "psycopg.pool"
REPEAT_INTERVAL = 30.0  # seconds between two records of the same kind
_log = logging.getLogger("weavegraph.checkpoint.postgres.pool")


class PoolLogBridge(logging.Filter):
    """Drops every record it sees, re-logging the first of each kind per REPEAT_INTERVAL."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self._clock = clock
        self._lock = threading.Lock()  # the pool may log from its worker threads
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        kind, now = str(record.msg), self._clock()
        with self._lock:
            last = self._last.get(kind)
            if last is not None and now - last < REPEAT_INTERVAL:
                self._held[kind] = self._held.get(kind, 0) + 1
                return False
            self._last[kind] = now
            held = self._held.pop(kind, 0)
        note = f" ({held} more like it in the last {REPEAT_INTERVAL:g} s)" if held else ""
        _log.log(record.levelno, "connection pool: %s%s", record.getMessage(), note)
        return False


_bridge = PoolLogBridge()


def bridge_pool_logging() -> None:
    """Install the bridge on the pool's logger (once per process)."""
    pool_logger = logging.getLogger(POOL_LOGGER)
    if _bridge not in pool_logger.filters:
        pool_logger.addFilter(_bridge)
