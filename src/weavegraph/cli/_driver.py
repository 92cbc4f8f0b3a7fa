"""Driving one session step by step, so a stop request lands on a step boundary.

Shared by the CLI (Ctrl-C / SIGTERM) and the web server (graceful shutdown): every committed step
is checkpointed before the next starts, so stopping between steps loses nothing and ``resume``
continues exactly there.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from ..app import App
from ..checkpoint._model import Checkpointer
from ..events import EventBus
from ..sessions import AppRunner, StepResult
from ..state import VersionedState

Status = Literal["completed", "interrupted", "paused"]


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
    """How a driven session ended."""

    session_id: str
    state: VersionedState
    status: Status
    step: int
    resumed: bool


async def drive_session(
    app: App,
    checkpointer: Checkpointer,
    session_id: str,
    state: VersionedState | None,
    *,
    bus: EventBus,
    control: RunControl,
    interrupt_before: Sequence[str] = (),
    on_step: Callable[[StepResult], None] | None = None,
) -> DriveResult:
    """Create or resume ``session_id`` and run it until it completes, pauses or is stopped.

    Raises what the run raises (``NodeRunError``, ``RoutingError``, ...), after the runtime has
    checkpointed and emitted the stream-end event.
    """
    async with AppRunner(app, checkpointer, event_bus=bus) as runner:
        init = await runner.create_session(session_id, state or VersionedState())
        status: Status = "completed"
        while True:
            if control.stop_requested:
                status = "interrupted"
                await runner.stop_session(session_id)
                break
            result = await runner.run_step(session_id, interrupt_before=tuple(interrupt_before))
            if on_step is not None:
                on_step(result)
            if result.paused is not None:
                status = "paused"
                break
            if result.completed:
                break
        final = await runner.get_state(session_id)
        history = await runner.history(session_id)
        step = history[-1].step if history else init.step
        return DriveResult(
            session_id=session_id, state=final, status=status, step=step, resumed=init.resumed
        )
