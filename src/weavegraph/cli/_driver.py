"""Driving one session step by step, so a stop request lands on a step boundary.

Shared by the CLI (Ctrl-C / SIGTERM) and the web server (graceful shutdown). Every committed step
is checkpointed before the next starts, so stopping between steps loses nothing: the stream ends
with ``status=interrupted`` and a later drive of the same session continues exactly there.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from ..app import App
from ..checkpoint._model import Checkpointer
from ..context import system_clock
from ..errors import StepLimitExceeded
from ..events.model import EventEmitter
from ..runner import Executor, PausedReason, RunStatus, StepReport, validate_session_id
from ..scheduler import Cursor
from ..state import VersionedState


class RunControl:
    """A stop request, honoured at the next step boundary. Safe to set from a signal handler."""

    def __init__(self) -> None:
        self._stop = threading.Event()

    def request_stop(self) -> None:
        self._stop.set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()


@dataclass(frozen=True, slots=True, kw_only=True)
class DriveResult:
    """How a driven session ended: ``completed``, or ``interrupted`` (stopped or paused)."""

    session_id: str
    state: VersionedState
    status: RunStatus
    step: int
    resumed: bool
    paused: PausedReason | None = None


async def open_executor(
    app: App,
    checkpointer: Checkpointer,
    session_id: str,
    state: VersionedState | None,
    emitter: EventEmitter,
) -> tuple[Executor, bool]:
    """The session's executor: from its latest checkpoint when it exists (the checkpoint wins
    over ``state``), else a new session starting from ``state``. Returns it and ``resumed``."""
    validate_session_id(session_id)
    latest = await checkpointer.load_latest(session_id)
    if latest is None:
        executor = app.executor(
            state or VersionedState(),
            session_id=session_id,
            event_bus=emitter,
            checkpointer=checkpointer,
        )
        return executor, False
    executor = Executor(
        app.spec,
        session_id=session_id,
        state=latest.state,
        cursor=Cursor.from_json_value(latest.cursor),
        clock=system_clock,
        emitter=emitter,
        checkpointer=checkpointer,
    )
    return executor, True


async def drive_session(
    app: App,
    checkpointer: Checkpointer,
    session_id: str,
    state: VersionedState | None,
    *,
    bus: EventEmitter,
    control: RunControl,
    interrupt_before: Sequence[str] = (),
    on_step: Callable[[StepReport], Awaitable[None]] | None = None,
) -> DriveResult:
    """Create or resume ``session_id`` and run it until it completes, pauses or is stopped.

    ``interrupt_before`` pauses before a step whose frontier holds one of those nodes (not on the
    first step after a resume: that pause was the reason to resume). Raises what the run raises
    (``NodeRunError``, ``RoutingError``, ``StepLimitExceeded``) after the failed step is
    checkpointed; the stream-end event is emitted in every case.
    """
    executor, resumed = await open_executor(app, checkpointer, session_id, state, bus)
    status: RunStatus = "error"
    paused: PausedReason | None = None
    stamper = executor.stamper
    if stamper.lifecycle:
        stamper.lifecycle_event("run_start", f"session={session_id}")
    try:
        if not resumed:
            await executor.begin()
        paused = await _steps(executor, control, set(interrupt_before), resumed, on_step)
        status = "completed" if paused is None and not executor.cursor.frontier else "interrupted"
    except asyncio.CancelledError:
        status = "cancelled"
        raise
    finally:
        executor.close(status)
    return DriveResult(
        session_id=session_id,
        state=executor.state,
        status=status,
        step=executor.cursor.step,
        resumed=resumed,
        paused=paused,
    )


async def _steps(
    executor: Executor,
    control: RunControl,
    interrupt_before: set[str],
    resumed: bool,
    on_step: Callable[[StepReport], Awaitable[None]] | None,
) -> PausedReason | None:
    first = True
    done = 0
    limit = executor.spec.max_steps
    while executor.cursor.frontier:
        if control.stop_requested:
            return None
        hits = tuple(node for node in executor.cursor.frontier if node in interrupt_before)
        if hits and not (first and resumed):
            return PausedReason(kind="before", step=executor.cursor.step, nodes=hits)
        if done >= limit:
            raise StepLimitExceeded(executor.session_id, executor.cursor.step)
        outcome = await executor.step()
        if isinstance(outcome, PausedReason):
            return outcome
        if on_step is not None:
            await on_step(outcome)
        first = False
        done += 1
    return None
