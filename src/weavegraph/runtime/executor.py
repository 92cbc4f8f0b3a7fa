"""Running a superstep's user code: nodes (bounded concurrency, timeouts, retries) and routers.

What runs comes from ``plan.py``; this module only calls it. Node failures are returned as
:class:`NodeFailure` values, never raised, so the loop decides (in frontier order) what a failure
or a pause means. :class:`TaskExecutor` is the seam for running a step's node tasks elsewhere
(another executor may run them on a cluster); :class:`LocalTaskExecutor`, the default, runs them
on this event loop, at most ``max_concurrency`` at once, in one ``TaskGroup``. Sync nodes run in
worker threads that never hold up the process's exit (``threads.py``).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import CoroutineType
from typing import TYPE_CHECKING, Any, Final, NamedTuple, Protocol, cast

from .. import tracing
from ..context import EventStamper, Interrupt, NodeContext
from ..errors import RoutingError
from ..graph.spec import NodeSpec, RouterSpec
from ..partial import NodePartial, Send
from ..state import StateSchema, StateSnapshot
from .barrier import freeze_partial
from .plan import Route, normalize_route, send_key
from .threads import run_in_thread

if TYPE_CHECKING:
    from .session import Session

__all__ = [
    "LOCAL",
    "LocalTaskExecutor",
    "NodeFailure",
    "NodeTask",
    "OnResult",
    "Outcome",
    "TaskEnv",
    "TaskExecutor",
    "call_router",
    "new_task",
    "node_context",
    "run_task",
]

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class NodeFailure:
    """What a node raised (after its retries), or the ``Interrupt`` it raised to pause."""

    error: BaseException


Outcome = NodePartial | NodeFailure | None
"""A node task's result: its frozen partial, its failure, or None (it wrote nothing)."""

OnResult = Callable[[int, Outcome], None]
"""Told each task's outcome as soon as that task finishes: its position in the task list and the
outcome (the loop saves finished results with it, see ``journal.py``)."""


class TaskEnv(NamedTuple):
    """What every node task of one session shares: its event stamper, whether spans are traced,
    and the graph's typed state schema (typed writes are checked against it)."""

    stamper: EventStamper
    traced: bool
    schema: StateSchema | None


class NodeTask(NamedTuple):
    """One task to run in a step: the node, the step's snapshot, the node's context (a Send
    task's context carries its ``input`` and ``task`` index)."""

    node: NodeSpec
    snapshot: StateSnapshot
    ctx: NodeContext
    env: TaskEnv


new_task: Final = cast(
    "Callable[[type[NodeTask], tuple[NodeSpec, StateSnapshot, NodeContext, TaskEnv]], NodeTask]",
    tuple.__new__,  # pyright: ignore[reportUnknownMemberType]
)
"""``new_task(NodeTask, (node, snapshot, ctx, env))``: a NodeTask built without NamedTuple's
Python-level ``__new__`` (a step of a thousand tasks builds a thousand)."""


class TaskExecutor(Protocol):
    """Runs the node tasks of one superstep and returns their outcomes in task order.

    An implementation must return one outcome per task (failures as :class:`NodeFailure`, never
    raised) and must not let a task see another task's writes: the loop merges them afterwards.
    When ``on_result`` is given it is called with each task's position and outcome as soon as
    that task finishes (on the event loop's thread), so finished results can be saved mid-step.
    """

    async def run_tasks(
        self,
        tasks: Sequence[NodeTask],
        max_concurrency: int,
        on_result: OnResult | None = None,
    ) -> list[Outcome]: ...


class LocalTaskExecutor:
    """The default: the tasks run on this event loop, at most ``max_concurrency`` at once."""

    __slots__ = ()

    async def run_tasks(
        self,
        tasks: Sequence[NodeTask],
        max_concurrency: int,
        on_result: OnResult | None = None,
    ) -> list[Outcome]:
        if not tasks:
            return []
        results: list[Outcome] = [None] * len(tasks)
        indexes = iter(range(len(tasks)))

        async def worker() -> None:
            for index in indexes:  # shared iterator: each index is taken by exactly one worker
                outcome = results[index] = await run_task(*tasks[index])
                if on_result is not None:
                    on_result(index, outcome)

        async with asyncio.TaskGroup() as group:
            for _ in range(min(len(tasks), max_concurrency)):
                group.create_task(worker())
        return results


LOCAL: Final = LocalTaskExecutor()


def node_context(
    node_id: str,
    step: int,
    session_id: str,
    stamper: EventStamper,
    resume: Mapping[str, Any],
    context: Any = None,
    session: Session | None = None,
) -> NodeContext:
    """The context a node gets, with its resume value if it is answering ``ctx.interrupt``."""
    if node_id in resume:
        return NodeContext(
            node_id=node_id,
            step=step,
            session_id=session_id,
            stamper=stamper,
            resume=resume[node_id],
            context=context,
            session=session,
        )
    return NodeContext(
        node_id=node_id,
        step=step,
        session_id=session_id,
        stamper=stamper,
        context=context,
        session=session,
    )


