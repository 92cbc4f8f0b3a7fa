"""Stop requests honoured at step boundaries, and the SIGTERM/SIGINT handlers that make them.

A stop never interrupts a superstep: every committed step is checkpointed before the next starts,
so stopping between steps loses nothing and a later run continues exactly there.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Generator, Iterable
from typing import Any

__all__ = ["DEFAULT_SIGNALS", "StopRequest", "signal_handlers"]

DEFAULT_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGINT)


class StopRequest:
    """A stop request shared by the runs of one runner.

    :meth:`request` may be called from any thread or a signal handler (it only sets an event).
    Runs in progress stop at their next step boundary; if none is in progress, the next run stops
    at its first boundary. Once honoured and every run that saw it has returned, it is spent.
    """

    __slots__ = ("_active", "_event", "_honoured")

    def __init__(self) -> None:
        self._event = threading.Event()
        self._active = 0
        self._honoured = False

    def request(self) -> None:
        self._event.set()

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    def honour(self) -> bool:
        """True when the calling run must stop now (called at each of its step boundaries)."""
        if not self._event.is_set():
            return False
        self._honoured = True
        return True

    @contextlib.contextmanager
    def tracking(self) -> Generator[StopRequest]:
        """Count a run as in progress; the last run out clears a request that was honoured."""
        self._active += 1
        try:
            yield self
        finally:
            self._active -= 1
            if self._honoured and self._active == 0:
                self._honoured = False
                self._event.clear()


@contextlib.contextmanager
def signal_handlers(
    request: StopRequest, signals: Iterable[signal.Signals] = DEFAULT_SIGNALS
) -> Generator[None]:
    """Make ``signals`` request a stop (handled in the event loop); restore the old handlers.

    Must be entered in the main thread with a running loop. A signal arriving while a stop is
    still pending gives up waiting: that signal's previous handler is restored and the signal
    raised again (the default SIGTERM ends the process; asyncio's SIGINT cancels the main task).
    """
    loop = asyncio.get_running_loop()
    previous: dict[signal.Signals, Any] = {}

    def handle(sig: signal.Signals) -> None:
        if request.requested:
            _restore(loop, sig, previous.pop(sig, None))
            signal.raise_signal(sig)
            return
        request.request()

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
