"""Driving one session step by step, so a stop request lands on a step boundary.

Shared by the CLI (Ctrl-C / SIGTERM) and the web server (graceful shutdown). Every committed step
is checkpointed before the next starts, so stopping between steps loses nothing: the stream ends
with ``status=interrupted`` and a later drive of the same session continues exactly there.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from ..app import App
from ..checkpoint._model import Checkpointer
from ..events.model import EventEmitter
from ..runner import PausedReason, RunStatus, StepReport
from ..sessions import AppRunner
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
    """Create or resume ``session_id`` and run it step by step with an ``AppRunner`` until it
    completes, pauses or ``control`` asks it to stop (at a step boundary: the stream then ends
    with ``status=interrupted`` and driving the session again continues there).

    Raises what the run raises (``NodeRunError``, ``RoutingError``, ``StepLimitExceeded``) after
    the failed step is checkpointed; the stream-end event is emitted in every case.
    """
    async with AppRunner(app, checkpointer, event_bus=bus) as runner:
        init = await runner.create_session(session_id, state)
        status: RunStatus = "completed"
        paused: PausedReason | None = None
        steps = 0
        limit = app.spec.max_steps
        while True:
            if control.stop_requested:
                runner.request_stop()
                await runner.run_until_complete(session_id)  # stops at once, ending the stream
                status = "interrupted"
                break
            if steps >= limit:
                await runner.run_until_complete(session_id, max_steps=0)  # raises, ends stream
            result = await runner.run_step(session_id, interrupt_before=tuple(interrupt_before))
            if result.report is not None:
                steps += 1
                if on_step is not None:
                    await on_step(result.report)
            if result.paused is not None:
                status, paused = "interrupted", result.paused
                break
            if result.completed:
                if result.report is None:  # it was already complete: still end the stream
                    await runner.run_until_complete(session_id)
                break
        history = await runner.history(session_id)
        return DriveResult(
            session_id=session_id,
            state=await runner.get_state(session_id),
            status=status,
            step=history[-1].step if history else init.step,
            resumed=init.resumed,
            paused=paused,
        )
