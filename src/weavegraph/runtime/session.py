"""One live session: its state, scheduling cursor and event numbering, and how it is saved.

``state`` and ``cursor`` always describe the last recorded step, also after a failure, so the
caller can report where the run stopped. Only ``loop.py`` moves them forward.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Callable, Generator, Sequence
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, TypeGuard, TypeVar

from .. import tracing
from ..checkpoint import Checkpoint, Checkpointer, TaskResultStore
from ..checkpoint.base import RunClaim, SessionClaims
from ..context import Clock, EventStamper
from ..errors import (
    CheckpointConflict,
    CheckpointError,
    SessionBusy,
    SessionError,
    StateError,
)
from ..events import log as event_log
from ..events.model import ATTEMPT_RESTARTED_SCOPE, EventEmitter, EventType, NullEmitter
from ..graph.spec import GraphSpec
from ..state import VersionedState, freeze_json
from . import plan
from .event_journal import BATCH_EVENTS, NOTHING, EventJournal, PendingEvents
from .executor import TaskEnv, TaskExecutor
from .plan import Cursor

if TYPE_CHECKING:
    from ..events.modes import StepObserver

__all__ = ["PARENT_STEP", "Session"]

PARENT_STEP: Final = "parent_step"
"""The key of a subgraph checkpoint's cursor JSON naming the parent step it ran in."""

_NULL_EMITTER: Final = NullEmitter()
_UNCLAIMED: Final = contextlib.nullcontext()
_log = logging.getLogger(__name__)


_IMPLEMENTS: dict[tuple[type, type], bool] = {}
_P = TypeVar("_P")


def _implements(checkpointer: object, protocol: type[_P]) -> TypeGuard[_P]:
    """``isinstance(checkpointer, protocol)`` decided once per class (a protocol ``isinstance``
    costs tens of microseconds: too much for every run); a class that delegates attributes
    (``__getattr__``) is checked on each object, as what it wraps may differ."""
    kind = type(checkpointer)
    known = _IMPLEMENTS.get((kind, protocol))
    if known is None:
        known = isinstance(checkpointer, protocol)
        if not hasattr(kind, "__getattr__"):
            _IMPLEMENTS[kind, protocol] = known
    return known


