"""The run loop: the only code that steps a session.

Everything that runs a graph comes here: ``App.invoke*`` (:func:`execute`), ``AppRunner`` (its
``run_step``, ``run_until_complete``, ``resume``, ``invoke_next`` and ``drive``), the command line
and the web server (both through ``AppRunner.drive``). One superstep (:func:`step`) runs the
frontier, merges at the barrier, calls the routers and commits the checkpoint before anything
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
import traceback
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Final, NamedTuple, NoReturn

from .. import tracing
from ..context import Interrupt, task_context
from ..errors import NodeRunError, NonJsonValue, ReducerError, RoutingError, StepLimitExceeded
from ..events.model import INVOCATION_END_SCOPE, STREAM_END_SCOPE, EventType
from ..partial import NodePartial
from ..state import ErrorEvent, StateSnapshot, VersionedState, make_versions
from ..status import RunStatus
from ..types import START
from . import plan
from .barrier import freeze_partial, merge_barrier, record_failure
from .executor import (
    LOCAL,
    NodeFailure,
    NodeTask,
    Outcome,
    call_router,
    new_task,
    node_context,
    run_task,
    send_context,
)
from .journal import TaskJournal, decode_result, load_finished
from .pacing import LoopTurns
from .plan import (
    Route,
    StepPlan,
    advance,
    next_frontier,
    plan_step,
    ran_nodes,
    routers_to_call,
    send_key,
    task_base,
)
from .session import Session
from .stop import StopRequest
from .values import PausedReason, StepReport, step_limit

if TYPE_CHECKING:
    from ..checkpoint.base import Checkpoint

__all__ = [
    "NO_INTERRUPTS",
    "Interrupts",
    "DriveOutcome",
    "StepOnce",
    "begin",
    "close_stream",
    "drive",
    "end_stream",
    "execute",
    "record_update",
    "run_step",
    "step",
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
        await close_stream(session, status, invocation=invocation)


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
    one_step = step if session.traced else _step
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
    A claimed run gives its session back with ``status``.
    """
    if session.claim is not None:
        session.claim.ended = status
    end_stream(session, status, invocation=invocation)
    if session.checkpointer is not None:
        await asyncio.shield(session.store_events())


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


async def begin(session: Session) -> None:
    """Decide the frontier START leads to (its edges and routers) and save it.

    A new session's step 0; an iterative session entering at START, its current step. A failing
    START router is a routing failure like any other: the error is recorded, the step is saved
    with the frontier ``(START,)``, and the next step retries it.
    """
    routes: tuple[Route, ...] = ()
    cursor = session.cursor
    try:
        if START in session.spec.routers:
            snapshot = session.state.snapshot()
            for router in session.spec.routers[START]:
                routes += await call_router(router, snapshot, cursor.step)
        after = next_frontier(
            session.spec, cursor.step, ((START, None),), {START: routes}, cursor.join_progress
        )
    except RoutingError as exc:
        session.cursor = replace(cursor, frontier=(START,), sends=())
        await _fail(session, StepPlan(cursor.step, (), ()), START, exc)
    session.cursor = plan.routed(cursor, after)
    if session.log_steps:
        plan.logger.debug(
            "session %s step %d: first frontier %s",
            session.session_id,
            cursor.step,
            list(session.cursor.pending()),
        )
    if cursor.step == 0:
        await session.save((), (), ())
    else:  # an iterative input entering at START: the input's step keeps its record
        await session.resave()


async def step(session: Session) -> StepReport | PausedReason:
    """Run the frontier once: nodes, barrier, routers, checkpoint. Failures raise."""
    if not session.traced:
        return await _step(session)  # (a span-less step: one coroutine, no context manager)
    with tracing.span(tracing.STEP, session_id=session.session_id, step=session.cursor.step + 1):
        return await _step(session)


