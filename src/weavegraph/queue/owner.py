"""What a worker does with one claimed session: apply its requests, drive it, give it back.

Requests are applied oldest first, one per drive (a start, then an answer, ...), each through
``AppRunner.drive`` — the run loop is the only code that steps a session. Every save passes the
claim's fence (``checkpoint/postgres/_claim``); a lost claim (``LeaseLost``, or a heartbeat that
found the session taken over) drops the session with a WARNING and writes nothing more. A
requested cancel stops the run after its step in flight commits. A session whose claims keep
dying goes ``dead`` after ``max_attempts`` with an ``error`` stream end. A session given back
completed, interrupted, failed or cancelled has a stream end at the end of its log (stored here
when its run's own closing write failed); giving it back is retried after a transient failure.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from ..checkpoint import _codec as codec
from ..checkpoint.postgres._claim import Claim
from ..checkpoint.postgres._claim_batch import ReleaseRequest, release_all
from ..checkpoint.postgres._lease import Lease
from ..checkpoint.postgres._sql import q
from ..errors import CheckpointError, LeaseLost, SessionBusy, SessionError, WeavegraphError
from ..events.model import Event, is_stream_end_json, parse_stream_end, stream_end_event
from ..partial import NodePartial
from ..runtime.stop import StopRequest
from ..runtime.values import NO_ANSWER, StepReport
from ..sessions import AppRunner, SessionInit
from ..state import VersionedState
from ..status import RunStatus
from . import claims, inbox
from .inbox import Request

if TYPE_CHECKING:
    from ..app import App
    from ..checkpoint.postgres import PostgresCheckpointer

__all__ = ["Owner"]

_log = logging.getLogger("weavegraph.queue")


_ENDED = frozenset(
    {RunStatus.COMPLETED, RunStatus.INTERRUPTED, RunStatus.ERROR, RunStatus.CANCELLED}
)
"""Statuses a session is given back with that end its stream (queued: another drive goes on)."""
_RELEASE_RETRIES = (0.2, 0.5, 1.5)
"""Seconds before each new attempt at giving a session back."""


class _Lost(Exception):
    """The claim is gone: stop touching the session."""


@dataclass(frozen=True, slots=True)
class Owner:
    """Drives claimed sessions of one app through one checkpointer."""

    app: App
    checkpointer: PostgresCheckpointer
    context: Any
    max_attempts: int
    drain: StopRequest

    async def own(self, claim: Claim) -> RunStatus | None:
        """Serve ``claim`` until the session has nothing left to do; the status it was given
        back with (None: the claim was lost)."""
        cp, sid = self.checkpointer, claim.session_id
        try:
            with cp.working_under(claim):
                if claim.stale and claim.attempts > self.max_attempts:
                    return await self._bury(claim)
                status, error = await self._serve(claim)
                if status in _ENDED:
                    await self._end_stream(sid, status)
                released = await self.release(claim, status, error)
            if released is None:
                raise _Lost("released by someone else")
            return released
        except (_Lost, LeaseLost) as exc:
            _log.warning("session %s: LeaseLost (epoch %d): %s", sid, claim.epoch, exc)
            return None

    async def _serve(self, claim: Claim) -> tuple[RunStatus, str | None]:
        stopped: _Began | None = None  # a drive stopped to take the next request
        while True:
            requests = await self.checkpointer.execute(lambda conn: self._take(conn, claim))
            if claim.stale and not requests:
                ended = await self._ended(claim.session_id)
                if ended is not None:  # only giving it back was lost: nothing to run again
                    return ended, None
            if any(r.kind == "cancel" for r in requests):
                claim.consume.extend(r.id for r in requests)
                return RunStatus.CANCELLED, None
            request = requests[0] if requests else None
            if request is not None:
                claim.consume.append(request.id)
            try:
                if stopped is not None and request is not None and request.payload.get("rollback"):
                    await self._rollback(claim.session_id, stopped, request)
                stopped = None
                status, began = await self._drive(claim, request)
                if status is None:
                    stopped = began
            except SessionBusy as exc:  # another run holds the session: this claim is not its
                raise _Lost(str(exc)) from exc
            except SessionError as exc:  # e.g. an answer for a session not waiting for one
                if request is None:  # nothing to skip: asking again would fail the same way
                    return RunStatus.ERROR, str(exc)
                _log.warning("session %s: request %s ignored: %s", claim.session_id, request, exc)
                status = None
            except LeaseLost:
                raise
            except CheckpointError as exc:  # the database, not the graph: run it again later
                _log.warning(
                    "session %s: storage failed, back to the queue: %s", claim.session_id, exc
                )
                if request is not None and request.id in claim.consume:  # no commit applied it:
                    claim.consume.remove(request.id)  # it stays for the next claim
                return RunStatus.QUEUED, str(exc)
            except WeavegraphError as exc:
                return RunStatus.ERROR, str(exc)
            if status is RunStatus.STOPPED:  # the worker drains: another one continues
                return RunStatus.QUEUED, None
            if status is not None and len(requests) <= 1:
                return status, None

    async def _rollback(self, sid: str, began: _Began, request: Request) -> None:
        """Put the session back where the stopped drive began, as a new step; a session that
        drive created starts over from the request's state, when it gives one."""
        raw = request.payload.get("state") if began.created else None
        state = VersionedState.from_json_value(raw) if raw is not None else None
        async with AppRunner(self.app, self.checkpointer, context=self.context) as runner:
            report = await runner.restore(sid, began.step, state=state)
        _log.info("session %s rolled back to step %d (as step %d)", sid, began.step, report.step)

    async def _take(self, conn: Any, claim: Claim) -> list[Request]:
        await conn.execute(
            q(
                "UPDATE {schema}.sessions SET cancel_requested = false "
                "WHERE id = %s AND claim_token = %s",
                self.checkpointer.schema,
            ),
            (claim.session_id, claim.token),
        )
        claim.cancel_requested = False
        return await inbox.pending(conn, self.checkpointer.schema, claim.session_id)

    async def _drive(
        self, claim: Claim, request: Request | None
    ) -> tuple[RunStatus | None, _Began]:
        """One drive for ``request``: how it ended (None: cancelled to take the next request)
        and where it began."""
        sid = claim.session_id
        # The run loop stores each step's events with it, fenced by the claim.
        runner = AppRunner(self.app, self.checkpointer, context=self.context)

        async def on_step(report: StepReport) -> None:
            if claim.cancel_requested or claim.lost:
                task = asyncio.current_task()
                if task is not None:
                    task.cancel()

        async with runner:
            how = await _apply(runner, sid, request)
            # (loaded or made once: the drive below finds it live)
            began = how.began or _began(await runner.create_session(sid, how.state))
            driver = asyncio.get_running_loop().create_task(
                runner.drive(
                    sid, how.state, answer=how.answer, update=how.update, goto=how.goto,
                    on_step=on_step, stop=self.drain,
                )
            )  # fmt: skip
            cp = self.checkpointer
            with Lease(cp.execute, cp.schema, claim, cast("asyncio.Task[object]", driver)):
                try:
                    result = await driver
                except asyncio.CancelledError:
                    current = asyncio.current_task()
                    if current is not None and current.cancelling():
                        raise  # this worker itself is being cancelled
                    result = None
            if claim.lost:
                raise _Lost("a heartbeat found the session taken over")
        return (None if result is None else result.status), began

    async def release(self, claim: Claim, status: RunStatus, error: str | None) -> RunStatus | None:
        """Give the session back; a transient failure is retried a few times (a session left
        claimed waits for its lease to expire, and is then claimed and run again)."""
        cp = self.checkpointer
        for delay in (*_RELEASE_RETRIES, None):
            try:
                return await cp.release(claim, status, error)
            except CheckpointError as exc:
                if delay is None:
                    raise
                _log.info("session %s: giving it back failed, retrying: %s", claim.session_id, exc)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def _ended(self, sid: str) -> RunStatus | None:
        """How the session's last run ended, when its log ends with that run's stream end at
        the latest step (completed, interrupted, failed or cancelled); else None."""
        cp = self.checkpointer
        last = await cp.execute(lambda conn: _last_event(conn, cp.schema, sid))
        end = None if last is None else parse_stream_end(Event.from_json_value(last))
        if end is None or end.status not in _ENDED:
            return None
        latest = await cp.load_latest(sid)
        return end.status if latest is not None and latest.step == end.step else None

    async def _end_stream(self, sid: str, status: RunStatus, *, always: bool = False) -> None:
        """Store a stream end with ``status`` unless the log already ends with one (the run's
        own closing write failed, say its connection was cut: nobody else would store it)."""
        cp = self.checkpointer
        last = await cp.execute(lambda conn: _last_event(conn, cp.schema, sid))
        if last is not None and is_stream_end_json(last) and not always:
            return
        latest = await cp.load_latest(sid)
        step = latest.step if latest is not None else 0
        seq = 0 if last is None else int(last["seq"]) + 1
        end = stream_end_event(sid, status, step, seq=seq)
        await cp.append_events(
            sid, [end.to_json_value()], builds_on=None if latest is None else latest.step
        )

    async def _bury(self, claim: Claim) -> RunStatus | None:
        """Too many claims died: ``dead``, with an error stream end."""
        cp, sid = self.checkpointer, claim.session_id
        await self._end_stream(sid, RunStatus.ERROR, always=True)
        error = f"its claims died {claim.attempts - 1} times in a row (max attempts {self.max_attempts})"
        _log.error("session %s is dead: %s", sid, error)

        async def work(conn: Any) -> RunStatus | None:
            await claims.cancel_pending(conn, cp.schema, sid)
            request = ReleaseRequest(claim, RunStatus.DEAD, error)
            await release_all(conn, cp.schema, (request,))
            return request.result

        return await cp.execute(work)


