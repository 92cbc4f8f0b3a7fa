"""Keeping a claim alive: a heartbeat every lease/3 while the claim token still matches.

:class:`Lease` runs beside the task that drives the claimed session. When a heartbeat finds the
claim gone (another worker took the session over after this one was stopped or cut off), or a
cancel was requested, it cancels that task; the driving code tells why from the claim's flags.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from ..checkpoint.postgres._claim import Claim
from . import claims

if TYPE_CHECKING:
    from ..checkpoint.postgres import PostgresCheckpointer

__all__ = ["Lease"]

_log = logging.getLogger(__name__)


class Lease:
    """The heartbeat of one claim; cancels ``driver`` once the claim is lost or cancelled."""

    def __init__(
        self, checkpointer: PostgresCheckpointer, claim: Claim, driver: asyncio.Task[object]
    ) -> None:
        self._cp = checkpointer
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
        interval = claim.lease_s / 3
        while True:
            await asyncio.sleep(interval)
            try:
                alive = await self._cp.execute(
                    lambda conn: claims.heartbeat(conn, self._cp.schema, claim)
                )
            except Exception as exc:  # the database is unreachable: the commit will say so
                _log.debug("heartbeat of session %s failed: %s", claim.session_id, exc)
                continue
            if not alive or claim.cancel_requested:
                with contextlib.suppress(RuntimeError):
                    self._driver.cancel()
                return
