"""``AppRunner``: session lifecycle over a checkpointer: create/resume, step, interrupts, history.

One ``Executor`` per live session keeps its state, cursor and event sequence between calls; the
checkpointer is the source of truth whenever a session is not live in this runner. Whatever the
runner decides between steps (a static pause taken, a resume answer, an iterative input) is saved
in the cursor too, so a new process continues exactly where the last one stopped, crashed or was
asked to stop (``request_stop``, SIGTERM/SIGINT with ``handle_signals``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Collection, Iterable
from dataclasses import dataclass, replace
from typing import Any, cast

from ._session_steps import LiveSession, StepResult, cursor_of, run_session, step_session
from ._stop import DEFAULT_SIGNALS, StopRequest, signal_handlers
from .app import App, check_has, coerce_state
from .checkpoint._model import Checkpointer, SessionInfo, StepInfo
from .config import CheckpointerType, open_checkpointer
from .context import Clock, as_clock
from .errors import (
    ConfigError,
    RoutingError,
    SessionError,
    SessionGraphMismatch,
    SessionNotFound,
    StateError,
    WeavegraphError,
)
from .events.bus import EventBus
from .events.model import EventEmitter
from .partial import NodePartial
from .runner import Executor, PausedReason, StepReport, validate_session_id
from .scheduler import Cursor
from .state import VersionedState
from .types import END, START

__all__ = [
    "AppRunner",
    "PausedReason",
    "SessionInit",
    "StepReport",
    "StepResult",
]

_log = logging.getLogger(__name__)


_DRAIN_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionInit:
    """``create_session``'s answer: whether a checkpoint was resumed, and its step."""

    session_id: str
    resumed: bool
    step: int


