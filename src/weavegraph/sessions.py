"""``AppRunner``: session lifecycle over a checkpointer: create/resume, step, interrupts, history.

One loop ``Session`` (``runtime/session.py``) per live session keeps its state, cursor and event
sequence between calls, and every call that runs steps goes through the run loop
(``runtime/loop.py``); the checkpointer is the source of truth whenever a session is not live in this runner. Whatever the
runner decides between steps (a static pause taken, a resume answer, an iterative input) is saved
in the cursor too, so a new process continues exactly where the last one stopped, crashed or was
asked to stop (``request_stop``, SIGTERM/SIGINT with ``handle_signals``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Collection, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, cast

from ._keyed_lock import KeyedLock
from ._time_travel import check_step, copy_history, missing_step
from .app import App, check_has, coerce_state
from .checkpoint import Checkpointer, SessionInfo, StepInfo
from .checkpoint.base import check_checkpointer
from .config import CheckpointerType, open_checkpointer
from .context import Clock, as_clock
from .errors import (
    ConfigError,
    RoutingError,
    SessionError,
    SessionGraphMismatch,
    SessionNotFound,
    StateError,
)
from .events import log as event_log
from .events.bus import EventBus
from .events.model import Event, EventEmitter
from .events.modes import ModeStream, StepObserver, check_modes
from .partial import NodePartial
from .runtime import loop, superstep
from .runtime.answers import prepare_resume
from .runtime.executor import TaskExecutor
from .runtime.loop import Interrupts, OnStep
from .runtime.plan import Cursor, cursor_of, missing_nodes, standing
from .runtime.session import Session
from .runtime.stop import DEFAULT_SIGNALS, StopRequest, signal_handlers
from .runtime.values import (
    NO_ANSWER,
    DriveResult,
    PausedReason,
    StepReport,
    StepResult,
    validate_session_id,
)
from .session_status import describe
from .state import VersionedState
from .status import RunStatus
from .types import START

__all__ = [
    "NO_ANSWER",
    "AppRunner",
    "DriveResult",
    "PausedReason",
    "SessionInit",
    "StepReport",
    "StepResult",
]

_log = logging.getLogger(__name__)


_DRAIN_TIMEOUT_S = 10.0


class LiveSession:
    """A session this runner is driving: the loop's session and runner-only flags."""

    __slots__ = ("iterative", "lock", "session")

    def __init__(self, session: Session, *, iterative: bool = False) -> None:
        self.session = session
        self.iterative = iterative
        self.lock = asyncio.Lock()


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionInit:
    """``create_session``'s answer: whether a checkpoint was resumed, and its step."""

    session_id: str
    resumed: bool
    step: int