class Session:
    """A session being driven: what the loop needs between steps, and its checkpointing."""

    __slots__ = (
        "checkpointer",
        "claim",
        "closing_events",
        "context",
        "cursor",
        "end_stored",
        "ends_with_step",
        "in_doubt",
        "last_record",
        "log_debug",
        "log_steps",
        "max_concurrency",
        "namespace",
        "observer",
        "parent_step",
        "saved",
        "saved_step",
        "session_id",
        "spec",
        "stamper",
        "state",
        "stream_ended",
        "task_env",
        "task_store",
        "tasks",
        "tasks_checked",
        "traced",
    )

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
        tasks: TaskExecutor | None = None,
        context: Any = None,
        stamper: EventStamper | None = None,
    ) -> None:
        self.spec = spec
        self.context = context
        """The run's context, handed to nodes as ``ctx.context`` (never checkpointed)."""
        self.observer: StepObserver | None = None
        """Called after each committed step (stream modes); see :meth:`watched`."""
        self.session_id = session_id
        self.state = state.with_schema(spec.state_schema)
        self.cursor = cursor
        self.checkpointer = checkpointer
        # Per-task durability needs the checkpointer's task-result methods (every built-in
        # backend has them; a checkpointer written before they existed simply goes without).
        self.task_store = (
            checkpointer
            if checkpointer is not None and _implements(checkpointer, TaskResultStore)
            else None
        )
        # Whether saved task results were looked for since this session was loaded (once: a
        # crash may have left some for the step about to run).
        self.tasks_checked = False
        self.stamper = stamper or EventStamper(
            emitter or _NULL_EMITTER, session_id, clock, next_seq=cursor.next_seq
        )
        self.namespace = self.stamper.namespace or ""
        """Empty for a session's own graph; a subgraph's path of node ids (``research``)."""
        self.parent_step: int | None = None
        """A subgraph's: the parent's step it runs in, saved with its checkpoints."""
        self.max_concurrency = max(1, max_concurrency or spec.max_concurrency)
        self.tasks = tasks
        """Who runs a step's node tasks; None: this event loop (a lone node runs inline)."""
        # Events that follow the last checkpoint of a run (checkpoint saved, run end, stream end):
        # their seqs are reserved in the saved cursor, so a session rebuilt from its checkpoint
        # alone never numbers an event twice; a runner loading it continues right after the
        # last stored event instead (:meth:`continue_seq`), so stored seqs have no gaps.
        # (A subgraph's run ends no stream: only its checkpoint-saved event follows.)
        lifecycle = self.stamper.lifecycle
        if self.namespace:
            self.closing_events = 1 if lifecycle else 0
        else:
            self.closing_events = 3 if lifecycle else 1
        if checkpointer is not None and stamper is None:
            # Every event is stored with the step that emitted it (a subgraph's stamper shares
            # this journal: its steps store the session's pending events as they commit).
            self.stamper.journal = EventJournal()
        self.stream_ended = False
        """Whether the stream-end event was emitted (``loop.end_stream``)."""
        self.ends_with_step: Callable[[Session], None] | None = None
        """Set by the run loop while the run's closing events may go with its last step:
        emits them (see :meth:`save_last`)."""
        self.end_stored = False
        """Whether the run's closing events were stored with its last step (they go live when
        the loop ends the stream)."""
        self.claim: RunClaim | None = None
        """The run's claim on the session while it holds one (see :meth:`claimed`)."""
        # The step the stored session is at, as far as this run knows: each save builds on it
        # (a fenced save), so a session another process moved on is refused, never overwritten.
        # -1: a new session. None: not checked (a run of ``App.invoke`` on a checkpointer the
        # caller gave, which may hold anything under that id).
        self.saved_step: int | None = None
        self.saved = False
        """Whether this run has stored the session (its closing events have a step to go with)."""
        self.in_doubt: tuple[int, datetime] | None = None
        """The step and time of this run's save that was cancelled in flight (it may commit
        anyway: a writer thread, a group commit); None once a save's outcome is known."""
        # What the latest recorded step ran, so re-saving it keeps its history entry.
        self.last_record: tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]] = ((), (), ())
        # Decided once per run (asking OpenTelemetry costs an environment lookup per span).
        self.traced = tracing.enabled()
        self.task_env = TaskEnv(self.stamper, self.traced, spec.state_schema)
        self.log_steps = self.log_debug = False
        self.check_logging()

    @contextlib.contextmanager
    def watched(self, emitter: EventEmitter, observer: StepObserver) -> Generator[None]:
        """While inside: every event also goes to ``emitter`` and ``observer`` sees each step."""
        previous = self.stamper.emitter
        self.stamper.set_emitter(emitter)
        self.observer = observer
        try:
            yield
        finally:
            self.stamper.set_emitter(previous)
            self.observer = None

    def claimed(self) -> contextlib.AbstractAsyncContextManager[object]:
        """While inside, the run holds the session's claim when its checkpointer has claims
        (PostgreSQL: ``SessionBusy`` while another process runs it); nested runs share it."""
        cp = self.checkpointer
        if cp is None or self.claim is not None or self.namespace:
            return _UNCLAIMED
        if not _implements(cp, SessionClaims):
            return _UNCLAIMED
        return self._held(cp)

    @contextlib.asynccontextmanager
    async def _held(self, claims: SessionClaims) -> AsyncGenerator[RunClaim]:
        async with claims.hold(self.session_id) as claim:
            self.claim = claim
            try:
                self._announce_takeover(claim)
                yield claim
            finally:
                self.claim = None

    def _announce_takeover(self, claim: RunClaim) -> None:
        """An ``attempt_restarted`` diagnostic (stored with the next save) when this claim took
        over from one that expired with a step to run: that step runs again."""
        previous = claim.takeover()
        cursor = self.cursor
        if previous is None or cursor.idle or cursor.interrupt is not None:
            return
        step = cursor.step + 1
        self.stamper.publish(
            EventType.DIAGNOSTIC,
            ATTEMPT_RESTARTED_SCOPE,
            f"step {step} runs again: the claim of {previous} expired before it was committed",
            {"step": step, "previous_holder": previous},
        )

    def subgraph(
        self, spec: GraphSpec, namespace: str, state: VersionedState, cursor: Cursor
    ) -> Session:
        """A session for the subgraph at ``namespace`` running inside this one: same session id,
        checkpointer, context and event sequence; its events carry ``namespace``."""
        return Session(
            spec,
            session_id=self.session_id,
            state=state,
            cursor=cursor,
            clock=self.stamper.clock,
            checkpointer=self.checkpointer,
            tasks=self.tasks,
            context=self.context,
            stamper=self.stamper.child(namespace),
        )

    def check_logging(self) -> None:
        """Whether DEBUG lines are wanted: asked once per run, not at every step or node."""
        self.log_steps = plan.logger.isEnabledFor(logging.DEBUG)
        self.log_debug = _log.isEnabledFor(logging.DEBUG)

    async def answer(self, value: Any) -> None:
        """Give the pending ``ctx.interrupt`` its answer, saved (it survives a stop or a crash
        before the node runs again). SessionError when nothing is waiting for input."""
        pending = self.cursor.interrupt
        if pending is None:
            raise SessionError(f"session {self.session_id!r} is not waiting for input")
        try:  # saved with the session: checked like any stored value, before anything moves
            value = freeze_json(value)
        except ValueError as exc:
            raise StateError(f"the answer cannot be stored: {exc}") from None
        resume = {**self.cursor.resume, plan.answering_node(self.namespace, pending): value}
        self.cursor = replace(self.cursor, interrupt=None, resume=resume)
        await self.resave()

    async def resave(self) -> None:
        """Save the cursor again at the same step (its history entry unchanged): decisions taken
        between steps (a static pause, a resume answer) survive a restart."""
        await self.save(*self.last_record)

    async def save(
        self, ran: Sequence[str] = (), skipped: Sequence[str] = (), updated: Sequence[str] = ()
    ) -> None:
        """Checkpoint the current state and cursor with the events emitted since the last save,
        building on ``saved_step``; any failure is a CheckpointError (CheckpointConflict
        when another writer moved the session on)."""
        stamper = self.stamper
        # (the closing events, once emitted for this save (save_last), need no seqs reserved)
        next_seq = stamper.next_seq + (0 if stamper.holding else self.closing_events)
        if self.cursor.next_seq != next_seq:  # advance() already set it for a normal step
            self.cursor = replace(self.cursor, next_seq=next_seq)
        self.last_record = (tuple(ran), tuple(skipped), tuple(updated))
        if self.checkpointer is None:
            return
        cursor = self.cursor.to_json_value()
        if self.parent_step is not None:
            cursor[PARENT_STEP] = self.parent_step
        checkpoint = Checkpoint(
            session_id=self.session_id,
            step=self.cursor.step,
            state=self.state,
            frontier=self.cursor.pending(),
            ran_nodes=tuple(ran),
            skipped_nodes=tuple(skipped),
            updated_channels=tuple(updated),
            cursor=cursor,
            created_at=self.stamper.clock(),
            keep_tasks_of=self.cursor.tasks_of,
            namespace=self.namespace,
        )
        journal = self.stamper.journal
        # (NOTHING, not an empty batch: told by identity, without a __len__ call every step)
        pending = journal.take() if journal is not None else NOTHING
        self.in_doubt = None
        try:
            if self.traced:
                with tracing.span(
                    tracing.CHECKPOINT, session_id=self.session_id, step=checkpoint.step
                ):
                    await self._commit(self.checkpointer, checkpoint, pending)
            else:
                await self._commit(self.checkpointer, checkpoint, pending)
        except asyncio.CancelledError:
            self.in_doubt = (checkpoint.step, checkpoint.created_at)
            raise
        except (CheckpointError, SessionBusy):
            raise
        except Exception as exc:
            raise CheckpointError(
                f"saving step {checkpoint.step} of session {self.session_id!r} failed: {exc}"
            ) from exc
        self.saved = True
        if self.saved_step is not None:
            self.saved_step = checkpoint.step
        if pending is not NOTHING:
            event_log.ring(self.session_id)
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

    def _fence(self) -> dict[str, Any]:
        """The fence of a save (none when ``saved_step`` is unknown: a checkpointer written
        before fenced saves still works there)."""
        return {} if self.saved_step is None else {"builds_on": self.saved_step}

    async def _commit(
        self, checkpointer: Checkpointer, checkpoint: Checkpoint, pending: PendingEvents
    ) -> None:
        """One transaction: the checkpoint and the step's events. A step that emitted more than
        one batch of events has its earlier batches stored just before (fenced the same way).

        Events of a step that is not committed are never stored: when the save fails, their
        seqs are given to the next events (the run's closing ones), so the log has no gap, and
        the step's events are emitted again when it runs again."""
        fence = self._fence()
        if pending is NOTHING:  # (never the save carrying the closing events: they are pending)
            await checkpointer.save(checkpoint, **fence)
            return
        unstored = self.stamper.next_seq - len(pending)  # the first seq of the step's events
        try:
            if len(pending) <= BATCH_EVENTS:
                events = pending.json()
            else:
                events: list[dict[str, Any]] = []
                for batch in pending.batches():
                    if events:
                        await checkpointer.append_events(self.session_id, events, **fence)
                        unstored += len(events)
                    events = batch
            self._closing()
            await checkpointer.save(checkpoint, events=events, **fence)
        except Exception:
            self.stamper.continue_at(unstored)
            raise

    def _closing(self) -> None:
        """Before the save that carries the run's closing events (:meth:`save_last`): the
        run's claim goes back in the same commit."""
        if self.claim is not None and self.stamper.holding:
            self.claim.closing = True

    async def save_last(
        self, ran: Sequence[str] = (), skipped: Sequence[str] = (), updated: Sequence[str] = ()
    ) -> None:
        """:meth:`save` of the step that completes the run, with the run's closing events in the
        same commit (``ends_with_step`` emits them; live listeners get them once it is
        committed, when the loop ends the stream). The commit's outcome is awaited even if the
        run is cancelled meanwhile: the stream must end with what was stored."""
        assert self.ends_with_step is not None
        self.stamper.hold()
        self.ends_with_step(self)
        saving = asyncio.ensure_future(self.save(ran, skipped, updated))
        cancelled: asyncio.CancelledError | None = None
        while not saving.done():
            try:
                await asyncio.shield(saving)
            except asyncio.CancelledError as exc:
                if not saving.done():
                    cancelled = exc  # (the run is cancelled: the commit is still waited for)
            except BaseException:
                pass  # (the save's own failure: below)
        if saving.cancelled() or saving.exception() is not None:
            self._unstage()
            if cancelled is not None:
                raise cancelled
            saving.result()
        self.end_stored = True
        if cancelled is not None:
            raise cancelled

    def _unstage(self) -> None:
        """The closing events were not stored with the step (its save failed, which gave
        their seqs back): they are forgotten, and the run's stream ends the usual way."""
        self.stamper.drop_held()
        self.stream_ended = False
        if self.claim is not None:
            self.claim.ended = None
            self.claim.closing = False

    async def store_events(self) -> None:
        """Store the events emitted since the last save (a run's closing events) after the
        latest stored step. Failures are logged: the run's outcome stands, only those events
        are missing from the log (readers then see a stream without its end)."""
        journal = self.stamper.journal
        if journal is None or self.checkpointer is None or not journal:
            return
        pending = journal.take()
        if not self.saved and (self.saved_step is None or self.saved_step < 0):
            # nothing of the session is stored: nothing to attach them to
            pending.discard()
            return
        batches = list(pending.batches())
        if self.claim is not None:  # (one batch: it may give the claim back with it)
            self.claim.closing = len(batches) == 1
        try:
            try:
                await self._append(batches)
            except CheckpointConflict:
                if not await self._adopt_landed_save():
                    raise
                await self._append(batches)
        except Exception:
            _log.warning(
                "session %s: its last events could not be stored", self.session_id, exc_info=True
            )
        else:
            event_log.ring(self.session_id)

    async def _append(self, batches: Sequence[list[dict[str, Any]]]) -> None:
        assert self.checkpointer is not None
        fence = self._fence()
        for batch in batches:
            await self.checkpointer.append_events(self.session_id, batch, **fence)

    async def _adopt_landed_save(self) -> bool:
        """After a fence refusal: whether this run's save that was cancelled in flight is
        stored anyway (it still commits: a writer thread, a group commit); if so, that step is
        what the session's next writes build on. A step another writer stored (the same step
        number, saved at another time) is not this run's: its writes stay refused."""
        assert self.checkpointer is not None
        doubt = self.in_doubt
        if doubt is None or self.saved_step is None or self.namespace:
            return False
        latest = await self.checkpointer.load_latest(self.session_id)
        if latest is None or (latest.step, latest.created_at) != doubt:
            return False
        self.in_doubt = None
        self.saved, self.saved_step = True, latest.step
        return True

    async def continue_seq(self) -> None:
        """Number the next event right after the last stored one (a session loaded from its
        latest checkpoint, whose cursor reserved seqs for its closing events: those stored are
        never numbered again, those never stored leave no gap)."""
        if self.checkpointer is None:
            return
        last = await event_log.last_seq(self.checkpointer, self.session_id, self.stamper.next_seq)
        # (None stored at all, say a run killed before its first event: the log starts at 0.)
        self.stamper.continue_at(last + 1)
