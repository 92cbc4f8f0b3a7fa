"""Stream modes: one run seen as ``updates``, ``values``, ``messages`` and/or ``events`` chunks.

``app.stream(state, modes=...)`` and ``runner.stream(session_id, ...)`` return a
:class:`ModeStream`. The run loop hands it each committed step (what every node returned and the
merged state) through the step observer it calls, and every event through an emitter; both land
in one queue, so the chunks come in the order things happened. The stream ends when the run ends;
``.outcome`` then gives the final state or raises the run's error.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Final, Literal, Self, TypeAlias, cast, get_args

from ..errors import ConfigError
from .model import LLM_CHUNK_SCOPE, Event, EventEmitter, EventType

if TYPE_CHECKING:
    from ..partial import NodePartial
    from ..state import VersionedState

__all__ = ["MODES", "Mode", "ModeStream", "StepObserver", "check_modes", "partial_json"]

Mode: TypeAlias = Literal["updates", "values", "messages", "events"]
MODES: Final[tuple[Mode, ...]] = get_args(Mode)

StepObserver: TypeAlias = (
    "Callable[[int, Sequence[tuple[str, NodePartial | None]], VersionedState], None]"
)
"""Called by the run loop after each committed step: its number, each node's (or task's) id with
what it returned, and the merged state."""

Start: TypeAlias = "Callable[[EventEmitter, StepObserver], Awaitable[VersionedState]]"

_END: Final = object()


def check_modes(modes: str | Iterable[str]) -> tuple[Mode, ...]:
    """``modes`` as a tuple of known modes (one str is one mode); ConfigError names a bad one."""
    items = (modes,) if isinstance(modes, str) else tuple(modes)
    if not items:
        raise ConfigError(f"stream needs at least one mode of {list(MODES)}")
    for mode in items:
        if mode not in MODES:
            raise ConfigError(f"unknown stream mode {mode!r}: the modes are {list(MODES)}")
    return cast("tuple[Mode, ...]", tuple(dict.fromkeys(items)))


def partial_json(partial: NodePartial | None) -> dict[str, Any] | None:
    """What a node returned, as JSON (the ``updates`` mode's values); None for no update."""
    if partial is None:
        return None
    value: dict[str, Any] = {}
    if partial.messages:
        value["messages"] = [message.to_json_value() for message in partial.messages]
    if partial.extra:
        value["extra"] = dict(partial.extra)
    if partial.errors:
        value["errors"] = [error.to_json_value() for error in partial.errors]
    if partial.frontier is not None:
        value["frontier"] = {
            "kind": partial.frontier.kind,
            "targets": list(partial.frontier.targets),
        }
    if partial.sends:
        value["sends"] = [{"node": send.node, "input": send.input} for send in partial.sends]
    return value


class _Emitter:
    """Puts events in the stream's queue; safe from worker threads (sync nodes emit there)."""

    lifecycle: bool

    def __init__(self, stream: ModeStream, forward: EventEmitter | None) -> None:
        self._stream = stream
        self._forward = forward
        self.lifecycle = bool(forward.lifecycle) if forward is not None else False

    def publish(self, event: Event) -> None:
        if self._forward is not None:
            self._forward.publish(event)
        self._stream.put(("event", event))


class ModeStream:
    """``async for mode, chunk in stream`` (or ``async for chunk in stream`` with one mode).

    The run starts on the first iteration (or ``async with``) and runs as a task; leaving an
    ``async with`` block, or :meth:`aclose`, cancels an unfinished run.
    """

    def __init__(self, modes: tuple[Mode, ...], start: Start, forward: EventEmitter | None) -> None:
        self._modes = modes
        self._single = len(modes) == 1
        self._start = start
        self._forward = forward
        self._queue: asyncio.Queue[object] = asyncio.Queue()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: int | None = None
        self._task: asyncio.Task[VersionedState] | None = None
        self._ended = False
        self._ready: deque[tuple[Mode, Any]] = deque()

    # --- what the run hands over ---------------------------------------------------------

    def put(self, item: object) -> None:
        loop = self._loop
        if loop is None or threading.get_ident() == self._thread:
            self._queue.put_nowait(item)
        else:
            loop.call_soon_threadsafe(self._queue.put_nowait, item)

    def _on_step(
        self, step: int, results: Sequence[tuple[str, NodePartial | None]], state: VersionedState
    ) -> None:
        del step  # (the state's versions and the events say which step it was)
        self.put(("step", (tuple(results), state)))

    # --- running ---------------------------------------------------------------------------

    def _begin(self) -> None:
        if self._task is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        emitter = _Emitter(self, self._forward)
        self._task = asyncio.ensure_future(self._start(emitter, self._on_step))
        self._task.add_done_callback(lambda _task: self.put(_END))

    @property
    def outcome(self) -> VersionedState:
        """The final state once the run ended; the run's error is raised here."""
        if self._task is None or not self._task.done():
            raise RuntimeError("the run has not ended yet: iterate the stream to its end first")
        return self._task.result()

    async def aclose(self) -> None:
        """Cancel the run if it has not ended, and end the stream."""
        self._ended = True
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def __aenter__(self) -> Self:
        self._begin()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # --- iterating -------------------------------------------------------------------------

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Any:
        self._begin()
        while not self._ready:
            if self._ended:
                raise StopAsyncIteration
            item = await self._queue.get()
            if item is _END:
                self._ended = True
            else:
                self._ready.extend(self._chunks(cast("tuple[str, Any]", item)))
        mode, chunk = self._ready.popleft()
        return chunk if self._single else (mode, chunk)

    def _chunks(self, item: tuple[str, Any]) -> list[tuple[Mode, Any]]:
        kind, payload = item
        chunks: list[tuple[Mode, Any]] = []
        if kind == "event":
            event = cast(Event, payload)
            if "messages" in self._modes and _is_chunk(event):
                chunks.append(("messages", (event.message, dict(event.metadata))))
            if "events" in self._modes:
                chunks.append(("events", event))
            return chunks
        results, state = cast(
            "tuple[Sequence[tuple[str, NodePartial | None]], VersionedState]", payload
        )
        if "updates" in self._modes:
            chunks.append(("updates", {node: partial_json(p) for node, p in results}))
        if "values" in self._modes:
            chunks.append(("values", state.to_json_value()))
        return chunks


def _is_chunk(event: Event) -> bool:
    return event.type == EventType.LLM and event.scope == LLM_CHUNK_SCOPE
