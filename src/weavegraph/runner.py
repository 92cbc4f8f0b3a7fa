"""The async executor: runs planned supersteps, with bounded concurrency, timeouts and retries.

Decisions (what runs, how partials merge, what runs next) come from ``scheduler.py``; this module
only does the I/O around them: calling nodes and routers, saving checkpoints, emitting events.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final, NoReturn

from . import scheduler, tracing
from ._node_call import attempts
from ._pacing import LoopTurns
from ._run_values import (
    PausedReason,
    RunStatus,
    StepReport,
    new_session_id,
    step_limit,
    validate_session_id,
)
from .checkpoint._model import Checkpoint, Checkpointer
from .context import Clock, EventStamper, Interrupt, NodeContext
from .errors import (
    CheckpointError,
    NodeRunError,
    NonJsonValue,
    ReducerError,
    RoutingError,
    StepLimitExceeded,
)
from .events.model import STREAM_END_SCOPE, EventEmitter, EventType, NullEmitter
from .graph.spec import GraphSpec, RouterSpec
from .partial import NodePartial
from .scheduler import (
    Cursor,
    StepPlan,
    advance,
    freeze_partial,
    initial_cursor,
    merge_barrier,
    next_frontier,
    normalize_route,
    plan_step,
    record_failure,
    routers_to_call,
)
from .state import ErrorEvent, StateSnapshot, VersionedState
from .types import START

__all__ = [
    "Executor",
    "PausedReason",
    "RunStatus",
    "StepReport",
    "new_session_id",
    "validate_session_id",
]

_NULL_EMITTER: Final = NullEmitter()
_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Failure:
    error: BaseException


_Outcome = NodePartial | _Failure | None


class Executor:
    """Runs one session's supersteps and owns its state, cursor and event sequencing.

    ``state`` and ``cursor`` always describe the last recorded step, also after a failure, so the
    caller can report where the run stopped.
    """

    def __init__(
        self,
        spec: GraphSpec,
        *,
        session_id: str,
        state: VersionedState,
        cursor: Cursor,
        clock: Clock,
        emitter: EventEmitter | None = None,
        checkpointer: Checkpointer | None = None,
        max_concurrency: int | None = None,
    ) -> None:
        self.spec = spec
        self.session_id = session_id
        self.state = state.with_schema(spec.state_schema)
        self.cursor = cursor
        self.checkpointer = checkpointer
        self.stamper = EventStamper(
            emitter or _NULL_EMITTER, session_id, clock, next_seq=cursor.next_seq
        )
        self.max_concurrency = max(1, max_concurrency or spec.max_concurrency)
        # Events that follow the last checkpoint of a run (checkpoint saved, run end, stream end):
        # their seqs are reserved in the saved cursor so a resumed run continues without reuse.
        self.closing_events = 3 if self.stamper.lifecycle else 1
        # What the latest recorded step ran, so re-saving it keeps its history entry.
        self.last_record: tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]] = ((), (), ())
        # Decided once per run (asking OpenTelemetry costs an environment lookup per span).
        self.traced = tracing.enabled()
        self.log_steps = self.log_debug = False
        self.check_logging()

    def check_logging(self) -> None:
        """Whether DEBUG lines are wanted: asked once per run, not at every step or node."""
        self.log_steps = scheduler.logger.isEnabledFor(logging.DEBUG)
        self.log_debug = _log.isEnabledFor(logging.DEBUG)

    # --- whole runs ------------------------------------------------------------------------

    async def begin(self) -> None:
        """Decide the first frontier (START's edges and routers) and save step 0.

        A failing START router is a routing failure like any other (SPEC §3.4): the error is
        recorded, step 0 is saved with the frontier ``(START,)``, and the next step retries it.
        """
        routes: tuple[str, ...] = ()
        snapshot = self.state.snapshot()
        try:
            for router in self.spec.routers.get(START, ()):
                routes += await self._call_router(router, snapshot, 0)
            cursor = initial_cursor(self.spec, routes, next_seq=self.stamper.next_seq)
        except RoutingError as exc:
            self.cursor = replace(self.cursor, step=0, frontier=(START,))
            await self._fail(StepPlan(0, (), ()), START, exc)
        self.cursor = cursor
        if self.log_steps:
            scheduler.logger.debug(
                "session %s step 0: first frontier %s", self.session_id, list(cursor.frontier)
            )
        await self.save((), (), ())

    async def run(self, max_steps: int | None = None) -> PausedReason | None:
        """Run supersteps until the frontier is empty (or a node interrupts: the pause is returned).

        More than ``max_steps`` steps (default: the graph's) raise StepLimitExceeded, after the
        last step's checkpoint.
        """
        limit = step_limit(self.spec.max_steps, max_steps)
        done = 0
        turns = LoopTurns()
        while self.cursor.frontier:
            if done >= limit:
                raise StepLimitExceeded(self.session_id, self.cursor.step)
            outcome = await self.step()
            if isinstance(outcome, PausedReason):
                return outcome
            done += 1
            if turns.due():
                await turns.take()
        return None

    async def execute(self, *, max_steps: int | None = None, begin: bool = True) -> RunStatus:
        """A whole run with its framing events: run start/end and, always last, the stream end."""
        status: RunStatus = "error"
        self.check_logging()
        if self.stamper.lifecycle:
            self.stamper.lifecycle_event("run_start", f"session={self.session_id}")
        try:
            with tracing.span(tracing.RUN, session_id=self.session_id):
                if begin:
                    await self.begin()
                paused = await self.run(max_steps)
            status = "interrupted" if paused is not None else "completed"
            return status
        except asyncio.CancelledError:
            status = "cancelled"
            raise
        finally:
            self.close(status)

    def close(self, status: RunStatus) -> None:
        """Emit the closing events; the stream-end diagnostic is always the run's last event."""
        step = self.cursor.step
        if self.log_debug:
            _log.debug("session %s: run ended status=%s at step %d", self.session_id, status, step)
        if self.stamper.lifecycle:
            self.stamper.lifecycle_event("run_end", f"status={status}", status=status, step=step)
        self.stamper.publish(
            EventType.DIAGNOSTIC,
            STREAM_END_SCOPE,
            f"session={self.session_id} status={status} step={step}",
            {},
        )

    async def record_update(self, partial: NodePartial, *, source: str) -> StepReport:
        """Merge an outside edit (``update_state``, an iterative input) as its own recorded step.

        The frontier is kept; a frontier command in ``partial`` is ignored.
        """
        step = self.cursor.step + 1
        barrier = merge_barrier(
            self.spec,
            self.state,
            step,
            [(source, freeze_partial(source, partial, self.spec.state_schema))],
        )
        self.state = barrier.state
        self.cursor = replace(self.cursor, step=step)
        await self.save((), (), barrier.updated_channels)
        return StepReport(
            step=step,
            ran_nodes=(),
            skipped_nodes=(),
            updated_channels=barrier.updated_channels,
            next_frontier=self.cursor.frontier,
        )

    # --- one superstep ---------------------------------------------------------------------

    async def step(self) -> StepReport | PausedReason:
        """Run the frontier once: nodes, barrier, routers, checkpoint. Failures raise (§3.4)."""
        if not self.traced:
            return await self._step()  # (a span-less step: one coroutine, no context manager)
        with tracing.span(tracing.STEP, session_id=self.session_id, step=self.cursor.step + 1):
            return await self._step()

    async def _step(self) -> StepReport | PausedReason:
        if self.cursor.frontier == (START,):  # the start's routing failed: retry it
            await self.begin()
            return StepReport(
                step=self.cursor.step,
                ran_nodes=(),
                skipped_nodes=(),
                updated_channels=(),
                next_frontier=self.cursor.frontier,
            )
        plan = plan_step(self.cursor, self.state)
        lifecycle = self.stamper.lifecycle
        if lifecycle:
            self.stamper.lifecycle_event(
                "step_start", f"step {plan.step}", step=plan.step, frontier=list(plan.run)
            )
        snapshot = self.state.snapshot()
        if len(plan.run) == 1:  # one node needs no task: run it inline (chains, loops)
            outcomes = [await self._guarded(plan.run[0], snapshot, plan.step)]
        else:
            outcomes = await self._run_nodes(plan, snapshot)
        results: list[tuple[str, NodePartial]] = []
        for node, outcome in zip(plan.run, outcomes, strict=True):
            if isinstance(outcome, _Failure):
                if isinstance(outcome.error, Interrupt):
                    return await self._pause(plan, outcome.error)
                await self._fail(plan, node, outcome.error)
            elif outcome is not None:
                results.append((node, outcome))
        try:
            barrier = merge_barrier(self.spec, self.state, plan.step, results, frozen=True)
        except (NonJsonValue, ReducerError) as exc:  # a user reducer raised or made non-JSON
            await self._fail(plan, exc.node or "", exc)
        partials = dict(results)
        try:
            routes = (
                await self._routes(plan, partials, barrier.state.snapshot())
                if self.spec.routers
                else {}
            )
            frontier, progress = next_frontier(
                self.spec, plan.step, plan.run, partials, routes, self.cursor.join_progress
            )
        except RoutingError as exc:
            await self._fail(plan, exc.node, exc)
        self.state = barrier.state
        if self.log_steps:
            scheduler.log_step(self.session_id, plan, frontier)
        if lifecycle:
            self.stamper.lifecycle_event(
                "step_end",
                f"step {plan.step}",
                step=plan.step,
                ran=list(plan.run),
                skipped=list(plan.skipped),
                updated=list(barrier.updated_channels),
            )
        self.cursor = advance(
            self.cursor,
            plan,
            snapshot.versions,
            frontier,
            progress,
            next_seq=self.stamper.next_seq + self.closing_events,
        )
        if self.checkpointer is None:  # the bookkeeping of save(), without a coroutine
            self.last_record = (plan.run, plan.skipped, barrier.updated_channels)
        else:
            await self.save(plan.run, plan.skipped, barrier.updated_channels)
        return StepReport(
            step=plan.step,
            ran_nodes=plan.run,
            skipped_nodes=plan.skipped,
            updated_channels=barrier.updated_channels,
            next_frontier=frontier,
        )

    async def _run_nodes(self, plan: StepPlan, snapshot: StateSnapshot) -> list[_Outcome]:
        ids = plan.run
        if not ids:
            return []
        results: list[_Outcome] = [None] * len(ids)
        indexes = iter(range(len(ids)))

        async def worker() -> None:
            for index in indexes:  # shared iterator: each index is taken by exactly one worker
                results[index] = await self._guarded(ids[index], snapshot, plan.step)

        async with asyncio.TaskGroup() as group:
            for _ in range(min(len(ids), self.max_concurrency)):
                group.create_task(worker())
        return results

    async def _guarded(self, node_id: str, snapshot: StateSnapshot, step: int) -> _Outcome:
        """Run one node with retries and timeout; failures are returned, never raised."""
        node = self.spec.nodes[node_id]
        resume = self.cursor.resume
        if node_id in resume:
            ctx = NodeContext(
                node_id=node_id,
                step=step,
                session_id=self.session_id,
                stamper=self.stamper,
                resume=resume[node_id],
            )
        else:
            ctx = NodeContext(
                node_id=node_id, step=step, session_id=self.session_id, stamper=self.stamper
            )
        lifecycle = self.stamper.lifecycle
        started = time.perf_counter() if lifecycle else 0.0
        if lifecycle:
            self.stamper.lifecycle_event("node_start", node_id, node_id=node_id, step=step)
        outcome: _Outcome
        try:
            if self.traced:
                with tracing.span(
                    tracing.NODE, session_id=self.session_id, step=step, node=node_id
                ):
                    result = await attempts(node, snapshot, ctx)
            elif node.retry is None and node.timeout is None and node.is_async:
                # The common case without the retry/timeout layers (two coroutines fewer).
                result: Any = node.call(snapshot, ctx)
                if inspect.isawaitable(result):
                    result = await result
            else:
                result = await attempts(node, snapshot, ctx)
            if result is not None and not isinstance(result, NodePartial):
                raise TypeError(
                    f"a node must return NodePartial or None, got {type(result).__name__}"
                )
            outcome = (
                freeze_partial(node_id, result, self.spec.state_schema)
                if result is not None
                else None
            )
        except (Exception, Interrupt) as exc:
            outcome = _Failure(exc)
        if lifecycle:
            self.stamper.lifecycle_event(
                "node_finish",
                node_id,
                node_id=node_id,
                step=step,
                duration_ms=round((time.perf_counter() - started) * 1000, 3),
                status="error" if isinstance(outcome, _Failure) else "ok",
            )
        return outcome

    async def _routes(
        self, plan: StepPlan, partials: Mapping[str, NodePartial], snapshot: StateSnapshot
    ) -> dict[str, tuple[str, ...]]:
        routes: dict[str, tuple[str, ...]] = {}
        for router in routers_to_call(self.spec, plan.run, partials):
            targets = await self._call_router(router, snapshot, plan.step)
            routes[router.source] = routes.get(router.source, ()) + targets
        return routes

    async def _call_router(
        self, router: RouterSpec, snapshot: StateSnapshot, step: int
    ) -> tuple[str, ...]:
        try:
            # Sync routers are called inline: they are decisions over an immutable snapshot, not
            # work, and a thread hop would cost several times a whole superstep (SPEC §8).
            result: Any = router.route(snapshot)
            if router.is_async and inspect.isawaitable(result):
                result = await result
        except Exception as exc:
            raise RoutingError(
                router.source, step, f"router raised {type(exc).__name__}: {exc}"
            ) from exc
        return normalize_route(router.source, step, result, router.targets)

    # --- failure, pause, persistence -------------------------------------------------------

    async def _fail(self, plan: StepPlan, node: str, error: BaseException) -> NoReturn:
        """Record a failed step (nothing merged, frontier unchanged), checkpoint it, raise."""
        cause = error.__cause__ if isinstance(error, RoutingError) else error
        original = cause if cause is not None else error
        scope = "router" if isinstance(error, RoutingError) else "node"
        event = ErrorEvent.from_exception(
            original,
            scope=scope,
            node_id=node,
            step=plan.step,
            traceback="".join(traceback.format_exception(original, limit=-3)),
        )
        self.state = record_failure(self.spec, self.state, plan.step, event)
        self.cursor = replace(self.cursor, step=plan.step)
        if self.log_debug:
            _log.debug(
                "session %s step %d failed at %r: %s (frontier kept %s)",
                self.session_id,
                plan.step,
                node,
                event.message,
                list(self.cursor.frontier),
            )
        await self.save((), (), ("errors",))
        if isinstance(error, (RoutingError, NonJsonValue, ReducerError)):
            raise error
        raise NodeRunError(node, plan.step, f"{type(error).__name__}: {error}") from error

    async def _pause(self, plan: StepPlan, signal: Interrupt) -> PausedReason:
        """A node asked for input: keep the frontier, remember the question, checkpoint."""
        self.cursor = replace(
            self.cursor,
            step=plan.step,
            interrupt={"node": signal.node, "value": signal.value},
        )
        # Always emitted (not only with lifecycle on): whoever watches must see the question.
        self.stamper.publish(
            EventType.DIAGNOSTIC,
            "interrupt",
            f"node {signal.node} asks for input",
            {"node_id": signal.node, "step": plan.step, "value": signal.value},
        )
        await self.save((), (), ())
        return PausedReason(
            kind="interrupt", step=plan.step, nodes=(signal.node,), value=signal.value
        )

    async def resave(self) -> None:
        """Save the cursor again at the same step (its history entry unchanged): runner-only
        decisions such as a static pause taken or a resume answer survive a restart."""
        await self.save(*self.last_record)

    async def save(
        self, ran: Sequence[str] = (), skipped: Sequence[str] = (), updated: Sequence[str] = ()
    ) -> None:
        """Checkpoint the current state and cursor; any failure is a CheckpointError."""
        next_seq = self.stamper.next_seq + self.closing_events
        if self.cursor.next_seq != next_seq:  # advance() already set it for a normal step
            self.cursor = replace(self.cursor, next_seq=next_seq)
        self.last_record = (tuple(ran), tuple(skipped), tuple(updated))
        if self.checkpointer is None:
            return
        checkpoint = Checkpoint(
            session_id=self.session_id,
            step=self.cursor.step,
            state=self.state,
            frontier=self.cursor.frontier,
            ran_nodes=tuple(ran),
            skipped_nodes=tuple(skipped),
            updated_channels=tuple(updated),
            cursor=self.cursor.to_json_value(),
            created_at=self.stamper.clock(),
        )
        try:
            if self.traced:
                with tracing.span(
                    tracing.CHECKPOINT, session_id=self.session_id, step=checkpoint.step
                ):
                    await self.checkpointer.save(checkpoint)
            else:
                await self.checkpointer.save(checkpoint)
        except CheckpointError:
            raise
        except Exception as exc:
            raise CheckpointError(
                f"saving step {checkpoint.step} of session {self.session_id!r} failed: {exc}"
            ) from exc
        if self.log_debug:
            _log.debug(
                "session %s: checkpoint saved at step %d (frontier %s)",
                self.session_id,
                checkpoint.step,
                list(checkpoint.frontier),
            )
        if self.stamper.lifecycle:
            self.stamper.lifecycle_event(
                "checkpoint_saved", f"step {checkpoint.step}", step=checkpoint.step
            )
