"""The event bus: fans events out to sinks and subscribers without ever blocking the producer.

``publish`` is callable from any thread (nodes running in worker threads included) and costs a
few microseconds: it appends to one bounded buffer per sink and per subscriber and wakes their
consumer. A consumer that falls behind loses its oldest events (counted in ``metrics().dropped``
and logged); a sink that raises is recorded in ``sink_health()`` and ``diagnostics()``. Neither
ever affects the run or the other consumers.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

from ..errors import ConfigError
from ._outlets import LoopOutlet, ThreadOutlet
from .model import Event
from .sinks import EventSink

logger = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_CAPACITY = 1024
LIVE_VIEW_CAPACITY = 65536
"""The capacity of a bus feeding a person's live view (the command line's console, the web
page): large, because a streaming model emits many small events nobody should miss."""
_CLOSE_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True, kw_only=True)
class BusMetrics:
    """Counters of a bus: events published, events dropped by laggards, buffer capacity."""

    published: int
    dropped: int
    capacity: int
    sinks: int
    subscribers: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SinkDiagnostic:
    """One sink failure: which sink, the error, when, and how many failures it has had so far."""

    sink: str
    error: str
    when: datetime
    occurrence: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SinkHealth:
    """A sink's record: failures, the last one, and events it lost by falling behind."""

    sink: str
    error_count: int
    last_error: str | None
    last_error_at: datetime | None
    dropped: int = 0


class Subscription(Generic[T]):
    """A live async iterator over what a bus publishes from now on; bounded (drops oldest).

    It ends when the bus closes or when ``close()`` is called. Use it as ``async with`` to
    unsubscribe on exit.
    """

    def __init__(self, bus: EventBus, outlet: LoopOutlet[T]) -> None:
        self._bus = bus
        self._outlet = outlet
        self._pending: deque[T] = deque()

    @property
    def dropped(self) -> int:
        """Items this subscriber lost by falling behind."""
        return self._outlet.buffer.dropped

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> T:
        pending = self._pending
        if not pending:
            batch = await self._outlet.next_batch()
            if batch is None:
                raise StopAsyncIteration
            self._pending = pending = batch
        return pending.popleft()

    async def next_batch(self) -> deque[T] | None:
        """Everything buffered (waiting for at least one item); None once it has ended."""
        pending = self._pending
        if pending:
            self._pending = deque()
            return pending
        return await self._outlet.next_batch()

    def close(self) -> None:
        """Stop receiving; iteration ends after what is already buffered."""
        self._bus._detach(self._outlet)  # pyright: ignore[reportPrivateUsage]

    async def aclose(self) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


class _SinkState:
    """One sink's outlet and health record."""

    def __init__(self, sink: EventSink) -> None:
        self.sink = sink
        self.name = sink.name
        self.error_count = 0
        self.last_error: str | None = None
        self.last_error_at: datetime | None = None
        self.outlet: LoopOutlet[Event] | ThreadOutlet[Event] | None = None
        self.pump: asyncio.Task[None] | None = None
        self.busy = False
        self.idle_waiters: list[asyncio.Future[None]] = []

    @property
    def dropped(self) -> int:
        return 0 if self.outlet is None else self.outlet.buffer.dropped


