"""Event sinks: where a bus delivers events. A sink is a ``name`` and a ``handle(event)``.

How a sink is called is its ``dispatch`` (optional, see :data:`SinkDispatch`):

* ``"inline"`` — cheap, thread-safe and non-blocking: called inside ``publish`` itself, on the
  publishing thread (``MemorySink``: what it holds is complete as soon as the run returns);
* ``"loop"`` — cheap and non-blocking but not thread-safe: called on the event loop, in batches
  (``ChannelSink``);
* ``"thread"`` (the default for sync sinks) — may block: called on the sink's own worker thread,
  so a slow sink never stalls the event loop (``StdOutSink``, ``JsonLinesSink``, custom sinks).

A sink whose ``handle`` is a coroutine function is awaited on the event loop. Optional ``flush()``
is called after each delivered batch, optional ``close()`` when the bus closes.
"""

from __future__ import annotations

import asyncio
import inspect
import sys
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import IO, Any, Literal, Protocol, TypeAlias, runtime_checkable

from rich.console import Console
from rich.text import Text

from ..errors import ConfigError
from .model import LLM_CHUNK_SCOPE, Event, EventType, parse_stream_end

SinkDispatch: TypeAlias = Literal["inline", "loop", "thread"]


@runtime_checkable
class EventSink(Protocol):
    """Receives events from a bus. ``handle`` may be sync or async; it may raise (it is isolated)."""

    @property
    def name(self) -> str:
        """How diagnostics and ``bus.sink_health()`` name this sink."""
        ...

    def handle(self, event: Event) -> Awaitable[None] | None:
        """Take one event; called in publish order, never concurrently for one sink."""
        ...


class MemorySink:
    """Keeps every event in memory, in publish order: the sink for tests. Thread-safe."""

    dispatch: SinkDispatch = "inline"

    def __init__(self, name: str = "memory") -> None:
        self._name = name
        self._events: list[Event] = []
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self._name

    def handle(self, event: Event) -> None:
        with self._lock:
            self._events.append(event)

    def snapshot(self) -> list[Event]:
        """A copy of the events received so far."""
        with self._lock:
            return list(self._events)

    def clear(self) -> None:
        """Forget every event received so far."""
        with self._lock:
            self._events.clear()

    def __len__(self) -> int:
        return len(self._events)


class ChannelSink:
    """Forwards events to an ``asyncio.Queue`` or a non-blocking ``send(event)`` callable.

    A full bounded queue loses its oldest event to make room (counted in ``dropped``), so the run
    never waits for whoever reads the queue. An async callable is awaited.
    """

    def __init__(
        self,
        target: asyncio.Queue[Event] | Callable[[Event], object],
        *,
        name: str = "channel",
    ) -> None:
        self._name = name
        self._queue: asyncio.Queue[Event] | None = None
        self._send: Callable[[Event], object] | None = None
        if isinstance(target, asyncio.Queue):
            self._queue = target
        else:
            self._send = target
        self.dropped = 0
        """Events the queue lost because it was full."""

    dispatch: SinkDispatch = "loop"

    @property
    def name(self) -> str:
        return self._name

    def handle(self, event: Event) -> Awaitable[None] | None:
        queue = self._queue
        if queue is None:
            assert self._send is not None
            result = self._send(event)
            # An async send returns an awaitable: the bus awaits it, on the loop.
            return result if inspect.isawaitable(result) else None
        try:
            queue.put_nowait(event)
        except asyncio.QueueFull:
            queue.get_nowait()
            self.dropped += 1
            queue.put_nowait(event)
        return None


class JsonLinesSink:
    """Writes one normalized JSON event per line to a path (appended) or an open text file."""

    dispatch: SinkDispatch = "thread"

    def __init__(self, target: str | Path | IO[str], *, name: str = "jsonl") -> None:
        self._name = name
        self._path: Path | None = None
        self._file: IO[str] | None = None
        if isinstance(target, str | Path):
            self._path = Path(target)
        elif callable(getattr(target, "write", None)):
            self._file = target
        else:
            # Caught here: at the first event it would only show in sink_health, run after run.
            raise ConfigError(
                f"JsonLinesSink takes a path or an open text file, got {type(target).__name__}"
            )
        self._owns_file = self._path is not None

    @property
    def name(self) -> str:
        return self._name

    def handle(self, event: Event) -> None:
        if self._file is None:
            assert self._path is not None
            self._file = self._path.open("a", encoding="utf-8")
        self._file.write(event.to_json_string() + "\n")

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        """Flush; close the file if this sink opened it (a later event reopens it)."""
        if self._file is None:
            return
        self._file.flush()
        if self._owns_file:
            self._file.close()
            self._file = None


_TYPE_STYLES: dict[str, str] = {
    EventType.NODE: "cyan",
    EventType.DIAGNOSTIC: "yellow",
    EventType.LLM: "magenta",
    EventType.LIFECYCLE: "dim",
}


class StdOutSink:
    """Human-readable lines on stdout (or ``stream``); colour when it is a terminal."""

    dispatch: SinkDispatch = "thread"

    def __init__(
        self,
        stream: IO[str] | None = None,
        *,
        color: bool | None = None,
        timestamps: bool = True,
        name: str = "stdout",
    ) -> None:
        self._name = name
        self._timestamps = timestamps
        self._console = Console(
            file=stream if stream is not None else sys.stdout,
            force_terminal=color,
            no_color=color is False,
            highlight=False,
            soft_wrap=True,
        )

    @property
    def name(self) -> str:
        return self._name

    def handle(self, event: Event) -> None:
        self._console.print(format_event(event, timestamps=self._timestamps))

    def flush(self) -> None:
        self._console.file.flush()


def format_event(event: Event, *, timestamps: bool = True) -> Text:
    """One event as a styled line: ``12:00:01.250 node  fetch@2  progress  50% done``."""
    line = Text()
    if timestamps:
        line.append(event.timestamp.strftime("%H:%M:%S.%f")[:-3] + " ", style="dim")
    end = parse_stream_end(event)
    if end is not None:
        style = "bold green" if end.status == "completed" else "bold red"
        line.append(f"run {end.status.value}", style=style)
        line.append(f"  session={end.session_id} step={end.step}", style="dim")
        return line
    line.append(f"{event.type!s:<10}", style=_TYPE_STYLES.get(event.type, ""))
    where = _where(event.metadata)
    if where:
        line.append(f" {where}", style="bold")
    line.append(f"  {event.scope}", style="blue")
    if event.message:
        chunk = event.type == EventType.LLM and event.scope == LLM_CHUNK_SCOPE
        line.append(f"  {event.message!r}" if chunk else f"  {event.message}")
    return line


def _where(metadata: Any) -> str:
    node = metadata.get("node_id")
    step = metadata.get("step")
    if node is None:
        return "" if step is None else f"step {step}"
    return f"{node}@{step}" if step is not None else str(node)
