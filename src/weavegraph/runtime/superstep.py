"""One superstep of a session: run the frontier, merge at the barrier, route, commit.

:func:`step` is the unit :mod:`.loop` repeats; :func:`begin` routes a new session from START.
A step that pauses (a node's ``ctx.interrupt``) or fails stores what it must and raises, so the
loop decides what happens next; deciding (``plan.py``, ``barrier.py``) and running the user's code
(``executor.py``) live elsewhere.
"""

from __future__ import annotations

import logging
import traceback
from dataclasses import replace
from typing import TYPE_CHECKING, Any, NoReturn

from .. import tracing
from ..context import Interrupt, task_context
from ..errors import NodeRunError, NonJsonValue, ReducerError, RoutingError
from ..events.model import EventType
from ..partial import NodePartial
from ..state import ErrorEvent, StateSnapshot
from ..types import START
from . import plan
from .barrier import merge_barrier, record_failure
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
from .journal import TaskJournal, decode_result, load_finished, saved_events
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
from .values import PausedReason, StepReport

if TYPE_CHECKING:
    pass

__all__ = ["begin", "step", "untraced_step"]

_log = logging.getLogger(__name__)


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
        return await untraced_step(session)  # (a span-less step: one coroutine, no context manager)
    with tracing.span(tracing.STEP, session_id=session.session_id, step=session.cursor.step + 1):
        return await untraced_step(session)


async def untraced_step(session: Session) -> StepReport | PausedReason:
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
    elif session.ends_with_step is not None and _ends_run(session.cursor):
        await session.save_last(ran, step_plan.skipped, barrier.updated_channels)
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


def _ends_run(cursor: plan.Cursor) -> bool:
    """Whether the run ends with the step just recorded: nothing left to run, no question."""
    return cursor.idle and cursor.interrupt is None


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
    restored: list[dict[str, Any]] = []
    for position, task in enumerate(tasks):
        found = saved.get(indexes[position]) if saved else None
        known, partial = (
            decode_result(task.node.id, found, env.schema) if found is not None else (False, None)
        )
        if known:
            outcomes[position] = partial
            restored += saved_events(found)
        else:
            todo.append(position)
    if restored:
        await _emit_unstored(session, restored)
    journal = TaskJournal(store, sid, session.namespace, base)
    emitted = [tasks[at].ctx.record_events() for at in todo]

    def on_result(position: int, outcome: Outcome) -> None:
        at = todo[position]
        journal.record(indexes[at], tasks[at].node.id, outcome, emitted[position])

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


async def _emit_unstored(session: Session, events: list[dict[str, Any]]) -> None:
    """Emit again the events of tasks restored from their saved results that the log does not
    hold (the step they ran in was never committed: a crash, a failed save), in the order they
    were first emitted; those stored with a paused or failed attempt of the step are not
    repeated. An event is stored when the log holds it at its seq, unchanged."""
    assert session.checkpointer is not None
    events.sort(key=lambda event: int(event["seq"]))
    first, last = int(events[0]["seq"]), int(events[-1]["seq"])
    stored = await session.checkpointer.load_events(
        session.session_id, first - 1, limit=last - first + 1
    )
    held = {int(event["seq"]): event for event in stored}
    for event in events:
        if held.get(int(event["seq"])) != event:
            session.stamper.publish(
                str(event["type"]), str(event["scope"]), str(event["message"]),
                dict(event.get("metadata") or {}),
            )  # fmt: skip


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