async def _step(session: Session) -> StepReport | PausedReason:
    cursor = session.cursor
    if cursor.frontier == (START,):  # the start's routing failed: retry it
        await begin(session)
        return StepReport(
            step=session.cursor.step,
            ran_nodes=(),
            skipped_nodes=(),
            updated_channels=(),
            next_frontier=session.cursor.pending(),
        )
    step_plan = plan_step(cursor, session.state)
    stamper = session.stamper
    lifecycle = stamper.lifecycle
    if lifecycle:
        stamper.lifecycle_event(
            "step_start",
            f"step {step_plan.step}",
            step=step_plan.step,
            frontier=list(ran_nodes(step_plan)),
        )
    snapshot = session.state.snapshot()
    run = step_plan.run
    sends = step_plan.sends
    # One node needs no task: inline (chains, loops).
    if len(run) == 1 and not sends and session.tasks is None:
        node_id = run[0]
        resume = cursor.resume
        if resume and node_id in resume:
            ctx = node_context(
                node_id,
                step_plan.step,
                session.session_id,
                stamper,
                resume,
                session.context,
                session,
            )
        else:
            ctx = task_context(
                node_id, step_plan.step, session.session_id, stamper, session.context, session
            )
        outcomes = [await run_task(session.spec.nodes[node_id], snapshot, ctx, session.task_env)]
        names = run
    else:
        outcomes = await _run_tasks(session, step_plan, snapshot)
        names = (*run, *(send.node for send in sends)) if sends else run
    results: list[tuple[str, NodePartial]] = []
    for position, (node, outcome) in enumerate(zip(names, outcomes, strict=True)):
        if outcome is None:
            continue
        if isinstance(outcome, NodeFailure):
            if isinstance(outcome.error, Interrupt):
                return await _pause(
                    session, step_plan, outcome.error, _task_of(step_plan, position)
                )
            await _fail(session, step_plan, node, outcome.error)
        else:
            results.append((node, outcome))
    spec = session.spec
    try:
        barrier = merge_barrier(spec, session.state, step_plan.step, results, frozen=True)
    except (NonJsonValue, ReducerError) as exc:  # a user reducer raised or made non-JSON
        await _fail(session, step_plan, exc.node or "", exc)
    # (no failures are left among the outcomes; a typing.cast would cost a call every step)
    tasks: list[tuple[str, NodePartial | None]] = list(zip(names, outcomes, strict=True))  # pyright: ignore[reportAssignmentType]
    try:
        routes = (
            await _routes(step_plan, tasks, barrier.state.snapshot(), session)
            if spec.routers
            else {}
        )
        after = next_frontier(spec, step_plan.step, tasks, routes, cursor.join_progress)
    except RoutingError as exc:
        await _fail(session, step_plan, exc.node, exc)
    session.state = barrier.state
    if session.log_steps:
        plan.log_step(session.session_id, step_plan, after.frontier)
    if lifecycle:
        stamper.lifecycle_event(
            "step_end",
            f"step {step_plan.step}",
            step=step_plan.step,
            ran=list(ran_nodes(step_plan)),
            skipped=list(step_plan.skipped),
            updated=list(barrier.updated_channels),
        )
    session.cursor = advance(
        cursor,
        step_plan,
        snapshot.versions,
        after,
        next_seq=stamper.next_seq + session.closing_events,
    )
    ran = ran_nodes(step_plan) if sends else run
    if session.checkpointer is None:  # the bookkeeping of save(), without a coroutine
        session.last_record = (ran, step_plan.skipped, barrier.updated_channels)
    else:
        await session.save(ran, step_plan.skipped, barrier.updated_channels)
    if session.observer is not None:  # stream modes: what each task returned, the merged state
        session.observer(step_plan.step, _named_results(step_plan, tasks), session.state)
    return StepReport(
        step=step_plan.step,
        ran_nodes=ran,
        skipped_nodes=step_plan.skipped,
        updated_channels=barrier.updated_channels,
        next_frontier=session.cursor.pending(),
    )


def _task_of(step_plan: StepPlan, position: int) -> int | None:
    """The task index of the task at ``position`` of the step's list, if it is a Send task."""
    if position < len(step_plan.run):
        return None
    return step_plan.first_send + position - len(step_plan.run)


def _named_results(
    step_plan: StepPlan, tasks: list[tuple[str, NodePartial | None]]
) -> list[tuple[str, NodePartial | None]]:
    """Each task's result under its name: the node's id, or ``node:index`` for a Send task."""
    if not step_plan.sends:
        return tasks
    count = len(step_plan.run)
    first = step_plan.first_send
    return tasks[:count] + [
        (send_key(send, first + i), partial)
        for i, (send, (_, partial)) in enumerate(zip(step_plan.sends, tasks[count:], strict=True))
    ]


