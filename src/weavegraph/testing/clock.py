"""A controllable clock to inject into runs (``app.invoke(..., clock=FakeClock())``)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

__all__ = ["FakeClock"]

_DEFAULT_START = datetime(2024, 1, 1, tzinfo=UTC)


class FakeClock:
    """A clock that only moves when told to (or by ``tick`` on every reading). Thread-safe.

    ``now()`` returns the current fake time, then moves it forward by ``tick`` (default: not at
    all), so each event of a run can get a distinct, reproducible timestamp. Calling the clock
    is the same as ``now()``.
    """

    def __init__(self, start: datetime = _DEFAULT_START, *, tick: timedelta | float = 0.0) -> None:
        if start.tzinfo is None:
            raise ValueError("FakeClock needs an aware datetime (e.g. tzinfo=UTC)")
        self._now = start
        self._tick = tick if isinstance(tick, timedelta) else timedelta(seconds=tick)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        """The current fake time (then advanced by ``tick``)."""
        with self._lock:
            current = self._now
            self._now = current + self._tick
            return current

    __call__ = now

    def peek(self) -> datetime:
        """The current fake time, without ticking."""
        with self._lock:
            return self._now

    def advance(self, seconds: float = 0.0, *, delta: timedelta | None = None) -> datetime:
        """Move forward by ``seconds`` (or ``delta``); returns the new time."""
        step = delta if delta is not None else timedelta(seconds=seconds)
        if step < timedelta(0):
            raise ValueError("a clock does not go backwards; use set() to jump")
        with self._lock:
            self._now += step
            return self._now

    def set(self, when: datetime) -> None:
        """Jump to ``when`` (aware)."""
        if when.tzinfo is None:
            raise ValueError("FakeClock needs an aware datetime (e.g. tzinfo=UTC)")
        with self._lock:
            self._now = when

    def __repr__(self) -> str:
        return f"FakeClock({self.peek().isoformat()}, tick={self._tick})"
