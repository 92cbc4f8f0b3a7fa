"""``App``: the compiled, immutable graph and the one-shot way to run it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .checkpoint.base import Checkpointer
from .context import as_clock
from .errors import ConfigError
from .events import streaming
from .events.bus import DEFAULT_CAPACITY
from .events.model import EventEmitter
from .events.sinks import EventSink
from .events.streaming import EventStream, StreamingRun
from .graph.spec import GraphSpec
from .runner import Executor, new_session_id, validate_session_id
from .scheduler import Cursor
from .state import VersionedState

__all__ = ["App", "coerce_state"]


def coerce_state(state: VersionedState | str) -> VersionedState:
    """Accept a VersionedState, or a str as the text of one user message."""
    if isinstance(state, VersionedState):
        return state
    if isinstance(state, str):  # pyright: ignore[reportUnnecessaryIsInstance]
        return VersionedState.new_with_user_message(state)
    raise TypeError(f"expected a VersionedState or a str, got {type(state).__name__}")


def check_has(value: object, method: str, what: str, expected: str) -> None:
    """Refuse a wrong object up front: it would otherwise fail mid-run, looking like an I/O error."""
    if value is not None and not callable(getattr(value, method, None)):
        raise ConfigError(f"{what} must be {expected}, got {type(value).__name__}")


class App:
    """A compiled graph. Immutable: build a new one with ``GraphBuilder`` to change it.

    Run it once with :meth:`invoke`, or with sessions, checkpoints and interrupts through
    ``wg.AppRunner``.
    """

    __slots__ = ("spec",)

    def __init__(self, spec: GraphSpec) -> None:
        self.spec = spec

    def __repr__(self) -> str:
        return f"App(nodes={list(self.spec.nodes)!r})"

    async def invoke(
        self,
        state: VersionedState | str,
        *,
        session_id: str | None = None,
        event_bus: EventEmitter | None = None,
        max_steps: int | None = None,
        checkpointer: Checkpointer | None = None,
        clock: object | None = None,
    ) -> VersionedState:
        """Run the graph from START to completion and return the final state.

        Quiet unless ``event_bus`` is given. ``max_steps`` overrides the graph's limit for this
        run; ``checkpointer`` (optional) receives a checkpoint after every superstep; ``clock``
        (a callable or an object with ``now()``) stamps events. A node failure raises
        ``NodeRunError`` after the failed step is checkpointed (SPEC §3.4).
        """
        executor = self.executor(
            state,
            session_id=session_id,
            event_bus=event_bus,
            checkpointer=checkpointer,
            clock=clock,
        )
        await executor.execute(max_steps=max_steps)
        return executor.state

    def executor(
        self,
        state: VersionedState | str,
        *,
        session_id: str | None = None,
        event_bus: EventEmitter | None = None,
        checkpointer: Checkpointer | None = None,
        clock: object | None = None,
    ) -> Executor:
        """A fresh run of this graph, not started (the seam streaming helpers build on)."""
        check_has(
            checkpointer, "save", "checkpointer", "a Checkpointer, e.g. InMemoryCheckpointer()"
        )
        check_has(event_bus, "publish", "event_bus", "an EventBus")
        return Executor(
            self.spec,
            session_id=validate_session_id(session_id) if session_id else new_session_id(),
            state=coerce_state(state),
            cursor=Cursor(),
            clock=as_clock(clock),
            emitter=event_bus,
            checkpointer=checkpointer,
        )

    # --- running with events (delegates to events/streaming.py) -------------------------------

    async def invoke_with_channel(
        self,
        state: VersionedState | str,
        *,
        session_id: str | None = None,
        lifecycle: bool = False,
        max_steps: int | None = None,
        checkpointer: Checkpointer | None = None,
        clock: object | None = None,
    ) -> tuple[VersionedState, EventStream]:
        """Run to completion; return the final state and a stream of every event of the run."""
        return await streaming.invoke_with_channel(
            self,
            state,
            session_id=session_id,
            lifecycle=lifecycle,
            max_steps=max_steps,
            checkpointer=checkpointer,
            clock=clock,
        )

    async def invoke_with_sinks(
        self,
        state: VersionedState | str,
        sinks: Iterable[EventSink],
        *,
        session_id: str | None = None,
        lifecycle: bool = False,
        max_steps: int | None = None,
        checkpointer: Checkpointer | None = None,
        clock: object | None = None,
    ) -> VersionedState:
        """Run to completion delivering every event to ``sinks`` (all delivered on return)."""
        return await streaming.invoke_with_sinks(
            self,
            state,
            sinks,
            session_id=session_id,
            lifecycle=lifecycle,
            max_steps=max_steps,
            checkpointer=checkpointer,
            clock=clock,
        )

    def invoke_streaming(
        self,
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
        """Start the run as a task; return ``(handle, events)`` at once (``async with`` works too).

        ``events`` is live and ends after the stream-end event; ``handle.cancel()`` ends it with
        ``status=cancelled``; ``await handle`` gives the final state.
        """
        return streaming.invoke_streaming(
            self,
            state,
            session_id=session_id,
            sinks=sinks,
            lifecycle=lifecycle,
            capacity=capacity,
            max_steps=max_steps,
            checkpointer=checkpointer,
            clock=clock,
        )

    # --- introspection (delegates to graph/render.py) ---------------------------------------

    def graph_metadata(self) -> dict[str, Any]:
        """Nodes, edges and a stable, order-insensitive ``graph_hash``."""
        from .graph import render

        return render.graph_metadata(self.spec)

    def to_mermaid(self) -> str:
        """The graph as a Mermaid flowchart."""
        from .graph import render

        return render.to_mermaid(self.spec)

    def to_dot(self) -> str:
        """The graph in Graphviz DOT."""
        from .graph import render

        return render.to_dot(self.spec)

    def topological_sort(self) -> list[str]:
        """Node ids in an order compatible with the unconditional edges."""
        from .graph import render

        return render.topological_sort(self.spec)
