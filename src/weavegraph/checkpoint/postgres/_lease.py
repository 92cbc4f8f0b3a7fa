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
import time
from collections.abc import Awaitable, Callable, Generator
from typing import Any

from . import _claim as claims
from ._claim import Claim

__all__ = ["Heartbeats", "Lease"]

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


class Heartbeats:
    """The heartbeat of every in-process run's claim (``_hold``), one task for all: every
    ``lease * BEAT / 2`` seconds it renews, in one statement, each claim whose lease was last set
    (by a heartbeat or a commit) at least that long ago, so none goes longer than ``lease * BEAT``
    without. A claim found no longer its session's is marked lost (the run's next commit is then
    refused with ``LeaseLost``). Runs thus start no task of their own, and leave no cancelled one
    behind for the garbage collector."""

    def __init__(
        self, execute: Callable[[Callable[[Any], Awaitable[None]]], Awaitable[None]], schema: str
    ) -> None:
        self._execute = execute
        self._schema = schema
        self._claims: dict[int, Claim] = {}
        self._task: asyncio.Task[None] | None = None

    @contextlib.contextmanager
    def keeping(self, claim: Claim) -> Generator[Claim]:
        """While inside, ``claim`` is kept alive."""
        self._claims[id(claim)] = claim
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._beat())
        try:
            yield claim
        finally:
            del self._claims[id(claim)]

    async def _beat(self) -> None:
        while self._claims:
            await asyncio.sleep(min(c.lease_s for c in self._claims.values()) * claims.BEAT / 2)
            now = time.monotonic()
            due = [
                c for c in self._claims.values()
                if not c.lost and now - c.renewed_at >= c.lease_s * claims.BEAT / 2
            ]  # fmt: skip
            if not due:
                continue
            await self._renew(due)

    async def _renew(self, due: list[Claim]) -> None:
        try:
            await self._execute(lambda conn: claims.heartbeats(conn, self._schema, due))
        except Exception as exc:  # the database is unreachable: the commit will say so
            _log.debug("heartbeat of %d claims failed: %s", len(due), exc)
            return
        for claim in due:
            if claim.lost:
                _log.warning(
                    "session %s: LeaseLost (epoch %d): another process took it over",
                    claim.session_id,
                    claim.epoch,
                )

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
