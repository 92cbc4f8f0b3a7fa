"""Running an App with its events: a channel, sinks, or a live stream.

Each call gets its own ``EventBus``, so concurrent runs never see each other's events.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Generator, Iterable
from typing import TYPE_CHECKING, Any, NamedTuple, Self

from ..state import VersionedState
from .bus import DEFAULT_CAPACITY, EventBus, Subscription
from .model import STREAM_END_SCOPE, Event
from .sinks import EventSink

if TYPE_CHECKING:
    from ..app import App
    from ..checkpoint import Checkpointer
    from ..runtime.session import Session

__all__ = [
    "EventStream",
    "RunHandle",
    "StreamingRun",
    "invoke_streaming",
    "invoke_with_channel",
    "invoke_with_sinks",
]


class EventStream:
    """One run's events as an async iterator; it ends after the run's stream-end event."""

    def __init__(
        self, subscription: Subscription[Event], on_end: Callable[[], None] | None = None
    ) -> None:
        self._subscription = subscription
        self._ended = False
        self._on_end = on_end
        self._pending: deque[Event] = deque()

    @property
    def dropped(self) -> int:
        """Events skipped because this stream's reader fell behind."""
        return self._subscription.dropped

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Event:
        # The hot path of every streamed event: one coroutine, a deque pop and a str compare.
        pending = self._pending
        if not pending:
            if self._ended:
                raise StopAsyncIteration
            batch = await self._subscription.next_batch()
            if batch is None:
                self._ended = True
                raise StopAsyncIteration
            self._pending = pending = batch
        event = pending.popleft()
        if event.scope == STREAM_END_SCOPE and event.is_stream_end:
            self._ended = True
            pending.clear()
            self._subscription.close()
            if self._on_end is not None:
                self._on_end()
        return event

    async def collect(self) -> list[Event]:
        """Every remaining event, up to and including the stream end."""
        return [event async for event in self]

    def close(self) -> None:
        """Stop listening; iteration ends after what is already buffered."""
        self._subscription.close()


class RunHandle:
    """A run started by ``invoke_streaming``: ``await handle`` waits for the final state;
    ``handle.result()`` returns it once the run is done (like ``asyncio.Task.result()``)."""

    def __init__(
        self,
        task: asyncio.Task[VersionedState],
        session_id: str,
        ended: Callable[[], bool] = lambda: False,
    ) -> None:
        self._task = task
        self.session_id = session_id
        self._cleanup: asyncio.Task[None] | None = None
        self._ended = ended

    def __await__(self) -> Generator[Any, None, VersionedState]:
        return self._task.__await__()

    def result(self) -> VersionedState:
        """The final state of a finished run, like ``asyncio.Task.result()``.

        Re-raises what the run raised (``CancelledError`` if it was cancelled); raises
        ``asyncio.InvalidStateError`` while the run is still going (``await handle`` waits).
        """
        if not self._task.done():
            raise asyncio.InvalidStateError(
                f"run {self.session_id!r} is not finished yet; `await handle` waits for its state"
            )
        return self._task.result()

    def _stream_ended(self) -> None:
        """The events' reader saw the stream end (and so how the run ended): a failure is then
        reported, so asyncio must not also log "Task exception was never retrieved" for it.
        ``await handle`` still raises it."""
        self._task.add_done_callback(_mark_retrieved)

    def cancel(self) -> bool:
        """Cancel the run; its event stream ends with ``status=cancelled``."""
        return self._task.cancel()

    def done(self) -> bool:
        """Whether the run has finished (completed, failed or cancelled)."""
        return self._task.done()

    def cancelled(self) -> bool:
        """Whether the run was cancelled."""
        return self._task.cancelled()

    async def wait(self) -> None:
        """Wait until the run is over, whatever the outcome, without raising."""
        await asyncio.wait((self._task,))
        if self._cleanup is not None:  # a run cancelled before it started: its bus is closing
            await asyncio.wait((self._cleanup,))


def _mark_retrieved(task: asyncio.Task[VersionedState]) -> None:
    if not task.cancelled():
        task.exception()  # marks it retrieved; the task keeps it for whoever awaits


