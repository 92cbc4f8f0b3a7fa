"""Driving one session step by step, so a stop request lands on a step boundary.

Shared by the CLI (Ctrl-C / SIGTERM) and the web server (graceful shutdown). Every committed step
is checkpointed before the next starts, so stopping between steps loses nothing: the stream ends
with ``status=interrupted`` and a later drive of the same session continues exactly there.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from .._session_steps import cursor_of, pending_reason
from ..app import App
from ..checkpoint.base import Checkpointer
from ..errors import CheckpointError, SessionError
from ..events.model import EventEmitter
from ..runner import PausedReason, RunStatus, StepReport
from ..sessions import AppRunner
from ..state import VersionedState

NO_ANSWER: Final[Any] = object()
"""``drive_session``'s default ``answer``: the session is not answering a ``ctx.interrupt``."""


class RunControl:
    """A stop request, honoured at the next step boundary. Safe to set from a signal handler."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._listeners: list[Callable[[], None]] = []

    def request_stop(self) -> None:
        self._stop.set()
        for listener in tuple(self._listeners):
            listener()

    def forward_to(self, listener: Callable[[], None]) -> None:
        """Also call ``listener`` on a stop request (at once if one was already made)."""
        self._listeners.append(listener)
        if self.stop_requested:
            listener()

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
    answer: Any = NO_ANSWER,
) -> DriveResult:
    """Create or resume ``session_id`` and run it step by step with an ``AppRunner`` until it
    completes, pauses or ``control`` asks it to stop (at a step boundary: the stream then ends
    with ``status=interrupted`` and driving the session again continues there).

    With ``answer``, the session must be waiting in a node's ``ctx.interrupt``: that node runs
    again with ``answer`` as the call's value (``AppRunner.resume``) and the session continues.

    Raises what the run raises (``NodeRunError``, ``RoutingError``, ``StepLimitExceeded``) after
    the failed step is checkpointed; the stream-end event is emitted in every case.
    """
    async with AppRunner(app, checkpointer, event_bus=bus) as runner:
        init = await runner.create_session(session_id, state)
        if init.resumed:
            await _check_same_graph(runner, app, session_id)
        if answer is not NO_ANSWER:
            return await _answer(runner, session_id, answer, control, resumed=init.resumed)
        status, paused = await _step_until_done(
            runner, session_id, app.spec.max_steps, control, tuple(interrupt_before), on_step
        )
        history = await runner.history(session_id)
        return DriveResult(
            session_id=session_id,
            state=await runner.get_state(session_id),
            status=status,
            step=history[-1].step if history else init.step,
            resumed=init.resumed,
            paused=paused,
        )


async def _step_until_done(
    runner: AppRunner,
    session_id: str,
    limit: int,
    control: RunControl,
    interrupt_before: tuple[str, ...],
    on_step: Callable[[StepReport], Awaitable[None]] | None,
) -> tuple[RunStatus, PausedReason | None]:
    """Run steps one by one, so a stop request is honoured at the next step boundary."""
    steps = 0
    while True:
        if control.stop_requested:
            runner.request_stop()
            await runner.run_until_complete(session_id)  # stops at once, ending the stream
            return "interrupted", None
        if steps >= limit:
            await runner.run_until_complete(session_id, max_steps=0)  # raises, ends stream
        result = await runner.run_step(session_id, interrupt_before=interrupt_before)
        if result.report is not None:
            steps += 1
            if on_step is not None:
                await on_step(result.report)
        if result.paused is not None:
            return "interrupted", result.paused
        if result.completed:
            if result.report is None:  # it was already complete: still end the stream
                await runner.run_until_complete(session_id)
            return "completed", None


async def _check_same_graph(runner: AppRunner, app: App, session_id: str) -> None:
    """A stored session continues only on a graph that has its next nodes (else: a clear error,
    nothing run or written, instead of a KeyError in the middle of a step)."""
    latest = await runner.checkpointer.load_latest(session_id)
    frontier = latest.frontier if latest is not None else ()
    unknown = [node for node in frontier if node not in app.spec.nodes]
    if unknown:
        raise SessionError(
            f"session {session_id!r} was not made by this graph: its next "
            f"node(s) {', '.join(map(repr, unknown))} are not in it",
            help="Resume it with the graph that created it, or start a new session id.",
        )


async def _answer(
    runner: AppRunner, session_id: str, answer: Any, control: RunControl, *, resumed: bool
) -> DriveResult:
    """Answer the pending ``ctx.interrupt`` and run on; how it ended is read from the checkpoint
    (``AppRunner.resume`` runs to completion, a new pause or a stop request)."""
    control.forward_to(runner.request_stop)
    await runner.resume(session_id, answer)  # SessionError when nothing is waiting for input
    latest = await runner.checkpointer.load_latest(session_id)
    if latest is None:  # pragma: no cover - resume just saved it
        raise CheckpointError(f"session {session_id!r} has no checkpoint after resuming")
    cursor = cursor_of(latest)
    paused = pending_reason(cursor) if cursor.interrupt is not None else None
    status: RunStatus = "completed" if not cursor.frontier and paused is None else "interrupted"
    return DriveResult(
        session_id=session_id,
        state=await runner.get_state(session_id),
        status=status,
        step=latest.step,
        resumed=resumed,
        paused=paused,
    )
