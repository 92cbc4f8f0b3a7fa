"""What a node gets besides the snapshot: who and where it is, how to emit events, the clock.

``EventStamper`` is the one place events get their ``seq``, ``session_id`` and timestamp, so the
sequence stays gap-free and ordered even when sync nodes emit from worker threads.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from .events.model import (
    LLM_CHUNK_SCOPE,
    LLM_ERROR_SCOPE,
    LLM_FINAL_SCOPE,
    STREAM_END_SCOPE,
    Event,
    EventEmitter,
    EventType,
)
from .state import freeze_json
from .state._frozen import NotJson, frozen_flat, is_flat, repair_text, storable_json

if TYPE_CHECKING:
    from .runtime.event_journal import EventJournal
    from .runtime.session import Session

__all__ = ["Clock", "EventStamper", "Interrupt", "NodeContext", "system_clock"]

Clock = Callable[[], datetime]
"""A clock: returns the current time (aware, UTC). ``wg.testing.FakeClock`` is one."""

_log = logging.getLogger(__name__)


def system_clock() -> datetime:
    """The real clock (UTC)."""
    return datetime.now(UTC)


def as_clock(clock: object | None) -> Clock:
    """Accept a callable clock or an object with a ``now()`` method; None is the system clock."""
    if clock is None:
        return system_clock
    now: object = getattr(clock, "now", None)
    if callable(now):
        return now  # pyright: ignore[reportReturnType]
    if callable(clock):
        return clock  # pyright: ignore[reportReturnType]
    raise TypeError(f"a clock must be callable or have a now() method, got {clock!r}")


def _dropped(event: Event) -> None:
    _log.warning("event emitter failed; event %s dropped", event.seq, exc_info=True)


class EventStamper:
    """Stamps and publishes one session's events: ``seq`` +1 per event, session id, timestamp.

    Thread-safe (sync nodes emit from worker threads); publishing never raises into the caller.
    A subgraph's events go through a :meth:`child` stamper: same sequence, same emitter, its
    ``namespace`` on every event.
    """

    __slots__ = (
        "_emitter",
        "_held",
        "_lock",
        "_root",
        "_seq",
        "clock",
        "journal",
        "lifecycle",
        "namespace",
        "session_id",
    )

    def __init__(
        self, emitter: EventEmitter, session_id: str, clock: Clock, next_seq: int = 0
    ) -> None:
        self._emitter = emitter
        self._lock = threading.Lock()
        self._root: EventStamper | None = None
        self._seq = next_seq
        # While not None: events are numbered and journaled, but reach the emitter only at
        # deliver_held() (a run's closing events, stored with its last step, go live once it
        # is committed).
        self._held: list[Event] | None = None
        self.session_id = session_id
        self.clock = clock
        self.namespace: str | None = None
        self.lifecycle: bool = bool(emitter.lifecycle)
        self.journal: EventJournal | None = None
        """Where every event of the session is also kept until it is stored (the root stamper's:
        a subgraph's events are stored with the session's step)."""

    def child(self, namespace: str) -> EventStamper:
        """A stamper for a subgraph's events: this session's sequence, tagged ``namespace``."""
        root = self._root or self
        child = EventStamper(root._emitter, root.session_id, root.clock)
        child._lock = root._lock
        child._root = root
        child.namespace = namespace
        child.lifecycle = root.lifecycle
        # One journal: each save (the subgraph's included) stores what the session emitted so far,
        # so a subgraph step's events are stored with that step, before the parent's step ends.
        child.journal = root.journal
        return child

    @property
    def next_seq(self) -> int:
        """The ``seq`` the next event gets (shared with the session's subgraphs)."""
        return (self._root or self)._seq

    def skip_to(self, seq: int) -> None:
        """Number the next events from ``seq`` on, if that is ahead (a subgraph resumed after a
        crash has numbered events past the parent's last checkpoint)."""
        root = self._root or self
        with root._lock:
            root._seq = max(root._seq, seq)

    def continue_at(self, seq: int) -> None:
        """Number the next events from ``seq`` on (a session loaded from storage continues right
        after its last stored event, below the seqs its checkpoint reserved when they were never
        used)."""
        root = self._root or self
        with root._lock:
            root._seq = seq

    @property
    def emitter(self) -> EventEmitter:
        """Where events go."""
        return (self._root or self)._emitter

    def set_emitter(self, emitter: EventEmitter) -> None:
        """Send the next events to ``emitter`` (a stream watching a session for a while)."""
        with self._lock:
            self._emitter = emitter
            self.lifecycle = bool(emitter.lifecycle)

    def publish(self, type_: str, scope: str, message: str, metadata: dict[str, Any]) -> Event:
        """Stamp and hand over one event (returned). Failures of the emitter are logged, never
        raised."""
        root = self._root or self
        # The lock keeps seq order equal to publish order, which consumers (SSE ids) rely on.
        with root._lock:
            event = Event(
                type=type_,
                scope=scope,
                message=message,
                timestamp=self.clock(),
                metadata=metadata,
                seq=root._seq,
                session_id=self.session_id,
                namespace=self.namespace,
            )
            root._seq += 1
            if root.journal is not None:  # stored with the step, whoever listens live
                root.journal.add(event)
            held = root._held
            if held is not None:
                held.append(event)
                return event
            try:
                root._emitter.publish(event)
            except Exception:  # an emitter must not break the run
                _dropped(event)
        return event

    def hold(self) -> None:
        """Keep the next events from the emitter until :meth:`deliver_held` (or
        :meth:`drop_held`); they are numbered and journaled as usual."""
        root = self._root or self
        with root._lock:
            if root._held is None:
                root._held = []

    @property
    def holding(self) -> bool:
        """Whether events are being held back (:meth:`hold`)."""
        return (self._root or self)._held is not None

    def deliver_held(self) -> None:
        """Hand the held events to the emitter, in order; later ones go straight to it again."""
        root = self._root or self
        with root._lock:
            held, root._held = root._held or [], None
            for event in held:
                try:
                    root._emitter.publish(event)
                except Exception:  # an emitter must not break the run
                    _dropped(event)

    def drop_held(self) -> None:
        """Forget the held events (never delivered: their step was not committed, and the seqs
        they had are numbered again from where the failed save left them)."""
        root = self._root or self
        with root._lock:
            root._held = None

    def lifecycle_event(self, scope: str, message: str, **metadata: Any) -> None:
        """A framework event; call only when ``self.lifecycle`` is true (callers check, for speed)."""
        self.publish(EventType.LIFECYCLE, scope, message, metadata)


class Interrupt(BaseException):
    """Raised by ``ctx.interrupt`` to pause the session; the runner catches it.

    A BaseException so that a node's ``except Exception`` cannot swallow the pause. From a
    subgraph, ``namespace`` is the path of the subgraph whose ``node`` asked (already paused and
    saved there); None when the node is the pausing session's own.
    """

    def __init__(self, node: str, value: Any, namespace: str | None = None) -> None:
        super().__init__(f"node {node!r} asked for input")
        self.node = node
        self.value = value
        self.namespace = namespace


_NO_RESUME: Final = object()


def _text(value: object) -> str:
    """An event's text field: ``str(value)`` with lone surrogates replaced (it must be stored)."""
    return value if type(value) is str and value.isascii() else repair_text(str(value))


def _check_scope(scope: str) -> None:
    # A node's event in the reserved scope would look like the end of the run to consumers that
    # only read the scope, so it is refused where it enters rather than filtered downstream.
    if scope == STREAM_END_SCOPE:
        raise ValueError(
            f"scope {STREAM_END_SCOPE!r} is reserved for the framework's stream-end event"
        )


class NodeContext:
    """Given to every node: its id, the superstep, the session, event emission and the clock.

    Emitting never blocks and never fails because nobody listens; it is safe from worker threads.
    """

    __slots__ = (
        "_emitted",
        "_resume",
        "_session",
        "_stamper",
        "context",
        "input",
        "node_id",
        "session_id",
        "step",
        "task",
    )

    def __init__(
        self,
        *,
        node_id: str,
        step: int,
        session_id: str,
        stamper: EventStamper,
        resume: object = _NO_RESUME,
        context: Any = None,
        session: Session | None = None,
        input: Any = None,
        task: int | None = None,
    ) -> None:
        self.node_id = node_id
        self._session = session
        self.input = input
        """A ``wg.Send`` task's own argument (frozen JSON); None for an ordinary task."""
        self.task = task
        """A ``wg.Send`` task's index in its superstep (also in its events' metadata); None for
        an ordinary task."""
        self.context = context
        """The run's context (``invoke(..., context=obj)``, ``AppRunner(..., context=obj)``):
        per-run dependencies, never checkpointed; None when none was given."""
        self.step = step
        self.session_id = session_id
        self._stamper = stamper
        self._resume = resume
        self._emitted: list[Event] | None = None

    def record_events(self) -> list[Event]:
        """From now on, keep the events this task emits in the returned list (the run loop saves
        them with the task's result: a step restored from saved results emits them again)."""
        self._emitted = []
        return self._emitted

    def _publish(self, type_: str, scope: str, message: str, metadata: dict[str, Any]) -> None:
        event = self._stamper.publish(type_, scope, message, self._meta(metadata))
        if self._emitted is not None:
            self._emitted.append(event)

    def __repr__(self) -> str:
        task = f", task={self.task}" if self.task is not None else ""
        return (
            f"NodeContext(node_id={self.node_id!r}, step={self.step}{task}, "
            f"session={self.session_id!r})"
        )

    def _meta(self, metadata: dict[str, Any]) -> dict[str, Any]:
        # The node's own values are checked; the framework's (an id, ints) need no second look.
        flat = is_flat(metadata) and self.node_id.isascii()
        metadata["node_id"] = self.node_id
        metadata["step"] = self.step
        if self.task is not None:
            metadata["task"] = self.task
        return frozen_flat(metadata) if flat else storable_json(metadata)

    def emit(self, scope: str, message: str, **metadata: Any) -> None:
        """Emit a ``node`` event (metadata gets ``node_id`` and ``step``).

        Metadata is frozen as JSON when emitted (later changes by the node are not seen). Emitting
        never fails and every event can be stored: a value that is not JSON (a set, an object,
        NaN, a non-str key, an int beyond 64 bits) becomes its ``str()``, a lone UTF-16 surrogate
        in any text becomes U+FFFD, and a container nested deeper than ``MAX_JSON_DEPTH`` becomes
        a short placeholder string.

        Raises ValueError for the reserved stream-end scope (only the framework ends a stream).
        """
        _check_scope(scope)
        # (_text inlined for the common case: an event per call, maybe many thousands a step)
        if not (type(scope) is str and scope.isascii()):
            scope = repair_text(str(scope))
        if not (type(message) is str and message.isascii()):
            message = repair_text(str(message))
        event = self._stamper.publish(EventType.NODE, scope, message, self._meta(metadata))
        if self._emitted is not None:  # (inlined: _publish costs a call per event)
            self._emitted.append(event)

    def emit_diagnostic(self, scope: str, message: str) -> None:
        """Emit a ``diagnostic`` event. Raises ValueError for the reserved stream-end scope."""
        _check_scope(scope)
        self._publish(EventType.DIAGNOSTIC, _text(scope), _text(message), {})

    def emit_llm_chunk(self, chunk: str, stream_id: str | None = None, **metadata: Any) -> None:
        """Emit one streamed LLM chunk (scope ``chunk``)."""
        self._llm(LLM_CHUNK_SCOPE, chunk, stream_id, metadata)

    def emit_llm_final(self, chunk: str, stream_id: str | None = None, **metadata: Any) -> None:
        """Emit the final LLM chunk (scope ``final``; never the stream-end scope)."""
        self._llm(LLM_FINAL_SCOPE, chunk, stream_id, metadata)

    def emit_llm_error(self, message: str, stream_id: str | None = None) -> None:
        """Emit an LLM streaming error (scope ``error``)."""
        self._llm(LLM_ERROR_SCOPE, message, stream_id, {})

    def _llm(self, scope: str, text: str, stream_id: str | None, metadata: dict[str, Any]) -> None:
        if stream_id is not None:
            metadata["stream_id"] = _text(stream_id)
        self._publish(EventType.LLM, scope, _text(text), metadata)

    def now(self) -> datetime:
        """The run's clock (injectable, e.g. ``wg.testing.FakeClock``)."""
        return self._stamper.clock()

    def interrupt(self, value: Any) -> Any:
        """Pause the session asking ``value`` (JSON); returns the answer once resumed.

        On the first run this raises a control-flow signal the runner turns into a pause; after
        ``runner.resume(session_id, answer)`` the node runs again and this returns ``answer``.
        """
        if self._resume is not _NO_RESUME:
            return self._resume
        try:
            frozen = freeze_json(value)
        except NotJson as exc:  # the question is checkpointed, so it must be JSON
            raise TypeError(f"ctx.interrupt value must be JSON: {exc}") from None
        raise Interrupt(self.node_id, frozen)


def running_session(ctx: NodeContext) -> Session | None:
    """The session running the node (what a subgraph node runs its child under), if known."""
    return ctx._session  # pyright: ignore[reportPrivateUsage]  (this module's own)


def resume_value(ctx: NodeContext) -> tuple[bool, Any]:
    """Whether the node is answering a ``ctx.interrupt``, and the answer."""
    answer = ctx._resume  # pyright: ignore[reportPrivateUsage]  (this module's own)
    return answer is not _NO_RESUME, (None if answer is _NO_RESUME else answer)


_new_object = object.__new__


def task_context(
    node_id: str,
    step: int,
    session_id: str,
    stamper: EventStamper,
    context: Any,
    session: Session | None,
) -> NodeContext:
    """A task's ``NodeContext`` without a resume value, built with plain slot stores: the
    keyword constructor costs a dict per call, and a step of a thousand tasks builds a thousand.
    Sets every slot ``NodeContext.__init__`` sets."""
    ctx: NodeContext = _new_object(NodeContext)
    ctx.node_id = node_id
    ctx._session = session  # pyright: ignore[reportPrivateUsage]
    ctx.input = None
    ctx.task = None
    ctx.context = context
    ctx.step = step
    ctx.session_id = session_id
    ctx._stamper = stamper  # pyright: ignore[reportPrivateUsage]
    ctx._resume = _NO_RESUME  # pyright: ignore[reportPrivateUsage]
    ctx._emitted = None  # pyright: ignore[reportPrivateUsage]
    return ctx
