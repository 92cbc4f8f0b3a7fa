"""Worker threads for sync nodes that never hold up the process's exit.

``asyncio.to_thread`` uses the loop's default executor, whose threads the interpreter joins at
exit (and ``asyncio.run`` waits for on the way out): a sync node blocked in ``time.sleep`` or a
socket would keep a stopped process alive until it returns. These threads are daemons: when a
run is stopped at once (a second Ctrl-C), the step in flight is abandoned (never committed) and
its thread is left to die with the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import os
import queue
import threading
from collections.abc import Callable
from typing import Any, Final, TypeVar

__all__ = ["run_in_thread"]

_T = TypeVar("_T")

_MAX_THREADS: Final = min(32, (os.cpu_count() or 1) + 4)
"""As many as the default executor would use."""

_Job = tuple[
    asyncio.AbstractEventLoop,
    "asyncio.Future[Any]",
    contextvars.Context,
    Callable[..., Any],
    tuple[Any, ...],
]


class _DaemonPool:
    """A growing pool of daemon threads (up to ``_MAX_THREADS``) taking jobs from one queue."""

    def __init__(self, max_threads: int) -> None:
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._max = max_threads
        self._threads = 0
        self._idle = 0
        self._queued = 0

    def submit(self, job: _Job) -> None:
        with self._lock:
            self._queued += 1
            spawn = self._queued > self._idle and self._threads < self._max
            if spawn:
                self._threads += 1
        self._jobs.put(job)
        if spawn:
            thread = threading.Thread(target=self._work, name="weavegraph-node", daemon=True)
            thread.start()

    def _work(self) -> None:
        while True:
            with self._lock:
                self._idle += 1
            job = self._jobs.get()
            with self._lock:
                self._idle -= 1
                self._queued -= 1
            _run(*job)
            del job


def _run(
    loop: asyncio.AbstractEventLoop,
    future: asyncio.Future[Any],
    context: contextvars.Context,
    fn: Callable[..., Any],
    args: tuple[Any, ...],
) -> None:
    try:
        result = context.run(fn, *args)
    except BaseException as exc:  # handed to the awaiting task, like any executor does
        _deliver(loop, future, None, exc)
    else:
        _deliver(loop, future, result, None)


def _deliver(
    loop: asyncio.AbstractEventLoop,
    future: asyncio.Future[Any],
    result: Any,
    error: BaseException | None,
) -> None:
    def settle() -> None:
        if future.cancelled():  # the run stopped without waiting for this call
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits for this any more
        loop.call_soon_threadsafe(settle)


_POOL: Final = _DaemonPool(_MAX_THREADS)


async def run_in_thread(fn: Callable[..., _T], /, *args: Any) -> _T:
    """``fn(*args)`` in a daemon worker thread, with the caller's context variables.

    Cancelling the awaiting task returns at once; the call itself runs on (it cannot be
    interrupted) and its result is dropped.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[_T] = loop.create_future()
    _POOL.submit((loop, future, contextvars.copy_context(), fn, args))
    return await future
