"""The bus's bounded buffers and their consumers: subscriptions, loop pumps and sink threads.

Every outlet owns one FIFO buffer that producers append to under the bus lock. A full buffer
loses its oldest item (counted, and logged at most every few seconds) so a producer never waits.
Consumers take the whole buffer at once (a swap), so a busy consumer costs the producer nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")

_WARN_EVERY_S = 5.0


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def wake_future(waiter: asyncio.Future[None], owner_thread: int) -> None:
    """Resolve ``waiter`` from any thread (cheaply when already on its loop's thread)."""
    if threading.get_ident() == owner_thread:
        _resolve(waiter)
        return
    with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
        waiter.get_loop().call_soon_threadsafe(_resolve, waiter)


class Buffer(Generic[T]):
    """A FIFO that drops its oldest item when full. Callers hold the bus lock."""

    __slots__ = ("_last_warned", "_unreported", "capacity", "dropped", "items", "label")

    def __init__(self, capacity: int | None, label: str) -> None:
        self.items: deque[T] = deque()
        self.capacity = capacity
        self.dropped = 0
        self.label = label
        self._unreported = 0
        self._last_warned = 0.0

    def push(self, item: T) -> None:
        items = self.items
        if self.capacity is not None and len(items) >= self.capacity:
            items.popleft()
            self._count_drop()
        items.append(item)

    def take(self) -> deque[T]:
        """Everything buffered, in order; the buffer is left empty."""
        items = self.items
        self.items = deque()
        return items

    def _count_drop(self) -> None:
        self.dropped += 1
        self._unreported += 1
        now = time.monotonic()
        if now - self._last_warned >= _WARN_EVERY_S:
            logger.warning(
                "%s is falling behind: dropped %d oldest event(s) (%d in total, capacity %s)",
                self.label,
                self._unreported,
                self.dropped,
                self.capacity,
            )
            self._unreported = 0
            self._last_warned = now


class LoopOutlet(Generic[T]):
    """A buffer consumed by one coroutine on an event loop (a subscription or a sink pump)."""

    __slots__ = ("_lock", "_owner_thread", "_waiter", "buffer", "closed")

    def __init__(self, lock: threading.RLock, capacity: int | None, label: str) -> None:
        self._lock = lock
        self.buffer: Buffer[T] = Buffer(capacity, label)
        self.closed = False
        self._waiter: asyncio.Future[None] | None = None
        self._owner_thread = 0

    def push_locked(self, item: T) -> None:
        """Append (the caller holds the bus lock) and wake the consumer if it sleeps."""
        self.buffer.push(item)
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            wake_future(waiter, self._owner_thread)

    def close_locked(self) -> None:
        """No more items will come; the consumer ends once it has taken what is buffered."""
        self.closed = True
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            wake_future(waiter, self._owner_thread)

    async def next_batch(self) -> deque[T] | None:
        """Wait for items and take them all; ``None`` once closed and empty."""
        while True:
            with self._lock:
                if self.buffer.items:
                    return self.buffer.take()
                if self.closed:
                    return None
                waiter = asyncio.get_running_loop().create_future()
                self._waiter = waiter
                self._owner_thread = threading.get_ident()
            try:
                await waiter
            finally:
                with self._lock:
                    if self._waiter is waiter:
                        self._waiter = None


class ThreadOutlet(Generic[T]):
    """A buffer consumed by a dedicated daemon thread, so a blocking consumer never stalls the loop.

    The thread starts with the first item and ends after a while without work (or on close), so
    a bus nobody closes leaves no thread behind for long.
    """

    _IDLE_EXIT_S = 5.0

    def __init__(
        self,
        lock: threading.RLock,
        capacity: int | None,
        label: str,
        deliver: Callable[[deque[T]], None],
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self.buffer: Buffer[T] = Buffer(capacity, label)
        self._lock = lock
        self._cond = threading.Condition(lock)
        self._deliver = deliver
        self._on_close = on_close
        self._thread: threading.Thread | None = None
        self._sleeping = False
        self._busy = False
        self._closed = False
        self._idle_waiters: list[tuple[asyncio.Future[None], int]] = []

    def push_locked(self, item: T) -> None:
        self.buffer.push(item)
        if self._thread is None:
            self._start_locked()
        elif self._sleeping:
            self._cond.notify()

    def _start_locked(self) -> None:
        self._thread = threading.Thread(
            target=self._run, name=f"weavegraph-{self.buffer.label}", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        while True:
            with self._lock:
                batch = self._wait_for_work_locked()
                if batch is None:
                    return
                self._busy = True
            try:
                self._deliver(batch)
            finally:
                with self._lock:
                    self._busy = False

    def _wait_for_work_locked(self) -> deque[T] | None:
        while not self.buffer.items:
            self._notify_idle_locked()
            if self._closed:
                self._thread = None
                self._run_on_close()
                return None
            self._sleeping = True
            woke = self._cond.wait(self._IDLE_EXIT_S)
            self._sleeping = False
            if not woke and not self.buffer.items and not self._closed:
                self._thread = None  # idle for long: the next push starts a new thread
                return None
        return self.buffer.take()

    def _run_on_close(self) -> None:
        if self._on_close is not None:
            try:
                self._on_close()
            except Exception:
                logger.exception("closing %s failed", self.buffer.label)

    def _notify_idle_locked(self) -> None:
        waiters, self._idle_waiters = self._idle_waiters, []
        for waiter, owner in waiters:
            wake_future(waiter, owner)

    def wait_idle(self) -> asyncio.Future[None]:
        """A future resolved once everything pushed so far has been delivered."""
        waiter = asyncio.get_running_loop().create_future()
        with self._lock:
            if not self.buffer.items and not self._busy:
                waiter.set_result(None)
            else:
                self._idle_waiters.append((waiter, threading.get_ident()))
                if self._thread is None:
                    self._start_locked()
        return waiter

    def close(self) -> threading.Thread | None:
        """Ask the thread to finish what is buffered, run ``on_close`` and exit; return it."""
        with self._lock:
            self._closed = True
            thread = self._thread
            if thread is None:
                self._run_on_close()
            else:
                self._cond.notify()
            return thread