@dataclass(frozen=True, slots=True)
class _Began:
    """Where a drive began: the session's latest step then (``created``: the drive made it, its
    step 0 is where it began)."""

    step: int
    created: bool = False


@dataclass(frozen=True, slots=True)
class _How:
    """What ``drive`` gets for a request."""

    state: VersionedState | None = None
    answer: Any = NO_ANSWER
    update: NodePartial | None = None
    goto: Sequence[str] | None = None
    began: _Began | None = None
    """Where the drive began, when applying the request already loaded the session."""


def _began(init: SessionInit) -> _Began:
    return _Began(init.step) if init.resumed else _Began(0, created=True)


async def _apply(runner: AppRunner, sid: str, request: Request | None) -> _How:
    """What ``drive`` gets for the request: an initial state, an answer (with its edit or
    nodes to continue at); an update is applied here, as its own step."""
    if request is None:
        return _How()
    payload = request.payload
    if request.kind == "answer":
        raw_update = payload.get("update")
        raw_goto = payload.get("goto")
        return _How(
            answer=payload.get("answer"),
            update=None if raw_update is None else NodePartial.from_json_value(raw_update),
            goto=None if raw_goto is None else [str(node) for node in raw_goto],
        )
    if request.kind == "update":
        began = _began(await runner.create_session(sid))
        await runner.update_state(sid, NodePartial.from_json_value(payload["update"]))
        return _How(began=began)
    raw = payload.get("state")
    return _How(state=VersionedState.from_json_value(raw) if raw is not None else None)


async def _last_event(conn: Any, schema: str, sid: str) -> dict[str, Any] | None:
    """The session's last stored event (None: none)."""
    row = await (
        await conn.execute(
            q(
                "SELECT data FROM {schema}.events WHERE session_id = %s ORDER BY seq DESC LIMIT 1",
                schema,
            ),
            (sid,),
        )
    ).fetchone()
    return None if row is None else cast("dict[str, Any]", codec.loads(bytes(row[0])))