async def _run_tasks(
    session: Session, step_plan: StepPlan, snapshot: StateSnapshot
) -> list[Outcome]:
    """The outcomes of the step's tasks in task order (the frontier's nodes, then the Sends),
    run by the session's executor; with per-task durability, tasks whose result was saved
    before (the step failed, paused or crashed) are not run again."""
    nodes = session.spec.nodes
    stamper = session.stamper
    cursor = session.cursor
    resume = cursor.resume
    sid = session.session_id
    env = session.task_env
    step_no = step_plan.step
    context = session.context
    task = new_task
    if resume:
        tasks = [
            task(
                NodeTask,
                (
                    nodes[node_id],
                    snapshot,
                    node_context(node_id, step_no, sid, stamper, resume, context, session),
                    env,
                ),
            )
            for node_id in step_plan.run
        ]
    else:
        tasks = [
            task(
                NodeTask,
                (
                    nodes[node_id],
                    snapshot,
                    task_context(node_id, step_no, sid, stamper, context, session),
                    env,
                ),
            )
            for node_id in step_plan.run
        ]
    first = step_plan.first_send
    tasks.extend(
        NodeTask(
            nodes[send.node],
            snapshot,
            send_context(send, first + i, step_no, sid, stamper, resume, context, session),
            env,
        )
        for i, send in enumerate(step_plan.sends)
    )
    indexes = (*step_plan.at, *range(first, first + len(step_plan.sends)))
    store = session.task_store
    if store is None or len(tasks) < 2:
        return await (session.tasks or LOCAL).run_tasks(tasks, session.max_concurrency)
    base = task_base(cursor)
    saved: dict[int, object] = {}
    if cursor.tasks_of is not None or not session.tasks_checked:
        session.tasks_checked = True
        saved = await load_finished(store, sid, session.namespace, base)
    outcomes: list[Outcome] = [None] * len(tasks)
    todo: list[int] = []
    for position, task in enumerate(tasks):
        found = saved.get(indexes[position]) if saved else None
        known, partial = (
            decode_result(task.node.id, found, env.schema) if found is not None else (False, None)
        )
        if known:
            outcomes[position] = partial
        else:
            todo.append(position)
    journal = TaskJournal(store, sid, session.namespace, base)

    def on_result(position: int, outcome: Outcome) -> None:
        at = todo[position]
        journal.record(indexes[at], tasks[at].node.id, outcome)

    try:
        ran = await (session.tasks or LOCAL).run_tasks(
            [tasks[at] for at in todo], session.max_concurrency, on_result
        )
        await journal.settle()
    except BaseException:
        journal.abandon()
        raise
    for at, outcome in zip(todo, ran, strict=True):
        outcomes[at] = outcome
    return outcomes


async def _routes(
    step_plan: StepPlan,
    tasks: list[tuple[str, NodePartial | None]],
    snapshot: StateSnapshot,
    session: Session,
) -> dict[str, tuple[Route, ...]]:
    routes: dict[str, tuple[Route, ...]] = {}
    for router in routers_to_call(session.spec, tasks):
        targets = await call_router(router, snapshot, step_plan.step)
        routes[router.source] = routes.get(router.source, ()) + targets
    return routes


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


async def _fail(session: Session, step_plan: StepPlan, node: str, error: BaseException) -> NoReturn:
    """Record a failed step (nothing merged, frontier unchanged), checkpoint it, raise."""
    cause = error.__cause__ if isinstance(error, RoutingError) else error
    original = cause if cause is not None else error
    scope = "router" if isinstance(error, RoutingError) else "node"
    event = ErrorEvent.from_exception(
        original,
        scope=scope,
        node_id=node,
        step=step_plan.step,
        traceback="".join(traceback.format_exception(original, limit=-3)),
    )
    session.state = record_failure(session.spec, session.state, step_plan.step, event)
    # The step runs again; its tasks' saved results stay under the step they were planned after.
    session.cursor = replace(
        session.cursor, step=step_plan.step, tasks_of=task_base(session.cursor)
    )
    if session.log_debug:
        _log.debug(
            "session %s step %d failed at %r: %s (frontier kept %s)",
            session.session_id,
            step_plan.step,
            node,
            event.message,
            list(session.cursor.pending()),
        )
    await session.save((), (), ("errors",))
    if isinstance(error, (RoutingError, NonJsonValue, ReducerError)):
        raise error
    raise NodeRunError(node, step_plan.step, f"{type(error).__name__}: {error}") from error


async def _pause(
    session: Session, step_plan: StepPlan, signal: Interrupt, task: int | None = None
) -> PausedReason:
    """A node (or a Send task: ``task``) asked for input: keep the frontier, remember the
    question, checkpoint.

    A question from inside a subgraph (``signal.namespace``) was announced where it was asked;
    here it is only remembered with its namespace, so ``resume`` can find its way back.
    """
    pending = {"node": signal.node, "value": signal.value}
    namespace = signal.namespace or session.namespace
    if namespace:
        pending["namespace"] = namespace
    if task is not None and signal.namespace is None:  # (a subgraph's task is in its namespace)
        pending["task"] = task
    session.cursor = replace(
        session.cursor,
        step=step_plan.step,
        interrupt=pending,
        tasks_of=task_base(session.cursor),
    )
    if signal.namespace is None:
        # Always emitted (not only with lifecycle on): whoever watches must see the question.
        session.stamper.publish(
            EventType.DIAGNOSTIC,
            "interrupt",
            f"node {signal.node} asks for input",
            {"node_id": signal.node, "step": step_plan.step, "value": signal.value},
        )
    await session.save((), (), ())
    return PausedReason(
        kind="interrupt",
        step=step_plan.step,
        nodes=(signal.node,),
        value=signal.value,
        namespace=namespace or None,
    )
