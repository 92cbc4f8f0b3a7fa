"""SDK clients per event loop: an async HTTP pool belongs to the loop that opened its connections,
so a model object used by several ``asyncio.run`` calls (a script, a CLI, tests) needs one client
per loop, not one for the life of the object."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["PerLoop"]

T = TypeVar("T")


class PerLoop(Generic[T]):
    """Hands out ``first`` in the first loop that asks, and a new client from ``make`` whenever
    a call comes from another loop (the previous loop's client is left to that loop)."""

    __slots__ = ("_client", "_loop", "_make")

    def __init__(self, first: T, make: Callable[[], T] | None) -> None:
        self._client = first
        self._make = make  # None: a client the caller gave, used as is
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def current(self) -> T:
        """The client most recently handed out (the first one before any call)."""
        return self._client

    def get(self) -> T:
        """The client for the running loop."""
        loop = asyncio.get_running_loop()
        if self._make is not None and self._loop is not None and self._loop is not loop:
            self._client = self._make()
        self._loop = loop
        return self._client
