"""``App``: the compiled, immutable graph and the one-shot way to run it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .checkpoint import Checkpointer
from .checkpoint.base import check_checkpointer
from .context import as_clock
from .errors import ConfigError, Interrupted
from .events import streaming
from .events.bus import DEFAULT_CAPACITY
from .events.model import EventEmitter
from .events.modes import ModeStream, StepObserver, check_modes
from .events.sinks import EventSink
from .events.streaming import EventStream, StreamingRun
from .graph.spec import GraphSpec
from .runtime import loop
from .runtime.plan import Cursor
from .runtime.session import Session
from .runtime.values import new_session_id, validate_session_id
from .session_status import pending_from
from .state import VersionedState
from .status import RunStatus

__all__ = ["App", "coerce_state"]


def coerce_state(state: VersionedState | str) -> VersionedState:
    """Accept a VersionedState, or a str as the text of one user message."""
    if isinstance(state, VersionedState):
        return state
    if isinstance(state, str):  # pyright: ignore[reportUnnecessaryIsInstance]
        return VersionedState.new_with_user_message(state)
    raise TypeError(f"expected a VersionedState or a str, got {type(state).__name__}")


async def run_to_end(session: Session, max_steps: int | None) -> VersionedState:
    """A one-shot run to its end: the final state; ``Interrupted`` if a node asked for input."""
    status = await loop.execute(session, max_steps=max_steps)
    pending = session.cursor.interrupt
    if status is RunStatus.INTERRUPTED and pending is not None:
        raise Interrupted(session.session_id, pending_from(pending, session.cursor.step))
    return session.state


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
        context: Any = None,
    ) -> VersionedState:
        """Run the graph from START to completion and return the final state.

        Quiet unless ``event_bus`` is given. ``max_steps`` overrides the graph's limit for this
        run; ``checkpointer`` (optional) receives a checkpoint after every superstep; ``clock``
        (a callable or an object with ``now()``) stamps events; ``context`` reaches every node
        as ``ctx.context`` (never checkpointed). A node failure raises ``NodeRunError`` after the
        failed step is checkpointed; a node asking ``ctx.interrupt`` raises ``Interrupted``
        (there is nobody to answer: run such graphs with ``wg.AppRunner``).
        """
        session = self.prepare_run(
            state,
            session_id=session_id,
            event_bus=event_bus,
            checkpointer=checkpointer,
            clock=clock,
            context=context,
        )
        return await run_to_end(session, max_steps)

    def stream(
        self,
        state: VersionedState | str,
        *,
        modes: str | Iterable[str] = "values",
        session_id: str | None = None,
        event_bus: EventEmitter | None = None,
        max_steps: int | None = None,
        checkpointer: Checkpointer | None = None,
        clock: object | None = None,
        context: Any = None,
    ) -> ModeStream:
        """Run the graph, yielding ``(mode, chunk)`` as it goes (the chunks alone for one mode).

        ``updates``: ``{node: what it returned, as JSON}`` after each step; ``values``: the state
        JSON after each step; ``messages``: LLM chunks as ``(text, metadata)``; ``events``:
        every event. Afterwards ``stream.outcome`` is the final state or raises the run's error.
        The other options are :meth:`invoke`'s.
        """
        chosen = check_modes(modes)
        start_state = coerce_state(state)
        check_has(event_bus, "publish", "event_bus", "an EventBus")

        async def start(emitter: EventEmitter, observer: StepObserver) -> VersionedState:
            session = self.prepare_run(
                start_state,
                session_id=session_id,
                event_bus=emitter,
                checkpointer=checkpointer,
                clock=clock,
                context=context,
            )
            session.observer = observer
            return await run_to_end(session, max_steps)

        return ModeStream(chosen, start, event_bus)

    def prepare_run(
        self,
        state: VersionedState | str,
        *,
        session_id: str | None = None,
        event_bus: EventEmitter | None = None,
        checkpointer: Checkpointer | None = None,
        clock: object | None = None,
        context: Any = None,
    ) -> Session:
        """A fresh run of this graph, not started (the seam streaming helpers build on)."""
        check_has(
            checkpointer, "save", "checkpointer", "a Checkpointer, e.g. InMemoryCheckpointer()"
        )
        if checkpointer is not None:
            check_checkpointer(checkpointer)
        check_has(event_bus, "publish", "event_bus", "an EventBus")
        return Session(
            self.spec,
            session_id=validate_session_id(session_id) if session_id else new_session_id(),
            state=coerce_state(state),
            cursor=Cursor(),
            clock=as_clock(clock),
            emitter=event_bus,
            checkpointer=checkpointer,
            context=context,
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
