"""``AppRunner``: session lifecycle over a checkpointer: create/resume, step, interrupts, history.

One ``Executor`` per live session keeps its state, cursor and event sequence between calls; the
checkpointer is the source of truth whenever a session is not live in this runner.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
from collections.abc import Collection
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from .app import App, coerce_state
from .checkpoint._model import Checkpoint, Checkpointer, SessionInfo, StepInfo
from .checkpoint.memory import InMemoryCheckpointer
from .context import Clock, as_clock
from .errors import ConfigError, SessionError, SessionNotFound, StepLimitExceeded
from .events.bus import EventBus
from .events.model import EventEmitter
from .partial import NodePartial
from .runner import Executor, PausedReason, RunStatus, StepReport, validate_session_id
from .scheduler import Cursor, plan_step
from .state import VersionedState

__all__ = [
    "AppRunner",
    "CheckpointerKind",
    "PausedReason",
    "SessionInit",
    "StepReport",
    "StepResult",
]


_DRAIN_TIMEOUT_S = 10.0


class CheckpointerKind(StrEnum):
    """Names of the built-in backends (``wg.CheckpointerType`` members map onto these)."""

    MEMORY = "memory"
    SQLITE = "sqlite"
    POSTGRES = "postgres"


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionInit:
    """``create_session``'s answer: whether a checkpoint was resumed, and its step."""

    session_id: str
    resumed: bool
    step: int


@dataclass(frozen=True, slots=True, kw_only=True)
class StepResult:
    """``run_step``'s answer: ``completed`` once the frontier is empty; ``report`` of the step that
    ran (if one did); ``paused`` when the session stopped for an interrupt."""

    completed: bool
    report: StepReport | None = None
    paused: PausedReason | None = None


class _Live:
    """A session this runner is driving: its executor and runner-only flags."""

    __slots__ = ("executor", "iterative", "lock", "passed_before")

    def __init__(self, executor: Executor, *, iterative: bool = False) -> None:
        self.executor = executor
        self.iterative = iterative
        self.lock = asyncio.Lock()
        self.passed_before = -1  # the step whose interrupt_before pause was already taken


