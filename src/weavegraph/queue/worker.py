"""``Worker``: a stateless process that claims queued sessions from PostgreSQL and runs them.

Any number of workers on any number of machines share one database. A worker claims up to
``concurrency`` sessions at a time (``claims.claim``), runs each in its own task (``owner``), and
looks for work again when one finishes, when ``NOTIFY`` announces new work, or after a poll
interval with jitter (notifications can be lost). :meth:`Worker.drain` (SIGTERM under
``weavegraph worker``) stops claiming; the running sessions stop after their step in flight
commits and go back to the queue for another worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..checkpoint.postgres import PostgresCheckpointer
from ..checkpoint.postgres._claim import Claim
from ..checkpoint.postgres._connect import worker_settings
from ..checkpoint.postgres._notify import Listener, work_channel
from ..errors import ConfigError
from ..runtime.stop import StopRequest
from . import claims
from .owner import Owner
from .redis_wakeups import RedisWakeups

if TYPE_CHECKING:
    from ..app import App

__all__ = ["DEFAULT_LEASE_S", "Worker", "WorkerOptions"]

DEFAULT_LEASE_S = 30.0
_log = logging.getLogger("weavegraph.queue")


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerOptions:
    """How a worker runs: sessions at once, lease length (seconds), claims before ``dead``,
    the poll interval (seconds, with +-50% jitter) and the name it claims under."""

    concurrency: int = 4
    lease_s: float = DEFAULT_LEASE_S
    max_attempts: int = 3
    poll_s: float = 1.0
    name: str = ""

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ConfigError(f"concurrency must be >= 1, got {self.concurrency}")
        if not self.lease_s > 0.3:
            raise ConfigError(f"the lease must be longer than 0.3 s, got {self.lease_s}")
        if self.max_attempts < 1:
            raise ConfigError(f"max attempts must be >= 1, got {self.max_attempts}")


class Worker:
    """Claims and runs sessions of ``app`` stored at ``url`` until drained."""

    def __init__(
        self,
        app: App,
        url: str,
        options: WorkerOptions | None = None,
        *,
        schema: str | None = None,
        context: Any = None,
        redis_url: str | None = None,
    ) -> None:
        self.app = app
        self.redis_url = redis_url
        """Also announce commits and hear of queued work through Redis (the ``redis`` extra)."""
        self.url = url
        self.options = options or WorkerOptions()
        self.name = self.options.name or f"{socket.gethostname()}:{os.getpid()}"
        self._schema = schema
        self._context = context
        self._stop = StopRequest()
        self._draining = asyncio.Event()
        self._wake = asyncio.Event()
        self.sessions_done = 0

    def drain(self) -> None:
        """Stop claiming; running sessions stop after their step in flight and are requeued."""
        self._stop.request()
        self._draining.set()
        self._wake.set()

    async def run(self) -> None:
        """Claim and run sessions until :meth:`drain`; returns once every session is given back."""
        opts = self.options
        cp = await PostgresCheckpointer.connect(
            self.url, schema=self._schema, max_size=opts.concurrency + 3,
            settings=worker_settings(opts.lease_s, self.name),
        )  # fmt: skip
        owner = Owner(self.app, cp, self._context, opts.max_attempts, self._stop)
        listener = Listener(
            cp.target.conninfo, cp.target.kwargs(), (work_channel(cp.schema),),
            lambda _channel, _payload: self._wake.set(),
        )  # fmt: skip
        redis = await self._redis(cp)
        listener.start()
        running: set[asyncio.Task[Any]] = set()
        _log.info("worker %s: claiming from %s", self.name, cp.location)
        try:
            while not self._draining.is_set():
                free = opts.concurrency - len(running)
                taken = await self._claim(cp, free) if free > 0 else []
                for claim in taken:
                    task = asyncio.get_running_loop().create_task(owner.own(claim))
                    running.add(task)
                    task.add_done_callback(self._finished(running))
                if taken and len(taken) == free:
                    await self._wait(running, None)
                elif not taken or free == 0:
                    await self._wait(running, opts.poll_s * random.uniform(0.5, 1.5))
            if running:
                await asyncio.gather(*running, return_exceptions=True)
        finally:
            for task in running:
                task.cancel()
            await listener.close()
            if redis is not None:
                await redis.close()
            await cp.close()
        _log.info("worker %s: drained", self.name)

    async def _redis(self, cp: PostgresCheckpointer) -> RedisWakeups | None:
        if self.redis_url is None:
            return None
        try:
            redis = await RedisWakeups.connect(self.redis_url)
        except BaseException:
            await cp.close()
            raise
        cp.notifier.publishers.append(redis.publish)
        redis.subscribe((work_channel(cp.schema),), lambda _channel, _sid: self._wake.set())
        return redis

    async def _claim(self, cp: PostgresCheckpointer, free: int) -> list[Claim]:
        try:
            return await cp.execute(
                lambda conn: claims.claim(conn, cp.schema, self.name, self.options.lease_s, free)
            )
        except Exception as exc:  # the database is down: keep polling, claims wait
            _log.warning("worker %s: claiming failed: %s", self.name, exc)
            return []

    def _finished(self, running: set[asyncio.Task[Any]]) -> Any:
        def done(task: asyncio.Task[Any]) -> None:
            running.discard(task)
            self.sessions_done += 1
            if not task.cancelled() and task.exception() is not None:
                _log.error("worker %s: a session task failed", self.name, exc_info=task.exception())
            self._wake.set()

        return done

    async def _wait(self, running: set[asyncio.Task[Any]], wait_s: float | None) -> None:
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait_s):
                await self._wake.wait()