def send_context(
    send: Send,
    task: int,
    step: int,
    session_id: str,
    stamper: EventStamper,
    resume: Mapping[str, Any],
    context: Any = None,
    session: Session | None = None,
) -> NodeContext:
    """A Send task's context: its ``input`` and ``task`` index, and its own resume value."""
    key = send_key(send, task) if resume else None
    answer: dict[str, Any] = {"resume": resume[key]} if key is not None and key in resume else {}
    return NodeContext(
        node_id=send.node,
        step=step,
        session_id=session_id,
        stamper=stamper,
        context=context,
        session=session,
        input=send.input,
        task=task,
        **answer,
    )


async def run_task(
    node: NodeSpec, snapshot: StateSnapshot, ctx: NodeContext, env: TaskEnv
) -> Outcome:
    """Run one node with its retries and timeout; failures are returned, never raised."""
    stamper, traced, schema = env
    lifecycle = stamper.lifecycle
    started = time.perf_counter() if lifecycle else 0.0
    if lifecycle:
        extra = {"task": ctx.task} if ctx.task is not None else {}
        stamper.lifecycle_event("node_start", node.id, node_id=node.id, step=ctx.step, **extra)
    outcome: Outcome
    try:
        if traced:
            with tracing.span(tracing.NODE, session_id=ctx.session_id, step=ctx.step, node=node.id):
                result = await attempts(node, snapshot, ctx)
        elif node.retry is None and node.timeout is None and node.is_async:
            # The common case without the retry/timeout layers (two coroutines fewer).
            result: Any = node.call(snapshot, ctx)
            # (an async def's coroutine is told without inspect's Python-level checks)
            kind = type(result)  # pyright: ignore[reportUnknownVariableType]
            if kind is CoroutineType or inspect.isawaitable(result):
                result = await result
        else:
            result = await attempts(node, snapshot, ctx)
        if result is not None and not isinstance(result, NodePartial):
            raise TypeError(f"a node must return NodePartial or None, got {type(result).__name__}")
        outcome = freeze_partial(node.id, result, schema) if result is not None else None
    except (Exception, Interrupt) as exc:
        outcome = NodeFailure(exc)
    if lifecycle:
        stamper.lifecycle_event(
            "node_finish",
            node.id,
            node_id=node.id,
            step=ctx.step,
            duration_ms=round((time.perf_counter() - started) * 1000, 3),
            status="error" if isinstance(outcome, NodeFailure) else "ok",
            **({"task": ctx.task} if ctx.task is not None else {}),
        )
    return outcome


async def attempts(node: NodeSpec, snapshot: StateSnapshot, ctx: NodeContext) -> object:
    """Call the node, retrying per its RetryPolicy (each attempt gets the full timeout)."""
    attempt = 1
    while True:
        try:
            return await _call(node, snapshot, ctx)
        except Exception as exc:
            policy = node.retry
            if policy is None or not policy.should_retry(exc, attempt):
                raise
            attempt += 1
            delay = policy.delay_before(attempt)
            # Only on the failure path, so logging's own level check is cheap enough here.
            _log.warning(
                "session %s step %d: node %r failed (%s: %s); retry %d/%d in %.3gs",
                ctx.session_id,
                ctx.step,
                node.id,
                type(exc).__name__,
                exc,
                attempt - 1,
                policy.max_attempts - 1,
                delay,
            )
            await asyncio.sleep(delay)


async def _call(node: NodeSpec, snapshot: StateSnapshot, ctx: NodeContext) -> object:
    if node.timeout is None:
        return await _invoke(node, snapshot, ctx)
    deadline = asyncio.timeout(node.timeout)
    try:
        async with deadline:
            return await _invoke(node, snapshot, ctx)
    except TimeoutError:
        if deadline.expired():
            raise TimeoutError(f"node {node.id!r} timed out after {node.timeout}s") from None
        raise


async def _invoke(node: NodeSpec, snapshot: StateSnapshot, ctx: NodeContext) -> object:
    if node.is_async:
        result: Any = node.call(snapshot, ctx)
        if inspect.isawaitable(result):
            result = await result
        return result
    # Sync nodes run in a worker thread so they cannot block the event loop.
    return await run_in_thread(node.call, snapshot, ctx)


async def call_router(router: RouterSpec, snapshot: StateSnapshot, step: int) -> tuple[Route, ...]:
    """A router's normalized targets (ids and Sends); whatever it raises or returns wrong is a
    RoutingError."""
    try:
        # Sync routers are called inline: they are decisions over an immutable snapshot, not
        # work, and a thread hop would cost several times a whole superstep.
        result: Any = router.route(snapshot)
        if router.is_async and inspect.isawaitable(result):
            result = await result
    except Exception as exc:
        raise RoutingError(
            router.source, step, f"router raised {type(exc).__name__}: {exc}"
        ) from exc
    return normalize_route(router.source, step, result, router.targets)