class AppRunner:
    """Runs an ``App`` as durable sessions. Use as ``async with AppRunner(app, "sqlite") as r``.

    ``checkpointer`` is a ``CheckpointerType`` member, one of ``"memory"``, ``"sqlite"``,
    ``"postgres"``, or a ``Checkpointer`` instance (which the runner does not close).
    With ``autosave=False`` nothing is written: sessions live in this runner only.
    """

    def __init__(
        self,
        app: App,
        checkpointer: object,
        *,
        db_url: str | None = None,
        autosave: bool = True,
        event_bus: EventEmitter | None = None,
        start_listener: bool = True,
        max_concurrency: int | None = None,
        clock: object | None = None,
    ) -> None:
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
        self._live: dict[str, _Live] = {}

    @classmethod
    def with_bus(cls, app: App, bus: EventEmitter, checkpointer: object = "memory") -> AppRunner:
        """The seed's ``AppRunner::with_bus``: an in-memory runner publishing to ``bus``."""
        return cls(app, checkpointer, event_bus=bus)

    @classmethod
    def with_options_and_bus(
        cls,
        app: App,
        checkpointer: object,
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

    async def close(self) -> None:
        """Let sinks catch up and close a checkpointer this runner opened."""
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

    # --- sessions --------------------------------------------------------------------------

    async def create_session(
        self, session_id: str, initial_state: VersionedState | str | None = None
    ) -> SessionInit:
        """Resume ``session_id`` from its latest checkpoint, or start it from ``initial_state``."""
        validate_session_id(session_id)
        live = await self._find(session_id)
        if live is not None:
            return SessionInit(session_id=session_id, resumed=True, step=live.executor.cursor.step)
        executor = self._executor(session_id, coerce_state(initial_state or VersionedState()))
        await executor.begin()
        self._live[session_id] = _Live(executor)
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
            return await self._step(live, interrupt_before, interrupt_after, interrupt_each_step)

    async def run_until_complete(
        self,
        session_id: str,
        *,
        interrupt_before: Collection[str] = (),
        interrupt_after: Collection[str] = (),
    ) -> VersionedState:
        """Run supersteps until the session completes or pauses; return its state."""
        live = await self._require(session_id)
        async with live.lock:
            await self._run(live, interrupt_before, interrupt_after)
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
            await self._run(live, (), ())
            return executor.state

    # --- iterative sessions ----------------------------------------------------------------

    async def create_iterative_session(
        self, session_id: str, initial_state: VersionedState | str | None, entry: str
    ) -> SessionInit:
        """A session driven input by input: each ``invoke_next`` runs from ``entry``."""
        validate_session_id(session_id)
        self._check_entry(entry)
        live = await self._find(session_id)
        if live is not None:
            live.iterative = True
            return SessionInit(session_id=session_id, resumed=True, step=live.executor.cursor.step)
        executor = self._executor(session_id, coerce_state(initial_state or VersionedState()))
        await executor.save()
        self._live[session_id] = _Live(executor, iterative=True)
        return SessionInit(session_id=session_id, resumed=False, step=0)

    async def invoke_next(
        self, session_id: str, partial: NodePartial | None, entry: str
    ) -> VersionedState:
        """Apply ``partial`` (the new input), run from ``entry`` to completion; steps keep counting."""
        self._check_entry(entry)
        live = await self._require(session_id)
        async with live.lock:
            executor = live.executor
            if partial is not None and not partial.is_empty():
                await executor.record_update(partial, source="input")
            executor.cursor = replace(executor.cursor, frontier=(entry,), interrupt=None)
            await self._run(live, (), ())
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
        checkpoint = await self.checkpointer.load(session_id, step)
        if checkpoint is None:
            if await self.checkpointer.load_latest(session_id) is None:
                raise SessionNotFound(session_id)
            raise SessionError(f"session {session_id!r} has no stored step {step}")
        return checkpoint.state

    async def update_state(self, session_id: str, partial: NodePartial) -> StepReport:
        """Edit the state between steps; the edit is recorded as its own step."""
        live = await self._require(session_id)
        async with live.lock:
            return await live.executor.record_update(partial, source="update_state")

    async def fork(self, session_id: str, step: int, new_session_id: str) -> SessionInit:
        """Start ``new_session_id`` from ``session_id`` as it was after ``step``."""
        validate_session_id(session_id)
        validate_session_id(new_session_id)
        if await self._find(new_session_id) is not None:
            raise SessionError(f"session {new_session_id!r} already exists")
        checkpoint = await self.checkpointer.load(session_id, step)
        if checkpoint is None:
            await self._require(session_id)
            raise SessionError(f"session {session_id!r} has no stored step {step}")
        executor = self._executor(new_session_id, checkpoint.state, _cursor_of(checkpoint))
        executor.cursor = replace(executor.cursor, next_seq=0)
        await executor.save()
        self._live[new_session_id] = _Live(executor)
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

    def _check_entry(self, entry: str) -> None:
        if entry not in self.app.spec.nodes:
            raise SessionError(f"entry {entry!r} is not a node of the graph")

    async def _find(self, session_id: str) -> _Live | None:
        live = self._live.get(session_id)
        if live is not None:
            return live
        checkpoint = await self.checkpointer.load_latest(session_id)
        if checkpoint is None:
            return None
        live = _Live(self._executor(session_id, checkpoint.state, _cursor_of(checkpoint)))
        self._live[session_id] = live
        return live

    async def _require(self, session_id: str) -> _Live:
        validate_session_id(session_id)
        live = await self._find(session_id)
        if live is None:
            raise SessionNotFound(session_id)
        return live

    async def _step(
        self,
        live: _Live,
        before: Collection[str],
        after: Collection[str],
        each_step: bool,
    ) -> StepResult:
        executor = live.executor
        if executor.cursor.interrupt is not None:
            executor.close("interrupted")
            return StepResult(completed=False, paused=_pending_reason(executor.cursor))
        if not executor.cursor.frontier:
            return StepResult(completed=True)
        # None while the session is mid-run: only completion, pauses and errors end the stream.
        status: RunStatus | None = "error"
        try:
            upcoming = plan_step(executor.cursor, executor.state)
            hit = tuple(node for node in upcoming.run if node in before)
            if hit and live.passed_before != upcoming.step:
                live.passed_before = upcoming.step
                status = "interrupted"
                reason = PausedReason(kind="before", step=upcoming.step, nodes=hit)
                return StepResult(completed=False, paused=reason)
            outcome = await executor.step()
            if isinstance(outcome, PausedReason):
                status = "interrupted"
                return StepResult(completed=False, paused=outcome)
            completed = not outcome.next_frontier
            status = "completed" if completed else None
            stopped = tuple(node for node in outcome.ran_nodes if node in after)
            if (stopped or each_step) and not completed:
                status = "interrupted"
                reason = PausedReason(
                    kind="after" if stopped else "step", step=outcome.step, nodes=stopped
                )
                return StepResult(completed=False, report=outcome, paused=reason)
            return StepResult(completed=completed, report=outcome)
        except asyncio.CancelledError:
            status = "cancelled"
            raise
        finally:
            if status is not None:
                executor.close(status)

    async def _run(self, live: _Live, before: Collection[str], after: Collection[str]) -> None:
        executor = live.executor
        limit = self.app.spec.max_steps
        done = 0
        if not executor.cursor.frontier and executor.cursor.interrupt is None:
            executor.close("completed")  # already complete: the stream still ends properly
            return
        while True:
            cursor = executor.cursor
            if cursor.frontier and cursor.interrupt is None and done >= limit:
                executor.close("error")
                raise StepLimitExceeded(executor.session_id, cursor.step)
            result = await self._step(live, before, after, False)
            if result.completed or result.paused is not None:
                return
            done += 1


def _cursor_of(checkpoint: Checkpoint) -> Cursor:
    if not checkpoint.cursor:
        return Cursor(step=checkpoint.step, frontier=checkpoint.frontier)
    return replace(Cursor.from_json_value(checkpoint.cursor), step=checkpoint.step)


def _pending_reason(cursor: Cursor) -> PausedReason:
    pending = cursor.interrupt or {}
    return PausedReason(
        kind="interrupt",
        step=cursor.step,
        nodes=(str(pending.get("node")),),
        value=pending.get("value"),
    )


async def _open_checkpointer(choice: object, db_url: str | None) -> tuple[Checkpointer, bool]:
    """The checkpointer ``choice`` names, and whether the runner owns (and so closes) it."""
    if isinstance(choice, Checkpointer):
        return choice, False
    raw: object = getattr(choice, "value", choice)
    name = str(raw).lower().replace("_", "").replace("-", "")
    if name in ("memory", "inmemory"):
        return InMemoryCheckpointer(), True
    config: Any = None
    with contextlib.suppress(ModuleNotFoundError):
        # The shared resolution (SPEC §4.3, with .env support) once weavegraph.config provides it.
        config = importlib.import_module("weavegraph.config")
    if config is not None and hasattr(config, "open_checkpointer") and name in _SQL_KINDS:
        opened: Checkpointer = await config.open_checkpointer(_SQL_KINDS[name], db_url=db_url)
        return opened, True
    if name == "sqlite":
        from .checkpoint.sqlite import SQLiteCheckpointer

        return await SQLiteCheckpointer.connect(_sqlite_url(db_url)), True
    if name in ("postgres", "postgresql"):
        # Imported by name: the backend needs the optional postgres extra.
        module: Any = importlib.import_module("weavegraph.checkpoint.postgres")
        return await module.PostgresCheckpointer.connect(_postgres_url(db_url)), True
    raise ConfigError(
        f"unknown checkpointer {choice!r}",
        help='Use wg.CheckpointerType.InMemory/SQLite/Postgres, "memory", "sqlite" or "postgres".',
    )


_SQL_KINDS = {"sqlite": "sqlite", "postgres": "postgres", "postgresql": "postgres"}


def _sqlite_url(db_url: str | None) -> str:
    if url := os.environ.get("WEAVEGRAPH_SQLITE_URL"):
        return url
    if db_url:
        return db_url
    if name := os.environ.get("SQLITE_DB_NAME"):
        return f"sqlite://{name}"
    return "sqlite://weavegraph.db"


def _postgres_url(db_url: str | None) -> str:
    return (
        os.environ.get("WEAVEGRAPH_POSTGRES_URL")
        or db_url
        or os.environ.get("DATABASE_URL")
        or "postgresql://localhost/weavegraph"
    )
