"""Idempotency keys of a server that runs sessions itself: the first answer, kept in memory.

A retried ``POST /api/runs`` with the same ``Idempotency-Key`` gets what the first one got,
without a second run. The newest :data:`KEPT` keys are remembered (older ones are forgotten:
memory stays bounded however many requests come); a retry arriving while the first request is
still being handled waits for its answer. Queue mode keeps keys in the database instead.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import AsyncGenerator
from typing import Final

from ._body import ApiError
from ._requests import Accepted

__all__ = ["KEPT", "Replays"]

KEPT: Final = 4096
"""Idempotency keys remembered per server process."""


class Replays:
    """The first answer given to each recent idempotency key."""

    def __init__(self, kept: int = KEPT) -> None:
        self._kept = kept
        self._answers: OrderedDict[str, asyncio.Future[Accepted]] = OrderedDict()

    async def replay(self, key: str, session_id: str | None) -> Accepted | None:
        """The first answer to ``key`` (waiting for it while the first request is handled);
        400 when that request named another session."""
        found = self._answers.get(key)
        if found is None:
            return None
        try:
            first = await asyncio.shield(found)
        except Exception:  # the first request failed: this one is handled afresh
            return None
        if session_id is not None and session_id != first.session_id:
            raise ApiError(
                400,
                f"Idempotency-Key {key!r} was already used for session {first.session_id!r}, "
                f"not {session_id!r}",
            )
        return first

    @contextlib.asynccontextmanager
    async def first(self, key: str | None) -> AsyncGenerator[asyncio.Future[Accepted] | None]:
        """While a request with a new ``key`` is handled: set the future's result to its
        answer; if the block fails, the key is forgotten (a retry is handled afresh)."""
        if key is None:
            yield None
            return
        answer: asyncio.Future[Accepted] = asyncio.get_running_loop().create_future()
        self._answers[key] = answer
        while len(self._answers) > self._kept:
            self._answers.popitem(last=False)
        try:
            yield answer
        except BaseException as exc:
            if self._answers.get(key) is answer:
                del self._answers[key]
            if not answer.done():
                answer.set_exception(exc if isinstance(exc, Exception) else RuntimeError("ended"))
                answer.exception()  # retrieved: never "exception was never retrieved"
            raise
        if not answer.done():
            raise RuntimeError("the request's answer was not recorded")
