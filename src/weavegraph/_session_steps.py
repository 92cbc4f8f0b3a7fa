"""How ``AppRunner`` steps a live session: static interrupts, stop requests, step limits.

Kept apart from ``sessions.py`` (the public session API) so each stays small; nothing here is
public except ``StepResult``, which ``sessions`` re-exports.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection
from dataclasses import dataclass, replace

from ._pacing import LoopTurns
from ._run_values import step_limit
from ._stop import StopRequest
from .checkpoint.base import Checkpoint
from .errors import StepLimitExceeded
from .runner import Executor, PausedReason, RunStatus, StepReport
from .scheduler import Cursor, plan_step

__all__ = [
    "LiveSession",
    "StepResult",
    "cursor_of",
    "pending_reason",
    "run_session",
    "step_session",
]

# Part of AppRunner: its lines carry the sessions logger's name.
_log = logging.getLogger("weavegraph.sessions")


@dataclass(frozen=True, slots=True, kw_only=True)
class StepResult:
    """``run_step``'s answer: ``completed`` once the frontier is empty; ``report`` of the step that
    ran (if one did); ``paused`` when the session stopped for an interrupt."""

    completed: bool
    report: StepReport | None = None
    paused: PausedReason | None = None


class LiveSession:
    """A session this runner is driving: its executor and runner-only flags."""

    __slots__ = ("executor", "iterative", "lock")

    def __init__(self, executor: Executor, *, iterative: bool = False) -> None:
        self.executor = executor
        self.iterative = iterative
        self.lock = asyncio.Lock()


async def step_session(
    live: LiveSession,
    before: Collection[str],
    after: Collection[str],
    each_step: bool,
) -> StepResult:
    """One superstep with the static interrupts; completion, pauses and errors end the stream."""
    executor = live.executor
    if executor.cursor.interrupt is not None:
        executor.close("interrupted")
        return StepResult(completed=False, paused=pending_reason(executor.cursor))
    if not executor.cursor.frontier:
        return StepResult(completed=True)
    # None while the session is mid-run: only completion, pauses and errors end the stream.
    status: RunStatus | None = "error"
    try:
        upcoming = plan_step(executor.cursor, executor.state) if before else None
        hit = tuple(node for node in upcoming.run if node in before) if upcoming else ()
        if upcoming and hit and executor.cursor.paused_before != upcoming.step:
            # Persisted: asked again, in this process or after a restart, the step runs.
            executor.cursor = replace(executor.cursor, paused_before=upcoming.step)
            await executor.resave()
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
            if status == "completed":  # once per session, so no need to gate it per run
                _log.info(
                    "session %s completed at step %d", executor.session_id, executor.cursor.step
                )


async def run_session(
    live: LiveSession,
    before: Collection[str],
    after: Collection[str],
    stop_request: StopRequest,
    max_steps: int | None = None,
) -> None:
    """Step until complete, paused, stopped (a stop request honoured at a step boundary) or
    ``max_steps`` is exceeded (StepLimitExceeded). The stream ends in every case."""
    executor = live.executor
    limit = step_limit(executor.spec.max_steps, max_steps)
    done = 0
    if not executor.cursor.frontier and executor.cursor.interrupt is None:
        executor.close("completed")  # already complete: the stream still ends properly
        return
    turns = LoopTurns()
    with stop_request.tracking() as stop:
        while True:
            cursor = executor.cursor
            if cursor.frontier and cursor.interrupt is None:
                if stop.honour():  # a step boundary: everything so far is checkpointed
                    executor.close("interrupted")
                    return
                if done >= limit:
                    executor.close("error")
                    raise StepLimitExceeded(executor.session_id, cursor.step)
            result = await step_session(live, before, after, False)
            if result.completed or result.paused is not None:
                return
            done += 1
            if turns.due():
                await turns.take()


def cursor_of(checkpoint: Checkpoint) -> Cursor:
    """The scheduling cursor a checkpoint stores (older checkpoints: rebuilt from the frontier)."""
    if not checkpoint.cursor:
        return Cursor(step=checkpoint.step, frontier=checkpoint.frontier)
    return replace(Cursor.from_json_value(checkpoint.cursor), step=checkpoint.step)


def pending_reason(cursor: Cursor) -> PausedReason:
    """The pause a pending dynamic interrupt stands for."""
    pending = cursor.interrupt or {}
    return PausedReason(
        kind="interrupt",
        step=cursor.step,
        nodes=(str(pending.get("node")),),
        value=pending.get("value"),
    )
