"""The one way to stop runs: ``request_stop()``, SIGTERM/SIGINT, and stopping at once.

A requested stop never interrupts a superstep: every committed step is checkpointed before the
next starts, so the loop stops at the next step boundary, loses nothing, ends the stream with
``status=stopped``, and running the session again continues exactly there.

A second signal while a stop is pending stops **at once** (:meth:`StopRequest.force`): the runs
tracking the request are cancelled, the step in flight is not committed (it runs again when the
session continues), a sync node's worker thread is abandoned, and the stream still ends with
``status=stopped``. A further signal goes to the handler that was there before.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Callable, Generator, Iterable
from typing import Any

__all__ = ["DEFAULT_SIGNALS", "StopRequest", "signal_handlers"]

DEFAULT_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGINT)


class StopRequest:
    """A stop request shared by the runs that track it (one runner's, or one web run's).

    :meth:`request` may be called from any thread or a signal handler (it only sets an event).
    Runs in progress stop at their next step boundary; if none is in progress, the next run stops
    at its first boundary. Once honoured and every run that saw it has returned, it is spent.
    :meth:`force` (on the event loop) cancels the runs in progress at once.
    """

    __slots__ = ("_active", "_event", "_forced", "_honoured", "_tasks")

    def __init__(self) -> None:
        self._event = threading.Event()
        self._active = 0
        self._honoured = False
        self._forced = False
        self._tasks: set[asyncio.Task[Any]] = set()

    def request(self) -> None:
        """Stop at the next step boundary (any thread, or a signal handler)."""
        self._event.set()

    def force(self) -> bool:
        """Stop now: cancel every run tracking this request (event loop thread only).

        Returns False when no run is in progress (nothing was cancelled).
        """
        self._event.set()
        tasks = [task for task in self._tasks if not task.done()]
        if tasks:
            self._forced = True
        for task in tasks:
            task.cancel()
        return bool(tasks)

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    @property
    def forced(self) -> bool:
        """Whether :meth:`force` cancelled the runs in progress (their status is ``stopped``)."""
        return self._forced

    def honour(self) -> bool:
        """True when the calling run must stop now (called at each of its step boundaries)."""
        if not self._event.is_set():
            return False
        self._honoured = True
        return True

    @contextlib.contextmanager
    def tracking(self) -> Generator[StopRequest]:
        """Count the current task as a run in progress; the last run out clears a request that
        was honoured (or forced)."""
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        self._active += 1
        try:
            yield self
        finally:
            self._active -= 1
            if task is not None:
                self._tasks.discard(task)
            if (self._honoured or self._forced) and self._active == 0:
                self._honoured = self._forced = False
                self._event.clear()


@contextlib.contextmanager
def signal_handlers(
    request: StopRequest,
    signals: Iterable[signal.Signals] = DEFAULT_SIGNALS,
    *,
    on_signal: Callable[[signal.Signals, bool], None] | None = None,
) -> Generator[None]:
    """Make ``signals`` stop the runs tracking ``request``; restore the old handlers on exit.

    The first signal requests a stop at the next step boundary; a second one while that stop is
    pending stops at once (:meth:`StopRequest.force`); one more (or a second signal with no run
    in progress) goes to the previous handler, raised again (the default SIGTERM ends the
    process; asyncio's SIGINT cancels the main task). ``on_signal(sig, at_once)`` is told about
    the first two (the command line prints what happens). Main thread, running loop only.
    """
    loop = asyncio.get_running_loop()
    previous: dict[signal.Signals, Any] = {}
    forced = False

    def handle(sig: signal.Signals) -> None:
        nonlocal forced
        if not request.requested:
            request.request()
            if on_signal is not None:
                on_signal(sig, False)
            return
        if not forced and request.force():
            forced = True
            if on_signal is not None:
                on_signal(sig, True)
            return
        _restore(loop, sig, previous.pop(sig, None))
        signal.raise_signal(sig)

    try:
        for sig in signals:
            previous[sig] = signal.getsignal(sig)
            loop.add_signal_handler(sig, handle, sig)
        yield
    finally:
        for sig, handler in previous.items():
            _restore(loop, sig, handler)


def _restore(loop: asyncio.AbstractEventLoop, sig: signal.Signals, handler: Any) -> None:
    loop.remove_signal_handler(sig)
    if handler is not None:  # None: the handler was not installed from Python; keep the default
        signal.signal(sig, handler)