class StreamingRun(NamedTuple):
    """``(handle, events)``; also ``async with``, which cancels an unfinished run on exit."""

    handle: RunHandle
    events: EventStream

    async def __aenter__(self) -> StreamingRun:
        return self

    async def __aexit__(self, *exc: object) -> None:
        # A run whose stream already ended is only closing its bus: let it finish, so that
        # `await handle` afterwards gives its state rather than CancelledError.
        if not self.handle.done() and not self.handle._ended():  # pyright: ignore[reportPrivateUsage]
            self.handle.cancel()
        await self.handle.wait()
        self.events.close()


def invoke_streaming(
    app: App,
    state: VersionedState | str,
    *,
    session_id: str | None = None,
    sinks: Iterable[EventSink] = (),
    lifecycle: bool = False,
    capacity: int | None = DEFAULT_CAPACITY,
    max_steps: int | None = None,
    checkpointer: Checkpointer | None = None,
    clock: object | None = None,
) -> StreamingRun:
    """Start the run as a task and return at once with ``(handle, events)``.

    ``events`` is live and ends after the stream-end event; a reader that falls more than
    ``capacity`` events behind skips the oldest (``capacity=None``: keep everything).
    """
    bus = EventBus.with_sinks(sinks, capacity=capacity or DEFAULT_CAPACITY, lifecycle=lifecycle)
    subscription = bus.subscribe(capacity=capacity, unbounded=capacity is None)
    session = app.prepare_run(
        state, session_id=session_id, event_bus=bus, checkpointer=checkpointer, clock=clock
    )
    task = asyncio.get_running_loop().create_task(
        _drive(session, bus, max_steps), name=f"weavegraph run {session.session_id}"
    )
    handle = RunHandle(task, session.session_id, ended=lambda: session.stream_ended)
    events = EventStream(subscription, on_end=handle._stream_ended)  # pyright: ignore[reportPrivateUsage]
    # A task cancelled before it ever ran skips _drive: end the stream and close the bus here.
    task.add_done_callback(lambda t: _ensure_stream_end(t, session, bus, handle))
    return StreamingRun(handle, events)


async def _drive(session: Session, bus: EventBus, max_steps: int | None) -> VersionedState:
    from ..runtime import loop

    try:
        await loop.execute(session, max_steps=max_steps)  # ends the stream, whatever happens
        return session.state
    finally:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            await asyncio.shield(bus.aclose())  # a further cancel must not cut the closing
        else:
            await bus.aclose()


def _ensure_stream_end(
    task: asyncio.Task[VersionedState],
    session: Session,
    bus: EventBus,
    handle: RunHandle,
) -> None:
    if session.stream_ended:
        return
    from ..runtime import loop
    from ..status import RunStatus

    loop.end_stream(session, RunStatus.CANCELLED if task.cancelled() else RunStatus.ERROR)
    # _drive never ran, so nothing else closes the bus: flush and release its sinks and threads.
    handle._cleanup = task.get_loop().create_task(bus.aclose())  # pyright: ignore[reportPrivateUsage]


async def invoke_with_channel(
    app: App,
    state: VersionedState | str,
    *,
    session_id: str | None = None,
    lifecycle: bool = False,
    max_steps: int | None = None,
    checkpointer: Checkpointer | None = None,
    clock: object | None = None,
) -> tuple[VersionedState, EventStream]:
    """Run to completion; return the final state and a stream holding every event of the run."""
    bus = EventBus(lifecycle=lifecycle)
    events = EventStream(bus.subscribe(unbounded=True))
    try:
        final = await app.invoke(
            state,
            session_id=session_id,
            event_bus=bus,
            max_steps=max_steps,
            checkpointer=checkpointer,
            clock=clock,
        )
    finally:
        await bus.aclose()
    return final, events


async def invoke_with_sinks(
    app: App,
    state: VersionedState | str,
    sinks: Iterable[EventSink],
    *,
    session_id: str | None = None,
    lifecycle: bool = False,
    capacity: int = DEFAULT_CAPACITY,
    max_steps: int | None = None,
    checkpointer: Checkpointer | None = None,
    clock: object | None = None,
) -> VersionedState:
    """Run to completion delivering every event to ``sinks``; they have all of them on return."""
    bus = EventBus.with_sinks(sinks, capacity=capacity, lifecycle=lifecycle)
    try:
        return await app.invoke(
            state,
            session_id=session_id,
            event_bus=bus,
            max_steps=max_steps,
            checkpointer=checkpointer,
            clock=clock,
        )
    finally:
        await bus.aclose()
