"""Keeping a claim alive: a heartbeat every lease/3 while the claim token still matches.

:class:`Lease` runs beside the task that drives the claimed session. When a heartbeat finds the
claim gone (another process took the session over after this one was stopped or cut off), or a
cancel was requested, it cancels ``driver`` when one was given (a worker's session task; the
driving code tells why from the claim's flags). Without a driver (an in-process run) the claim
is only marked lost: the run's next commit is refused by the fence with ``LeaseLost``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from . import _claim as claims
from ._claim import Claim

__all__ = ["Lease"]

_log = logging.getLogger(__name__)

Execute = Callable[[Callable[[Any], Awaitable[bool]]], Awaitable[bool]]


class Lease:
    """The heartbeat of one claim; cancels ``driver`` (if any) once the claim is lost or
    cancelled."""

    def __init__(
        self,
        execute: Execute,
        schema: str,
        claim: Claim,
        driver: asyncio.Task[object] | None = None,
    ) -> None:
        self._execute = execute
        self._schema = schema
        self._claim = claim
        self._driver = driver
        self._task: asyncio.Task[None] | None = None

    def __enter__(self) -> Lease:
        self._task = asyncio.get_running_loop().create_task(self._beat())
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _beat(self) -> None:
        claim = self._claim
        interval = claim.lease_s * claims.BEAT
        while True:
            await asyncio.sleep(interval)
            try:
                alive = await self._execute(
                    lambda conn: claims.heartbeat(conn, self._schema, claim)
                )
            except Exception as exc:  # the database is unreachable: the commit will say so
                _log.debug("heartbeat of session %s failed: %s", claim.session_id, exc)
                continue
            if not alive and self._driver is None:  # (a worker's owner says it itself)
                _log.warning(
                    "session %s: LeaseLost (epoch %d): another process took it over",
                    claim.session_id,
                    claim.epoch,
                )
            if not alive or (claim.cancel_requested and self._driver is not None):
                if self._driver is not None:
                    with contextlib.suppress(RuntimeError):
                        self._driver.cancel()
                return