class AppRunner:
    """Runs an ``App`` as durable sessions. Use as ``async with AppRunner(app, "sqlite") as r``.

    ``checkpointer`` is a ``CheckpointerType`` member, one of ``"memory"``, ``"sqlite"``,
    ``"postgres"`` (its URL resolved from the environment, ``.env`` and ``db_url`` by
    ``weavegraph.config``), or a ``Checkpointer``
    instance (which the runner does not close). With ``autosave=False`` nothing is written:
    sessions live in this runner only. ``stop_on_signals=True`` makes SIGTERM/SIGINT request a
    graceful stop while the runner is open (see :meth:`request_stop`, :meth:`handle_signals`).
    ``executor`` runs the node tasks of each step (default: this event loop; see
    ``weavegraph.executors``, e.g. ``RayTaskExecutor`` for very wide steps).
    """

    def __init__(
        self,
        app: App,
        checkpointer: CheckpointerType | str | Checkpointer,
        *,
        db_url: str | None = None,
        autosave: bool = True,
        event_bus: EventEmitter | None = None,
        start_listener: bool = True,
        max_concurrency: int | None = None,
        clock: object | None = None,
        stop_on_signals: bool = False,
        context: Any = None,
        executor: TaskExecutor | None = None,
    ) -> None:
        check_has(event_bus, "publish", "event_bus", "an EventBus")
        check_has(executor, "run_tasks", "executor", "a task executor (weavegraph.executors)")
        if not isinstance(checkpointer, (str, CheckpointerType)):
            check_checkpointer(checkpointer)
        if max_concurrency is not None and (
            type(cast(object, max_concurrency)) is not int or max_concurrency < 1
        ):
            raise ConfigError(
                f"max_concurrency must be None or an int >= 1, got {max_concurrency!r}"
            )
        self.app = app
        self.autosave = autosave
        self.event_bus = event_bus
        self._choice = checkpointer
        self._db_url = db_url
        self._start_listener = start_listener
        self._max_concurrency = max_concurrency
        self._clock: Clock = as_clock(clock)
        self._checkpointer: Checkpointer | None = None
        self._owns_checkpointer = False
        self._live: dict[str, LiveSession] = {}
        # Serializes loading and creating each session, so one id never gets two executors
        # (sessions with other ids open concurrently).
        self._opening = KeyedLock()
        self._stop = StopRequest()
        self._stop_on_signals = stop_on_signals
        self._signals: contextlib.ExitStack | None = None
        self.context = context
        self._executor = executor
        """Handed to every node of this runner's sessions as ``ctx.context`` (never saved)."""
        # How each session's last run in this runner ended (its status, until stored events say).
        self._ended: dict[str, RunStatus] = {}

    @classmethod
    def with_bus(
        cls,
        app: App,
        bus: EventEmitter,
        checkpointer: CheckpointerType | str | Checkpointer = "memory",
    ) -> AppRunner:
        """An in-memory runner publishing to ``bus`` (the Rust crate's ``AppRunner::with_bus``)."""
        return cls(app, checkpointer, event_bus=bus)

    @classmethod
    def with_options_and_bus(
        cls,
        app: App,
        checkpointer: CheckpointerType | str | Checkpointer,
        autosave: bool,
        bus: EventEmitter,
        start_listener: bool = True,
    ) -> AppRunner:
        """A runner with explicit autosave and bus options (Rust: ``with_options_and_bus``)."""
        return cls(
            app, checkpointer, autosave=autosave, event_bus=bus, start_listener=start_listener
        )

    # --- lifecycle -------------------------------------------------------------------------

    async def __aenter__(self) -> AppRunner:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def open(self) -> None:
        """Open the checkpointer and start the bus listener (``async with`` does this)."""
        if self._checkpointer is None:
            self._checkpointer, self._owns_checkpointer = await _open_checkpointer(
                self._choice, self._db_url
            )
        if self._start_listener and isinstance(self.event_bus, EventBus):
            await self.event_bus.start()
        if self._stop_on_signals and self._signals is None:
            self._signals = contextlib.ExitStack()
            self._signals.enter_context(self.handle_signals())

    async def close(self) -> None:
        """Let sinks catch up and close a checkpointer this runner opened."""
        if self._signals is not None:
            self._signals.close()
            self._signals = None
        if isinstance(self.event_bus, EventBus):
            # A hung sink must not hang the runner's exit; the bus keeps its own diagnostics.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_DRAIN_TIMEOUT_S):
                    await self.event_bus.drain()
        if self._checkpointer is not None and self._owns_checkpointer:
            await self._checkpointer.close()
        self._checkpointer = None
        self._live.clear()

    @property
    def checkpointer(self) -> Checkpointer:
        """The open checkpointer (RuntimeError before ``open()``)."""
        if self._checkpointer is None:
            raise RuntimeError("AppRunner is not open: use `async with AppRunner(...)`")
        return self._checkpointer

    # --- graceful stop ---------------------------------------------------------------------

    def request_stop(self) -> None:
        """Ask running sessions to stop at their next step boundary (safe from any thread or a
        signal handler). Each returns its state as of its last committed step and its stream ends
        with ``status=interrupted``; running the session again continues from there. With no run
        in progress, the next run stops before its first step. A request is spent once honoured."""
        self._stop.request()

    @property
    def stop_requested(self) -> bool:
        """Whether a stop was requested and is not yet spent (for loops over ``run_step``)."""
        return self._stop.requested

    def handle_signals(
        self, signals: Iterable[signal.Signals] = DEFAULT_SIGNALS
    ) -> contextlib.AbstractContextManager[None]:
        """``with runner.handle_signals(): ...``: SIGTERM/SIGINT request a stop (see
        :meth:`request_stop`); the previous handlers come back on exit. A second signal while the
        stop is pending stops at once: the runs in progress are cancelled, the step in flight is
        not committed (it runs again when the session continues) and their streams end with
        ``status=stopped``; one more goes to the previous handler. Main thread, running loop
        only."""
        return signal_handlers(self._stop, signals)

    # --- sessions --------------------------------------------------------------------------

    async def create_session(
        self, session_id: str, initial_state: VersionedState | str | None = None
    ) -> SessionInit:
        """Resume ``session_id`` from its latest checkpoint, or start it from ``initial_state``."""
        validate_session_id(session_id)
        async with self._opening(session_id):
            live = await self._load(session_id)
            if live is not None:
                step = live.session.cursor.step
                _log.info("session %s resumed at step %d", session_id, step)
                return SessionInit(session_id=session_id, resumed=True, step=step)
            state = coerce_state(initial_state or VersionedState())
            live = LiveSession(self._session(session_id, state))
            live.session.saved_step = -1  # a new session: refused if another process made it
            self._live[session_id] = live
            await live.lock.acquire()  # free: nobody else can hold it yet; steps wait for begin
        try:
            await superstep.begin(live.session)
        except RoutingError:
            # Recorded like any failed step: stepping the session again retries it.
            await loop.close_stream(live.session, RunStatus.ERROR)
            raise
        except BaseException:
            self._live.pop(session_id, None)  # nothing was recorded
            raise
        finally:
            live.lock.release()
        _log.info("session %s created", session_id)
        return SessionInit(session_id=session_id, resumed=False, step=0)

    async def run_step(
        self,
        session_id: str,
        *,
        interrupt_before: Collection[str] = (),
        interrupt_after: Collection[str] = (),
        interrupt_each_step: bool = False,
    ) -> StepResult:
        """Run one superstep (or report why not). Completion, pauses and errors end the stream."""
        live = await self._require(session_id)
        interrupts = Interrupts(
            before=interrupt_before, after=interrupt_after, each_step=interrupt_each_step
        )
        async with live.lock:
            report, paused = await loop.run_step(live.session, interrupts)
        if paused is not None:
            self._ended[session_id] = RunStatus.INTERRUPTED
        else:
            self._ended.pop(session_id, None)
        completed = paused is None and not live.session.cursor.frontier
        return StepResult(completed=completed, report=report, paused=paused)

    async def run_until_complete(
        self,
        session_id: str,
        *,
        interrupt_before: Collection[str] = (),
        interrupt_after: Collection[str] = (),
        max_steps: int | None = None,
    ) -> VersionedState:
        """Run supersteps until the session completes, pauses or is stopped; return its state.

        A paused session's state is returned as is (its stream ends ``status=interrupted``; a
        stopped one's with ``status=stopped``). More than ``max_steps`` steps in this call
        (default: the graph's) raise StepLimitExceeded after the last step's checkpoint.
        """
        live = await self._require(session_id)
        interrupts = Interrupts(before=interrupt_before, after=interrupt_after)
        async with live.lock:
            await self._drive(live, interrupts=interrupts, max_steps=max_steps)
            return live.session.state

    async def resume(
        self,
        session_id: str,
        value: Any,
        *,
        update: NodePartial | None = None,
        goto: Sequence[str] | None = None,
    ) -> VersionedState:
        """Answer a node's ``ctx.interrupt``: re-run it (the call returns ``value``), continue.

        ``update`` edits the state first (recorded as its own step); ``goto`` continues at those
        nodes instead of re-running the asking one. A session at a static pause continues with
        ``resume(session_id, None)``.
        """
        live = await self._require(session_id)
        async with live.lock:
            await prepare_resume(live.session, value, update=update, goto=goto)
            await self._drive(live)
            return live.session.state

    def stream(
        self,
        session_id: str,
        *,
        modes: str | Iterable[str] = "values",
        interrupt_before: Collection[str] = (),
        interrupt_after: Collection[str] = (),
        max_steps: int | None = None,
    ) -> ModeStream:
        """Run the session like :meth:`run_until_complete`, yielding ``(mode, chunk)`` as it
        goes (see ``App.stream`` for the modes); ``stream.outcome`` is then its state."""
        chosen = check_modes(modes)
        interrupts = Interrupts(before=interrupt_before, after=interrupt_after)

        async def start(emitter: EventEmitter, observer: StepObserver) -> VersionedState:
            live = await self._require(session_id)
            async with live.lock:
                with live.session.watched(emitter, observer):
                    await self._drive(live, interrupts=interrupts, max_steps=max_steps)
                return live.session.state

        return ModeStream(chosen, start, self.event_bus)

    async def events(
        self, session_id: str, after: int | None = None, follow: bool = False
    ) -> AsyncIterator[Event]:
        """The session's stored events in seq order (those with ``seq > after`` when given).

        Events are stored with the step that emitted them, whether or not an event bus was given
        (nothing is stored with ``autosave=False``). ``follow=True`` keeps streaming as new steps
        commit, from this runner or another process on the same database, and ends after the
        run's stream-end event (a run that died without one, say a killed process, ends with a
        made-up ``status=stopped`` stream end that has no ``seq``). SessionNotFound for an
        unknown session.
        """
        validate_session_id(session_id)
        if after is not None and (type(after) is not int or after < -1):
            raise SessionError(f"after is an event seq (an int >= -1), got {after!r}")
        if session_id not in self._live and await self.checkpointer.load_latest(session_id) is None:
            raise SessionNotFound(session_id)
        start = -1 if after is None else after
        if not follow:
            async for value in event_log.read(self.checkpointer, session_id, start):
                yield Event.from_json_value(value)
            return
        followed = event_log.follow(
            self.checkpointer, session_id, after=start, running=lambda: self._busy(session_id)
        )
        async for value, _stored in followed:
            yield Event.from_json_value(value)

    def _busy(self, session_id: str) -> bool:
        """Whether this runner is driving ``session_id`` right now."""
        live = self._live.get(session_id)
        return live is not None and live.lock.locked()

    async def session_info(self, session_id: str) -> SessionInfo:
        """The session as ``list_sessions`` shows it, with its ``status`` and pending
        ``interrupt``, read from storage (so other processes see the same)."""
        validate_session_id(session_id)
        for info in await self.checkpointer.list_sessions():
            if info.session_id == session_id:
                return await self._describe(info)
        raise SessionNotFound(session_id)

    async def drive(
        self,
        session_id: str,
        state: VersionedState | str | None = None,
        *,
        answer: Any = NO_ANSWER,
        update: NodePartial | None = None,
        goto: Sequence[str] | None = None,
        interrupt_before: Collection[str] = (),
        interrupt_after: Collection[str] = (),
        on_step: OnStep | None = None,
        stop: StopRequest | None = None,
        max_steps: int | None = None,
    ) -> DriveResult:
        """Create or resume ``session_id`` and run it until it completes, pauses or is stopped.

        What the command line and the web server call. With ``answer``, the session must be
        waiting in a node's ``ctx.interrupt``: that node runs again with ``answer`` as the call's
        value. ``update`` and ``goto`` continue a paused session as :meth:`resume` does (the
        edit recorded as its own step first; ``goto`` runs those nodes instead of the asking one).
        ``on_step`` is awaited after each step with its report. ``stop`` (default: this
        runner's, see :meth:`request_stop`) stops at the next step boundary; forced
        (``StopRequest.force``, a second signal) it stops at once without committing the step in
        flight. Either way the result says ``stopped`` and driving again continues there.

        Raises what the run raises (``NodeRunError``, ``RoutingError``, ``StepLimitExceeded``)
        after the failed step is checkpointed; the stream-end event is emitted in every case.
        """
        init = await self.create_session(session_id, state)
        live = await self._require(session_id)
        interrupts = Interrupts(before=interrupt_before, after=interrupt_after)
        async with live.lock:
            session = live.session
            if answer is not NO_ANSWER or update is not None or goto is not None:
                value = None if answer is NO_ANSWER else answer
                await prepare_resume(session, value, update=update, goto=goto)
            outcome = await self._drive(
                live, interrupts=interrupts, stop=stop, max_steps=max_steps, on_step=on_step
            )
        state_now, step_now = session.state, session.cursor.step
        if outcome.abandoned and self.autosave:  # memory may be ahead of the last checkpoint
            latest = await self.checkpointer.load_latest(session_id)
            if latest is not None:
                state_now, step_now = latest.state, latest.step
        return DriveResult(
            session_id=session_id,
            state=state_now,
            status=outcome.status,
            step=step_now,
            resumed=init.resumed,
            paused=outcome.paused,
        )

    async def enqueue(
        self,
        session_id: str,
        state: VersionedState | str | None = None,
        *,
        answer: Any = NO_ANSWER,
        idempotency_key: str | None = None,
        multitask: str = "reject",
    ) -> int:
        """Queue a run of ``session_id`` for ``weavegraph worker`` processes (PostgreSQL only):
        a new session starts from ``state``, an existing one continues; ``answer`` answers its
        pending ``ctx.interrupt``. ``idempotency_key`` makes a repeated request a no-op;
        ``multitask`` says what happens if the session is running (``reject`` raises
        ``SessionBusy``; ``enqueue``, ``interrupt``, ``rollback``). Returns the request's id."""
        from .queue import QueueClient

        return await QueueClient(self.checkpointer).enqueue(
            session_id,
            state,
            answer=answer,
            idempotency_key=idempotency_key,
            multitask=multitask,
        )

    # --- iterative sessions ----------------------------------------------------------------

    async def create_iterative_session(
        self, session_id: str, initial_state: VersionedState | str | None, entry: str
    ) -> SessionInit:
        """A session driven input by input: each ``invoke_next`` runs from ``entry``."""
        validate_session_id(session_id)
        self._check_entry(entry)
        async with self._opening(session_id):
            live = await self._load(session_id)
            if live is not None:
                live.iterative = True
                step = live.session.cursor.step
                _log.info("iterative session %s resumed at step %d", session_id, step)
                return SessionInit(session_id=session_id, resumed=True, step=step)
            session = self._session(session_id, coerce_state(initial_state or VersionedState()))
            session.saved_step = -1
            await session.save()
            self._live[session_id] = LiveSession(session, iterative=True)
        _log.info("iterative session %s created (entry %r)", session_id, entry)
        return SessionInit(session_id=session_id, resumed=False, step=0)

    async def invoke_next(
        self, session_id: str, partial: NodePartial | None, entry: str
    ) -> VersionedState:
        """Apply ``partial`` (the new input), run from ``entry`` (a node, or START: its edges and
        routers decide) to completion; steps keep counting. The invocation ends with an
        invocation-end diagnostic; the session's stream goes on until
        :meth:`finish_iterative_session`."""
        self._check_entry(entry)
        live = await self._require(session_id)
        async with live.lock:
            session = live.session
            session.cursor = replace(session.cursor, frontier=(entry,), interrupt=None)
            # Saved with the new frontier, so a stop or crash right after still runs this input.
            if partial is not None and not partial.is_empty():
                await loop.record_update(session, partial, source="input")
            else:
                await session.resave()
            await self._drive(live, invocation=True)
            return session.state

    async def finish_iterative_session(self, session_id: str) -> VersionedState:
        """End an iterative session: its final state (the checkpoints stay)."""
        live = await self._require(session_id)
        async with live.lock:
            self._live.pop(session_id, None)
            await loop.close_stream(live.session, standing(live.session.cursor))
            return live.session.state

    # --- inspection and time travel --------------------------------------------------------

    async def get_state(self, session_id: str) -> VersionedState:
        """The session's current state."""
        return (await self._require(session_id)).session.state

    async def history(self, session_id: str) -> list[StepInfo]:
        """The session's recorded steps, oldest first."""
        validate_session_id(session_id)
        steps = await self.checkpointer.history(session_id)
        if not steps and session_id not in self._live:
            raise SessionNotFound(session_id)
        return steps

    async def state_at(self, session_id: str, step: int) -> VersionedState:
        """The state as it was after ``step``."""
        validate_session_id(session_id)
        check_step(step)
        checkpoint = await self.checkpointer.load(session_id, step)
        if checkpoint is None:
            raise await missing_step(
                self.checkpointer, session_id, step, live=session_id in self._live
            )
        return checkpoint.state.with_schema(self.app.spec.state_schema)

    async def update_state(self, session_id: str, partial: NodePartial) -> StepReport:
        """Edit the state between steps; the edit is recorded as its own step."""
        if not isinstance(cast(object, partial), NodePartial):
            raise StateError(f"update_state takes a NodePartial, got {type(partial).__name__}")
        live = await self._require(session_id)
        async with live.lock:
            return await loop.record_update(live.session, partial, source="update_state")

    async def restore(
        self, session_id: str, step: int, *, state: VersionedState | None = None
    ) -> StepReport:
        """Put the session back as it was after ``step`` (its state, or ``state`` instead, what
        runs next and any pending question), recorded as a new step: its history stays
        append-only. What a queued request with ``multitask="rollback"`` does to the run it
        stops."""
        validate_session_id(session_id)
        check_step(step)
        live = await self._require(session_id)
        checkpoint = await self.checkpointer.load(session_id, step)
        if checkpoint is None:
            raise await missing_step(self.checkpointer, session_id, step, live=True)
        async with live.lock:
            return await loop.record_restore(live.session, checkpoint, state)

    async def fork(self, session_id: str, step: int, new_session_id: str) -> SessionInit:
        """Start ``new_session_id`` from ``session_id`` as it was after ``step``."""
        validate_session_id(session_id)
        validate_session_id(new_session_id)
        check_step(step)
        if await self._find(new_session_id) is not None:
            raise SessionError(f"session {new_session_id!r} already exists")
        checkpoint = await self.checkpointer.load(session_id, step)
        if checkpoint is None:
            raise await missing_step(
                self.checkpointer, session_id, step, live=session_id in self._live
            )
        copied = -1
        if self.autosave:
            copied = await copy_history(self.checkpointer, session_id, step, new_session_id)
        session = self._session(new_session_id, checkpoint.state, cursor_of(checkpoint))
        session.saved_step = copied
        session.cursor = replace(session.cursor, next_seq=0)
        await session.save(
            checkpoint.ran_nodes, checkpoint.skipped_nodes, checkpoint.updated_channels
        )
        session.saved_step = checkpoint.step  # from now on its saves are fenced
        self._live[new_session_id] = LiveSession(session)
        return SessionInit(session_id=new_session_id, resumed=True, step=checkpoint.step)

    async def delete_session(self, session_id: str) -> bool:
        """Forget the session and delete its checkpoints; False if there was nothing."""
        validate_session_id(session_id)
        was_live = self._live.pop(session_id, None) is not None
        return await self.checkpointer.delete_session(session_id) or was_live

    async def list_sessions(self) -> list[SessionInfo]:
        """Every stored session, with its ``status`` and pending ``interrupt``."""
        return [await self._describe(info) for info in await self.checkpointer.list_sessions()]

    async def _describe(self, info: SessionInfo) -> SessionInfo:
        running = [sid for sid in self._live if self._busy(sid)]
        return await describe(self.checkpointer, info, running=running, ended=self._ended)

    # --- internals -------------------------------------------------------------------------

    async def _drive(
        self,
        live: LiveSession,
        *,
        interrupts: Interrupts = loop.NO_INTERRUPTS,
        stop: StopRequest | None = None,
        max_steps: int | None = None,
        on_step: OnStep | None = None,
        invocation: bool = False,
    ) -> loop.DriveOutcome:
        """The loop with this runner's stop request (hold ``live.lock``). A session stopped at
        once is forgotten, so its next run reloads its last checkpoint."""
        session_id = live.session.session_id
        try:
            outcome = await loop.drive(
                live.session,
                interrupts=interrupts,
                stop=stop if stop is not None else self._stop,
                max_steps=max_steps,
                on_step=on_step,
                invocation=invocation,
            )
        except BaseException as exc:
            cancelled = isinstance(exc, asyncio.CancelledError)
            self._ended[session_id] = RunStatus.CANCELLED if cancelled else RunStatus.ERROR
            raise
        self._ended[session_id] = outcome.status
        if self._live.get(session_id) is live and (
            outcome.abandoned or self._done_with(live, outcome.status)
        ):
            del self._live[session_id]
            if not outcome.abandoned:  # (its stored stream end says how it ended)
                del self._ended[session_id]
        return outcome

    def _done_with(self, live: LiveSession, status: RunStatus) -> bool:
        """Whether a session that ran to ``status`` leaves memory: a completed one does once its
        last checkpoint holds all of it (it is loaded again if asked for), so a long-lived runner
        keeps only the sessions in progress."""
        return status is RunStatus.COMPLETED and self.autosave and not live.iterative

    def _session(
        self, session_id: str, state: VersionedState, cursor: Cursor | None = None
    ) -> Session:
        return Session(
            self.app.spec,
            session_id=session_id,
            state=state,
            cursor=cursor or Cursor(),
            clock=self._clock,
            emitter=self.event_bus,
            checkpointer=self.checkpointer if self.autosave else None,
            max_concurrency=self._max_concurrency,
            tasks=self._executor,
            context=self.context,
        )

    def _check_entry(self, entry: str) -> None:
        if entry != START and entry not in self.app.spec.nodes:
            raise SessionError(f"entry {entry!r} is not a node of the graph (nor START)")

    async def _find(self, session_id: str) -> LiveSession | None:
        live = self._live.get(session_id)
        if live is not None:
            return live
        async with self._opening(session_id):
            return await self._load(session_id)

    async def _load(self, session_id: str) -> LiveSession | None:
        """The live session, else one loaded from its latest checkpoint (hold its ``_opening``)."""
        live = self._live.get(session_id)
        if live is not None:
            return live
        checkpoint = await self.checkpointer.load_latest(session_id)
        if checkpoint is None:
            return None
        # Checked here, before anything runs: a missing node would otherwise be a raw KeyError
        # in the middle of the next step.
        missing = missing_nodes(self.app.spec, checkpoint.frontier)
        if missing:
            raise SessionGraphMismatch(session_id, missing)
        if _log.isEnabledFor(logging.DEBUG):
            _log.debug(
                "session %s: checkpoint loaded at step %d (frontier %s)",
                session_id,
                checkpoint.step,
                list(checkpoint.frontier),
            )
        session = self._session(session_id, checkpoint.state, cursor_of(checkpoint))
        session.saved_step = checkpoint.step
        session.last_record = (
            checkpoint.ran_nodes,
            checkpoint.skipped_nodes,
            checkpoint.updated_channels,
        )
        session.saved_step = checkpoint.step
        await session.continue_seq()
        live = LiveSession(session)
        self._live[session_id] = live
        return live

    async def _require(self, session_id: str) -> LiveSession:
        validate_session_id(session_id)
        live = await self._find(session_id)
        if live is None:
            raise SessionNotFound(session_id)
        return live


async def _open_checkpointer(
    choice: CheckpointerType | str | Checkpointer, db_url: str | None
) -> tuple[Checkpointer, bool]:
    """``config.open_checkpointer``'s answer and whether the runner owns (so closes) it."""
    return await open_checkpointer(choice, db_url), not isinstance(choice, Checkpointer)
