"""The run loop: the only code that drives a session, step after step.

Everything that runs a graph comes here: ``App.invoke*`` (:func:`execute`), ``AppRunner`` (its
``run_step``, ``run_until_complete``, ``resume``, ``invoke_next`` and ``drive``), the command line
and the web server (both through ``AppRunner.drive``). One superstep (``superstep.step``) runs
the frontier, merges at the barrier, calls the routers and commits the checkpoint before anything
else happens; :func:`drive` repeats it until the session completes, pauses (a node's
``ctx.interrupt`` or a static interrupt), is stopped (``runtime/stop.py``) or exceeds its step
limit. However a drive ends, its stream ends in :func:`end_stream`, the one place that emits the
stream-end event (an iterative session's invocations end with an invocation-end diagnostic
instead, and the stream ends when the session is finished).

Decisions (what runs, how partials merge, what runs next, whether to pause) come from
``plan.py`` and ``barrier.py``; running the user's code is ``executor.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, replace
from functools import partial
from typing import TYPE_CHECKING, Final, NamedTuple

from .. import tracing
from ..errors import StepLimitExceeded
from ..events.model import INVOCATION_END_SCOPE, STREAM_END_SCOPE, EventType
from ..partial import NodePartial
from ..state import VersionedState, make_versions
from ..status import RunStatus
from . import plan
from .barrier import freeze_partial, merge_barrier
from .pacing import LoopTurns
from .plan import (
    plan_step,
)
from .session import Session
from .stop import StopRequest
from .superstep import begin, step, untraced_step
from .values import PausedReason, StepReport, step_limit

if TYPE_CHECKING:
    from ..checkpoint.base import Checkpoint

__all__ = [
    "NO_INTERRUPTS",
    "Interrupts",
    "DriveOutcome",
    "StepOnce",
    "close_stream",
    "drive",
    "end_stream",
    "execute",
    "record_restore",
    "record_update",
    "run_step",
]

_log = logging.getLogger(__name__)

OnStep = Callable[[StepReport], Awaitable[None]]


@dataclass(frozen=True, slots=True, kw_only=True)
class Interrupts:
    """Static interrupts: pause before / after these nodes run, or after every step."""

    before: Collection[str] = ()
    after: Collection[str] = ()
    each_step: bool = False

    def __bool__(self) -> bool:
        return bool(self.before or self.after or self.each_step)


NO_INTERRUPTS: Final = Interrupts()


class DriveOutcome(NamedTuple):
    """How a drive ended: ``completed``, ``interrupted`` (with the pause) or ``stopped``
    (``abandoned``: at once, the step in flight not committed)."""

    status: RunStatus
    paused: PausedReason | None = None
    abandoned: bool = False


# --- whole runs ----------------------------------------------------------------------------


async def execute(
    session: Session, *, max_steps: int | None = None, begin_run: bool = True
) -> RunStatus:
    """A whole one-shot run (``App.invoke``): run start, the first frontier, then :func:`drive`."""
    session.check_logging()
    if session.stamper.lifecycle:
        session.stamper.lifecycle_event("run_start", f"session={session.session_id}")
    with (
        tracing.span(tracing.RUN, session_id=session.session_id)
        if session.traced
        else contextlib.nullcontext()
    ):
        async with session.claimed():
            if begin_run:
                try:
                    await begin(session)
                except BaseException as exc:
                    cancelled = isinstance(exc, asyncio.CancelledError)
                    status = RunStatus.CANCELLED if cancelled else RunStatus.ERROR
                    await close_stream(session, status)
                    raise
            outcome = await drive(session, max_steps=max_steps)
    return outcome.status


async def drive(
    session: Session,
    *,
    interrupts: Interrupts = NO_INTERRUPTS,
    stop: StopRequest | None = None,
    max_steps: int | None = None,
    on_step: OnStep | None = None,
    invocation: bool = False,
) -> DriveOutcome:
    """Step until the session completes, pauses or is stopped; more than ``max_steps`` steps
    (default: the graph's) raise StepLimitExceeded.

    ``stop`` is honoured at the next step boundary; forced (``StopRequest.force``) it cancels the
    step in flight, which is abandoned (``DriveOutcome.abandoned``: the session in memory may be
    ahead of its last checkpoint; reload it). Failures raise after the failed step is
    checkpointed. The stream ends in every case, with ``invocation=True`` (one input of an
    iterative session) by an invocation-end diagnostic. On PostgreSQL the run holds the
    session's claim throughout (``Session.claimed``) and gives it back with its status.
    """
    limit = step_limit(session.spec.max_steps, max_steps)
    async with session.claimed():
        with stop.tracking() if stop is not None else contextlib.nullcontext():
            return await _drive(session, interrupts, stop, limit, on_step, invocation)


async def _drive(
    session: Session,
    interrupts: Interrupts,
    stop: StopRequest | None,
    limit: int,
    on_step: OnStep | None,
    invocation: bool,
) -> DriveOutcome:
    """:func:`drive` inside the claim and the stop tracking."""
    status = RunStatus.ERROR
    if _ends_with_step(session, interrupts):
        session.ends_with_step = partial(_ended, status=RunStatus.COMPLETED, invocation=invocation)
    try:
        paused = await _steps(session, interrupts, stop, limit, on_step)
        if stop is not None and paused is _STOPPED:
            status = RunStatus.STOPPED
            return DriveOutcome(status)
        status = RunStatus.INTERRUPTED if paused is not None else RunStatus.COMPLETED
        return DriveOutcome(status, paused)
    except asyncio.CancelledError:
        status = RunStatus.CANCELLED
        if stop is None or not stop.forced:
            raise
        status = RunStatus.STOPPED
        task = asyncio.current_task()
        if task is not None and task.uncancel() > 0:
            raise  # also cancelled by someone else
        return DriveOutcome(status, abandoned=True)
    finally:
        session.ends_with_step = None
        await close_stream(session, status, invocation=invocation)


def _ends_with_step(session: Session, interrupts: Interrupts) -> bool:
    """Whether the run's closing events can go with its last step, in the same commit: its
    events are stored with its steps, and its last step is the last thing it records (no static
    interrupt pauses behind it, no lifecycle event follows it; a subgraph ends no stream)."""
    stamper = session.stamper
    return (
        not interrupts
        and not session.namespace
        and not stamper.lifecycle
        and stamper.journal is not None
    )


_STOPPED: Final = PausedReason(kind="step", step=-1)
"""What :func:`_steps` returns when a stop request was honoured (never a real pause)."""


async def _steps(
    session: Session,
    interrupts: Interrupts,
    stop: StopRequest | None,
    limit: int,
    on_step: OnStep | None,
) -> PausedReason | None:
    """The loop itself: the pause it ended in, ``_STOPPED``, or None once complete."""
    done = 0
    turns = LoopTurns()
    # Decided once: this loop is the hot path (an untraced step skips the span wrapper).
    guarded = bool(interrupts)
    one_step = step if session.traced else untraced_step
    while True:
        cursor = session.cursor
        if cursor.interrupt is not None:
            return plan.pending_reason(cursor)
        if not cursor.frontier and not cursor.sends:  # (Cursor.idle, without the call)
            return None
        if stop is not None and stop.honour():  # a step boundary: everything is saved
            return _STOPPED
        if done >= limit:
            raise StepLimitExceeded(session.session_id, cursor.step)
        if guarded:
            report, paused = await _guarded_step(session, interrupts)
            if report is not None:
                done += 1
                if on_step is not None:
                    await on_step(report)
            if paused is not None:
                return paused
        else:
            outcome = await one_step(session)
            if type(outcome) is PausedReason:
                return outcome
            done += 1
            if on_step is not None:
                await on_step(outcome)
        if turns.due():
            await turns.take()


class StepOnce(NamedTuple):
    """One step's result: its report (if a step ran) and the pause it ended in (if any)."""

    report: StepReport | None
    paused: PausedReason | None


async def run_step(session: Session, interrupts: Interrupts = NO_INTERRUPTS) -> StepOnce:
    """One superstep with the static interrupts (``AppRunner.run_step``). The stream ends when
    the session completes, pauses or fails; mid-run it goes on. On PostgreSQL the step holds
    the session's claim (given back ``stopped`` mid-run)."""
    async with session.claimed():
        return await _run_step(session, interrupts)


async def _run_step(session: Session, interrupts: Interrupts) -> StepOnce:
    cursor = session.cursor
    if cursor.interrupt is not None:
        await close_stream(session, RunStatus.INTERRUPTED)
        return StepOnce(None, plan.pending_reason(cursor))
    if cursor.idle:  # already complete (say, after a pause behind its last step)
        await close_stream(session, RunStatus.COMPLETED)
        return StepOnce(None, None)
    status: RunStatus | None = RunStatus.ERROR
    try:
        once = await _guarded_step(session, interrupts)
        if once.paused is not None:
            status = RunStatus.INTERRUPTED
        elif once.report is not None and not once.report.next_frontier:
            status = RunStatus.COMPLETED
        else:
            status = None
        return once
    except asyncio.CancelledError:
        status = RunStatus.CANCELLED
        raise
    finally:
        if status is not None:
            await close_stream(session, status)


async def close_stream(session: Session, status: RunStatus, *, invocation: bool = False) -> None:
    """:func:`end_stream`, then store the closing events after the session's latest step.

    Storing is shielded: a run cancelled while it ends still leaves its stream end in the log.
    A claimed run gives its session back with ``status``. Closing events already stored with the
    run's last step (``Session.save_last``) only go live now.
    """
    if session.end_stored:
        session.end_stored = False
        session.stamper.deliver_held()
        return
    _ended(session, status, invocation=invocation)
    if session.checkpointer is not None:
        await asyncio.shield(session.store_events())


def _ended(session: Session, status: RunStatus, *, invocation: bool = False) -> None:
    """The run ended so: its claim is given back with ``status`` and its stream ends."""
    if session.claim is not None:
        session.claim.ended = status
    end_stream(session, status, invocation=invocation)


def end_stream(session: Session, status: RunStatus, *, invocation: bool = False) -> None:
    """Emit the closing events; the stream-end diagnostic is always a run's last event.

    ``invocation=True``: one input of an iterative session ended; its stream goes on, so the
    diagnostic has the invocation-end scope instead. A subgraph's run ends nothing: its events
    are part of its parent's stream.
    """
    if session.namespace:
        return
    step_no = session.cursor.step
    if session.log_debug:
        _log.debug(
            "session %s: run ended status=%s at step %d", session.session_id, status, step_no
        )
    if status is RunStatus.COMPLETED and not invocation:
        _log.info("session %s completed at step %d", session.session_id, step_no)
    stamper = session.stamper
    if stamper.lifecycle:
        stamper.lifecycle_event("run_end", f"status={status}", status=str(status), step=step_no)
    session.stream_ended = not invocation
    stamper.publish(
        EventType.DIAGNOSTIC,
        INVOCATION_END_SCOPE if invocation else STREAM_END_SCOPE,
        f"session={session.session_id} status={status} step={step_no}",
        {},
    )


async def _guarded_step(session: Session, interrupts: Interrupts) -> StepOnce:
    """One step with ``interrupt_before`` checked ahead of it and the after-pauses behind it."""
    if interrupts.before:
        upcoming = plan_step(session.cursor, session.state)
        reason = plan.pause_before(session.cursor, upcoming, interrupts.before)
        if reason is not None:
            # Persisted: asked again, in this process or after a restart, the step runs.
            session.cursor = replace(session.cursor, paused_before=upcoming.step)
            await session.resave()
            return StepOnce(None, reason)
    outcome = await step(session)
    if isinstance(outcome, PausedReason):
        return StepOnce(None, outcome)
    return StepOnce(outcome, plan.pause_after(outcome, interrupts.after, interrupts.each_step))


# --- one superstep -------------------------------------------------------------------------


async def record_update(session: Session, partial: NodePartial, *, source: str) -> StepReport:
    """Merge an outside edit (``update_state``, an iterative input) as its own recorded step.

    The frontier is kept; a frontier command in ``partial`` is ignored.
    """
    step_no = session.cursor.step + 1
    # A new committed step: saved results of an unfinished step no longer apply (their tasks
    # saw the state before this edit), so the step runs whole.
    barrier = merge_barrier(
        session.spec,
        session.state,
        step_no,
        [(source, freeze_partial(source, partial, session.spec.state_schema))],
    )
    session.state = barrier.state
    session.cursor = replace(session.cursor, step=step_no, tasks_of=None)
    await session.save((), (), barrier.updated_channels)
    return StepReport(
        step=step_no,
        ran_nodes=(),
        skipped_nodes=(),
        updated_channels=barrier.updated_channels,
        next_frontier=session.cursor.pending(),
    )


async def record_restore(
    session: Session, checkpoint: Checkpoint, state: VersionedState | None = None
) -> StepReport:
    """Put the session back as ``checkpoint`` left it (its state, or ``state`` instead, and its
    frontier and pending question), recorded as its own new step: history stays append-only.

    Channel versions move forward (never back), so every node sees the restored channels as
    changed.
    """
    step_no = session.cursor.step + 1
    target = state if state is not None else checkpoint.state
    current = session.state
    channels = ("messages", "extra", "errors")
    updated = tuple(ch for ch in channels if getattr(target, ch) != getattr(current, ch))
    versions = make_versions(*(int(current.versions[ch]) + 1 for ch in channels))
    session.state = VersionedState(
        messages=target.messages, extra=target.extra, errors=target.errors, versions=versions
    ).with_schema(current.schema)
    restored = plan.cursor_of(checkpoint)
    paused = restored.paused_before == checkpoint.step + 1
    session.cursor = replace(
        restored,
        step=step_no,
        next_seq=session.cursor.next_seq,
        tasks_of=None,
        paused_before=step_no + 1 if paused else None,
    )
    await session.save((), (), updated)
    return StepReport(
        step=step_no,
        ran_nodes=(),
        skipped_nodes=(),
        updated_channels=updated,
        next_frontier=session.cursor.pending(),
    )


# --- failure and pause ---------------------------------------------------------------------