class AppRunner:
    """Runs an ``App`` as durable sessions. Use as ``async with AppRunner(app, "sqlite") as r``.

    ``checkpointer`` is a ``CheckpointerType`` member, one of ``"memory"``, ``"sqlite"``,
    ``"postgres"`` (resolved per SPEC §4.3 by ``weavegraph.config``), or a ``Checkpointer``
    instance (which the runner does not close). With ``autosave=False`` nothing is written:
    sessions live in this runner only. ``stop_on_signals=True`` makes SIGTERM/SIGINT request a
    graceful stop while the runner is open (see :meth:`request_stop`, :meth:`handle_signals`).
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
    ) -> None:
        check_has(event_bus, "publish", "event_bus", "an EventBus")
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
        # Serializes loading and creating sessions, so one id never gets two executors.
        self._opening = asyncio.Lock()
        self._stop = StopRequest()
        self._stop_on_signals = stop_on_signals
        self._signals: contextlib.ExitStack | None = None

    @classmethod
    def with_bus(
        cls,
        app: App,
        bus: EventEmitter,
        checkpointer: CheckpointerType | str | Checkpointer = "memory",
    ) -> AppRunner:
        """The seed's ``AppRunner::with_bus``: an in-memory runner publishing to ``bus``."""
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
        """The seed's ``AppRunner::with_options_and_bus``."""
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
        stop is pending is passed to the previous handler. Main thread, running loop only."""
        return signal_handlers(self._stop, signals)

    # --- sessions --------------------------------------------------------------------------

    async def create_session(
        self, session_id: str, initial_state: VersionedState | str | None = None
    ) -> SessionInit:
        """Resume ``session_id`` from its latest checkpoint, or start it from ``initial_state``."""
        validate_session_id(session_id)
        async with self._opening:
            live = await self._load(session_id)
            if live is not None:
                step = live.executor.cursor.step
                _log.info("session %s resumed at step %d", session_id, step)
                return SessionInit(session_id=session_id, resumed=True, step=step)
            state = coerce_state(initial_state or VersionedState())
            live = LiveSession(self._executor(session_id, state))
            self._live[session_id] = live
            await live.lock.acquire()  # free: nobody else can hold it yet; steps wait for begin
        try:
            await live.executor.begin()
        except RoutingError:
            # Recorded like any failed step (SPEC §3.4): stepping the session again retries it.
            live.executor.close("error")
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
        async with live.lock:
            return await step_session(live, interrupt_before, interrupt_after, interrupt_each_step)

    async def run_until_complete(
        self,
        session_id: str,
        *,
        interrupt_before: Collection[str] = (),
        interrupt_after: Collection[str] = (),
        max_steps: int | None = None,
    ) -> VersionedState:
        """Run supersteps until the session completes, pauses or is stopped; return its state.

        A paused session's state is returned as is (its stream ends ``status=interrupted``).
        More than ``max_steps`` steps in this call (default: the graph's) raise
        StepLimitExceeded after the last step's checkpoint.
        """
        live = await self._require(session_id)
        async with live.lock:
            await run_session(live, interrupt_before, interrupt_after, self._stop, max_steps)
            return live.executor.state

    async def resume(self, session_id: str, value: Any) -> VersionedState:
        """Answer a node's ``ctx.interrupt``: re-run it (the call returns ``value``), continue."""
        live = await self._require(session_id)
        async with live.lock:
            executor = live.executor
            pending = executor.cursor.interrupt
            if pending is None:
                raise SessionError(f"session {session_id!r} is not waiting for input")
            resume = {**executor.cursor.resume, str(pending["node"]): value}
            executor.cursor = replace(executor.cursor, interrupt=None, resume=resume)
            await executor.resave()  # the answer survives a stop or a crash before the step
            await run_session(live, (), (), self._stop)
            return executor.state

    # --- iterative sessions ----------------------------------------------------------------

    async def create_iterative_session(
        self, session_id: str, initial_state: VersionedState | str | None, entry: str
    ) -> SessionInit:
        """A session driven input by input: each ``invoke_next`` runs from ``entry``."""
        validate_session_id(session_id)
        self._check_entry(entry)
        async with self._opening:
            live = await self._load(session_id)
            if live is not None:
                live.iterative = True
                step = live.executor.cursor.step
                _log.info("iterative session %s resumed at step %d", session_id, step)
                return SessionInit(session_id=session_id, resumed=True, step=step)
            executor = self._executor(session_id, coerce_state(initial_state or VersionedState()))
            await executor.save()
            self._live[session_id] = LiveSession(executor, iterative=True)
        _log.info("iterative session %s created (entry %r)", session_id, entry)
        return SessionInit(session_id=session_id, resumed=False, step=0)

    async def invoke_next(
        self, session_id: str, partial: NodePartial | None, entry: str
    ) -> VersionedState:
        """Apply ``partial`` (the new input), run from ``entry`` to completion; steps keep counting."""
        self._check_entry(entry)
        live = await self._require(session_id)
        async with live.lock:
            executor = live.executor
            executor.cursor = replace(executor.cursor, frontier=(entry,), interrupt=None)
            # Saved with the new frontier, so a stop or crash right after still runs this input.
            if partial is not None and not partial.is_empty():
                await executor.record_update(partial, source="input")
            else:
                await executor.resave()
            await run_session(live, (), (), self._stop)
            return executor.state

    async def finish_iterative_session(self, session_id: str) -> VersionedState:
        """End an iterative session: its final state (the checkpoints stay)."""
        live = await self._require(session_id)
        async with live.lock:
            self._live.pop(session_id, None)
            return live.executor.state

    # --- inspection and time travel --------------------------------------------------------

    async def get_state(self, session_id: str) -> VersionedState:
        """The session's current state."""
        return (await self._require(session_id)).executor.state

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
        _check_step(step)
        checkpoint = await self.checkpointer.load(session_id, step)
        if checkpoint is None:
            raise await self._missing_step(session_id, step)
        return checkpoint.state.with_schema(self.app.spec.state_schema)

    async def update_state(self, session_id: str, partial: NodePartial) -> StepReport:
        """Edit the state between steps; the edit is recorded as its own step."""
        if not isinstance(cast(object, partial), NodePartial):
            raise StateError(f"update_state takes a NodePartial, got {type(partial).__name__}")
        live = await self._require(session_id)
        async with live.lock:
            return await live.executor.record_update(partial, source="update_state")

    async def fork(self, session_id: str, step: int, new_session_id: str) -> SessionInit:
        """Start ``new_session_id`` from ``session_id`` as it was after ``step``."""
        validate_session_id(session_id)
        validate_session_id(new_session_id)
        _check_step(step)
        if await self._find(new_session_id) is not None:
            raise SessionError(f"session {new_session_id!r} already exists")
        checkpoint = await self.checkpointer.load(session_id, step)
        if checkpoint is None:
            raise await self._missing_step(session_id, step)
        if self.autosave:
            await self._copy_history(session_id, step, new_session_id)
        executor = self._executor(new_session_id, checkpoint.state, cursor_of(checkpoint))
        executor.cursor = replace(executor.cursor, next_seq=0)
        await executor.save(
            checkpoint.ran_nodes, checkpoint.skipped_nodes, checkpoint.updated_channels
        )
        self._live[new_session_id] = LiveSession(executor)
        return SessionInit(session_id=new_session_id, resumed=True, step=checkpoint.step)

    async def delete_session(self, session_id: str) -> bool:
        """Forget the session and delete its checkpoints; False if there was nothing."""
        validate_session_id(session_id)
        was_live = self._live.pop(session_id, None) is not None
        return await self.checkpointer.delete_session(session_id) or was_live

    async def list_sessions(self) -> list[SessionInfo]:
        """Every stored session."""
        return await self.checkpointer.list_sessions()

    # --- internals -------------------------------------------------------------------------

    async def _copy_history(self, session_id: str, step: int, new_session_id: str) -> None:
        """Give a fork the source's history before ``step`` (the fork's own step is saved after)."""
        for info in await self.checkpointer.history(session_id):
            if info.step >= step:
                continue
            earlier = await self.checkpointer.load(session_id, info.step)
            if earlier is not None:
                await self.checkpointer.save(replace(earlier, session_id=new_session_id))

    def _executor(
        self, session_id: str, state: VersionedState, cursor: Cursor | None = None
    ) -> Executor:
        return Executor(
            self.app.spec,
            session_id=session_id,
            state=state,
            cursor=cursor or Cursor(),
            clock=self._clock,
            emitter=self.event_bus,
            checkpointer=self.checkpointer if self.autosave else None,
            max_concurrency=self._max_concurrency,
        )

    async def _missing_step(self, session_id: str, step: int) -> WeavegraphError:
        """Why ``step`` cannot be loaded: no session, a step that never was, or one whose base
        checkpoint was deleted (history still lists it, but its state cannot be rebuilt)."""
        history = await self.checkpointer.history(session_id)
        if not history and session_id not in self._live:
            return SessionNotFound(session_id)
        if any(info.step == step for info in history):
            return SessionError(
                f"step {step} of session {session_id!r} cannot be rebuilt: the earlier checkpoint "
                "its state builds on was deleted",
                help="Pick a later step from the session's history, or fork from the latest.",
            )
        return SessionError(f"session {session_id!r} has no step {step}")

    def _check_entry(self, entry: str) -> None:
        if entry not in self.app.spec.nodes:
            raise SessionError(f"entry {entry!r} is not a node of the graph")

    async def _find(self, session_id: str) -> LiveSession | None:
        live = self._live.get(session_id)
        if live is not None:
            return live
        async with self._opening:
            return await self._load(session_id)

    async def _load(self, session_id: str) -> LiveSession | None:
        """The live session, else one loaded from its latest checkpoint (hold ``_opening``)."""
        live = self._live.get(session_id)
        if live is not None:
            return live
        checkpoint = await self.checkpointer.load_latest(session_id)
        if checkpoint is None:
            return None
        # Checked here, before anything runs: a missing node would otherwise be a raw KeyError
        # in the middle of the next step.
        nodes = self.app.spec.nodes
        missing = [n for n in checkpoint.frontier if n not in nodes and n not in (START, END)]
        if missing:
            raise SessionGraphMismatch(session_id, missing)
        if _log.isEnabledFor(logging.DEBUG):
            _log.debug(
                "session %s: checkpoint loaded at step %d (frontier %s)",
                session_id,
                checkpoint.step,
                list(checkpoint.frontier),
            )
        executor = self._executor(session_id, checkpoint.state, cursor_of(checkpoint))
        executor.last_record = (
            checkpoint.ran_nodes,
            checkpoint.skipped_nodes,
            checkpoint.updated_channels,
        )
        live = LiveSession(executor)
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


def _check_step(step: object) -> None:
    """A step number is an int >= 0 (SQLite would match "1" or 1.0 and hand the text back)."""
    if type(step) is not int or step < 0:
        raise SessionError(f"a step is an int >= 0, got {step!r}")