class EventBus:
    """Fans events out to sinks and subscribers; implements ``EventEmitter``.

    ``capacity`` bounds every sink's and subscriber's buffer; ``lifecycle`` asks the runtime for
    framework events (run/step/node start and end, checkpoints). Use ``async with bus`` (or call
    ``aclose()``) to flush and release the sinks; ``await bus.drain()`` waits until every sink
    has handled every event published so far that it has not dropped.
    """

    def __init__(
        self,
        sinks: Iterable[EventSink] = (),
        *,
        capacity: int = DEFAULT_CAPACITY,
        lifecycle: bool = False,
    ) -> None:
        given: object = capacity
        if type(given) is not int or given < 1:
            raise ConfigError(f"EventBus capacity must be an int >= 1, got {given!r}")
        self.lifecycle = lifecycle
        self.capacity = capacity
        self._lock = threading.RLock()
        self._sinks: list[_SinkState] = []
        self._inline: tuple[_SinkState, ...] = ()
        self._outlets: tuple[LoopOutlet[Event] | ThreadOutlet[Event], ...] = ()
        self._diagnostic_outlets: tuple[LoopOutlet[SinkDiagnostic], ...] = ()
        self._published = 0
        self._dropped_by_detached = 0
        self._pumps_missing = False
        self._closed = False
        for sink in sinks:
            self.add_sink(sink)

    @classmethod
    def with_sinks(
        cls,
        sinks: Iterable[EventSink],
        *,
        capacity: int = DEFAULT_CAPACITY,
        lifecycle: bool = False,
    ) -> EventBus:
        """A bus delivering to ``sinks``."""
        return cls(sinks, capacity=capacity, lifecycle=lifecycle)

    @classmethod
    def with_sink(
        cls, sink: EventSink, *, capacity: int = DEFAULT_CAPACITY, lifecycle: bool = False
    ) -> EventBus:
        """A bus delivering to one sink."""
        return cls((sink,), capacity=capacity, lifecycle=lifecycle)

    # -- producing ---------------------------------------------------------------------------

    def publish(self, event: Event) -> None:
        """Hand ``event`` to every sink and subscriber. Never blocks, never raises."""
        with self._lock:
            self._published += 1
            for state in self._inline:
                try:
                    state.sink.handle(event)
                except Exception as exc:
                    self._record_failure(state, exc)
            for outlet in self._outlets:
                outlet.push_locked(event)
        if self._pumps_missing:
            self._start_pumps_if_on_loop()

    # -- sinks -------------------------------------------------------------------------------

    def add_sink(self, sink: EventSink) -> None:
        """Deliver every event published from now on to ``sink`` too."""
        _check_sink(sink)
        state = _SinkState(sink)
        dispatch = _dispatch_of(sink)
        label = f"sink {state.name!r}"
        with self._lock:
            self._sinks.append(state)
            if dispatch == "inline":
                self._inline = (*self._inline, state)
                return
            if dispatch == "thread":
                state.outlet = ThreadOutlet(
                    self._lock,
                    self.capacity,
                    label,
                    lambda batch: self._deliver_sync(state, batch),
                    on_close=getattr(sink, "close", None),
                )
            else:
                state.outlet = LoopOutlet(self._lock, self.capacity, label)
                self._pumps_missing = True
            self._outlets = (*self._outlets, state.outlet)
        self._start_pumps_if_on_loop()

    def _deliver_sync(self, state: _SinkState, batch: deque[Event]) -> None:
        handle = state.sink.handle
        for event in batch:
            try:
                handle(event)
            except Exception as exc:
                self._record_failure(state, exc)
        self._flush(state)

    def _flush(self, state: _SinkState) -> None:
        flush = getattr(state.sink, "flush", None)
        if flush is not None:
            try:
                flush()
            except Exception as exc:
                self._record_failure(state, exc)

    async def _pump(self, state: _SinkState, outlet: LoopOutlet[Event]) -> None:
        """Deliver to a loop or async sink, in batches, until the bus closes."""
        try:
            while True:
                batch = await outlet.next_batch()
                if batch is None:
                    return
                state.busy = True
                for event in batch:
                    try:
                        result = state.sink.handle(event)
                        if result is not None and inspect.isawaitable(result):
                            await result
                    except Exception as exc:
                        self._record_failure(state, exc)
                self._flush(state)
                state.busy = False
                self._notify_pump_idle(state, outlet)
        finally:
            state.busy = False
            if not self._closed:
                self._pumps_missing = True  # the loop went away; the next loop restarts it

    def _notify_pump_idle(self, state: _SinkState, outlet: LoopOutlet[Event]) -> None:
        if state.idle_waiters and not outlet.buffer.items:
            waiters, state.idle_waiters = state.idle_waiters, []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    def _start_pumps_if_on_loop(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # a worker thread: the loop side starts them
        self._pumps_missing = False
        for state in self._sinks:
            outlet = state.outlet
            if not isinstance(outlet, LoopOutlet):
                continue
            pump = state.pump
            if pump is None or pump.done() or pump.get_loop() is not loop:
                state.pump = loop.create_task(self._pump(state, outlet), name=f"sink {state.name}")

    def _record_failure(self, state: _SinkState, exc: BaseException) -> None:
        with self._lock:
            state.error_count += 1
            state.last_error = f"{type(exc).__name__}: {exc}"
            state.last_error_at = datetime.now(UTC)
            diagnostic = SinkDiagnostic(
                sink=state.name,
                error=state.last_error,
                when=state.last_error_at,
                occurrence=state.error_count,
            )
            for outlet in self._diagnostic_outlets:
                outlet.push_locked(diagnostic)
        if state.error_count == 1 or state.error_count % 1000 == 0:
            logger.warning(
                "sink %r failed (%d failure(s) so far): %s",
                state.name,
                state.error_count,
                state.last_error,
            )

    # -- subscribing -------------------------------------------------------------------------

    def subscribe(
        self, *, capacity: int | None = None, unbounded: bool = False
    ) -> Subscription[Event]:
        """A live async iterator over every event published from now on.

        Its buffer holds ``capacity`` events (default: the bus capacity), or everything when
        ``unbounded`` (for a stream that must keep a whole run).
        """
        bound = None if unbounded else (capacity or self.capacity)
        outlet: LoopOutlet[Event] = LoopOutlet(self._lock, bound, "subscriber")
        with self._lock:
            if self._closed:
                outlet.close_locked()
            else:
                self._outlets = (*self._outlets, outlet)
        return Subscription(self, outlet)

    def diagnostics(self) -> Subscription[SinkDiagnostic]:
        """A live async iterator over sink failures from now on (ends when the bus closes)."""
        outlet: LoopOutlet[SinkDiagnostic] = LoopOutlet(self._lock, self.capacity, "diagnostics")
        with self._lock:
            if self._closed:
                outlet.close_locked()
            else:
                self._diagnostic_outlets = (*self._diagnostic_outlets, outlet)
        return Subscription(self, outlet)

    def _detach(self, outlet: LoopOutlet[Any]) -> None:
        with self._lock:
            if outlet in self._outlets:
                self._outlets = tuple(o for o in self._outlets if o is not outlet)
                self._dropped_by_detached += outlet.buffer.dropped
            self._diagnostic_outlets = tuple(o for o in self._diagnostic_outlets if o is not outlet)
            outlet.close_locked()

    # -- observing ---------------------------------------------------------------------------

    def metrics(self) -> BusMetrics:
        """Published and dropped counts (all sinks and subscribers, past and present)."""
        with self._lock:
            dropped = self._dropped_by_detached + sum(o.buffer.dropped for o in self._outlets)
            subscribers = sum(
                1
                for o in self._outlets
                if isinstance(o, LoopOutlet) and not any(s.outlet is o for s in self._sinks)
            )
            return BusMetrics(
                published=self._published,
                dropped=dropped,
                capacity=self.capacity,
                sinks=len(self._sinks),
                subscribers=subscribers,
            )

    def sink_health(self) -> list[SinkHealth]:
        """Every sink's failure count, last error and drops, in the order they were added."""
        with self._lock:
            return [
                SinkHealth(
                    sink=s.name,
                    error_count=s.error_count,
                    last_error=s.last_error,
                    last_error_at=s.last_error_at,
                    dropped=s.dropped,
                )
                for s in self._sinks
            ]

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Bind the bus to the running loop now (otherwise it happens on first use)."""
        self._start_pumps_if_on_loop()

    async def drain(self) -> None:
        """Wait until every sink has handled everything published so far (that it kept).

        Subscribers read at their own pace and are not waited for. Bound the wait with
        ``asyncio.timeout`` if a sink may hang.
        """
        waits = self._idle_waits()
        if waits:
            await asyncio.wait(waits)

    def _idle_waits(self) -> list[asyncio.Future[None]]:
        """Futures resolved when each sink with work buffered or in hand becomes idle."""
        self._start_pumps_if_on_loop()
        loop = asyncio.get_running_loop()
        waits: list[asyncio.Future[None]] = []
        for state in list(self._sinks):
            outlet = state.outlet
            if isinstance(outlet, ThreadOutlet):
                waits.append(outlet.wait_idle())
            elif outlet is not None and (outlet.buffer.items or state.busy):
                waiter = loop.create_future()
                state.idle_waiters.append(waiter)
                waits.append(waiter)
        return waits

    async def aclose(self) -> None:
        """Deliver what is buffered, close the sinks (``close()``) and end every subscription.

        A sink still busy after a few seconds is abandoned (its thread is a daemon).
        """
        if self._closed:
            return
        waits = self._idle_waits()
        if waits:
            await asyncio.wait(waits, timeout=_CLOSE_TIMEOUT_S)
        with self._lock:
            self._closed = True
            outlets, self._outlets = self._outlets, ()
            diag_outlets, self._diagnostic_outlets = self._diagnostic_outlets, ()
            for outlet in outlets:
                if isinstance(outlet, LoopOutlet):
                    outlet.close_locked()
            for outlet in diag_outlets:
                outlet.close_locked()
        threads = [o.close() for o in outlets if isinstance(o, ThreadOutlet)]
        pumps = [s.pump for s in self._sinks if s.pump is not None and not s.pump.done()]
        if pumps:
            await asyncio.wait(pumps, timeout=_CLOSE_TIMEOUT_S)
        for state in self._sinks:
            if isinstance(state.outlet, LoopOutlet) or state.outlet is None:
                _close_sink(state.sink)
        for thread in threads:
            if thread is not None:
                await asyncio.to_thread(thread.join, _CLOSE_TIMEOUT_S)

    close = aclose

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def _check_sink(sink: object) -> None:
    """Refuse what is not a sink now, with the protocol in the message (not at the first event)."""
    if not isinstance(getattr(sink, "name", None), str) or not callable(
        getattr(sink, "handle", None)
    ):
        raise TypeError(
            f"a sink needs a str `name` and a `handle(event)` method (wg.EventSink), got {sink!r}"
        )


def _dispatch_of(sink: EventSink) -> str:
    if inspect.iscoroutinefunction(sink.handle):
        return "loop"  # awaited by the sink's pump on the event loop
    dispatch = getattr(sink, "dispatch", "thread")
    if dispatch not in ("inline", "loop", "thread"):
        raise ValueError(f"sink {sink.name!r}: dispatch must be inline, loop or thread")
    return dispatch


def _close_sink(sink: EventSink) -> None:
    close = getattr(sink, "close", None)
    if close is None:
        return
    try:
        close()
    except Exception:
        logger.exception("closing sink %r failed", sink.name)
