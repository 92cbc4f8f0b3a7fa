"""Runs started over HTTP in this process, and every session's events streamed from its log.

A run's events are stored with the steps that emit them, so an SSE stream reads the log (an event
gets its SSE id once it is stored) and is woken when this process commits; a session that another
process runs on the same database streams the same way (the log is polled, and on PostgreSQL
``NOTIFY`` wakes it). The server keeps no events in memory.

A request for a session running here follows its multitask policy as far as one process can:
``reject`` (409), ``enqueue`` (run it when the current run ends) and ``interrupt`` (stop the
current run at its next step boundary, then run it). ``rollback`` needs the queue's workers
(``serve --queue``) and is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Sequence
from typing import Any

from ..app import App
from ..checkpoint import Checkpointer
from ..errors import SessionBusy
from ..events import EventBus
from ..events import log as event_log
from ..events.model import LLM_CHUNK_SCOPE, Event, EventType
from ..partial import NodePartial
from ..queue import Multitask
from ..runtime.stop import StopRequest
from ..sessions import AppRunner
from ..status import RunStatus
from ._body import ApiError
from ._replays import Replays
from ._requests import Accepted, RunRequest
from ._serverlog import log_run_end, log_run_start

logger = logging.getLogger(__name__)

LIVE_CHUNKS = 4096
"""LLM chunks of a run kept for its live streams (older ones are only read once stored)."""


class LiveRun:
    """One session running in this process: its task, its stop request, where its events start
    in the session's log, and its latest LLM chunks (sent live, before their step is stored).

    It is its run's bus's one sink (inline: called where the event is emitted, any thread).
    """

    dispatch = "inline"

    def __init__(self, session_id: str) -> None:
        self.session_id = session_id
        self.stop = StopRequest()
        self.cancelled = False
        self.task: asyncio.Task[None] | None = None
        self.waiting: deque[RunRequest] = deque()
        """Requests to run after the current one (multitask ``enqueue``/``interrupt``)."""
        self.starts_after = -1
        """The session's last stored seq before this run (its stream starts after it)."""
        self.chunks: deque[dict[str, Any]] = deque(maxlen=LIVE_CHUNKS)
        # Framework events on: the page's timeline shows how long each step and node took.
        self.bus = EventBus.with_sinks([self], lifecycle=True)

    @property
    def name(self) -> str:
        return f"web-run:{self.session_id}"

    def handle(self, event: Event) -> None:
        """Keep an LLM chunk for the streams following the run, and wake them."""
        if event.scope == LLM_CHUNK_SCOPE and event.type == EventType.LLM:
            self.chunks.append(event.to_json_value())
            event_log.ring(self.session_id)

    def live(self) -> list[dict[str, Any]]:
        """The chunks kept, oldest first."""
        return list(self.chunks)


class RunManager:
    """Starts runs in the background and streams sessions' stored events."""

    def __init__(
        self,
        app: App,
        checkpointer: Checkpointer,
        context: Any = None,
        *,
        stale_after: float | None = None,
    ) -> None:
        self._app = app
        self._context = context
        self._checkpointer = checkpointer
        self._live: dict[str, LiveRun] = {}
        self._replays = Replays()
        self._stale_after = event_log.stale_after_default() if stale_after is None else stale_after

    def is_running(self, session_id: str) -> bool:
        return session_id in self._live

    async def busy(self, session_id: str) -> bool:
        return self.is_running(session_id)

    async def known(self, session_id: str) -> bool:
        return self.is_running(session_id) or (
            await self._checkpointer.load_latest(session_id) is not None
        )

    async def managed(self, session_ids: Sequence[str]) -> dict[str, RunStatus]:
        return {sid: RunStatus.RUNNING for sid in session_ids if sid in self._live}

    async def replay(self, key: str, session_id: str | None) -> Accepted | None:
        return await self._replays.replay(key, session_id)

    async def submit(
        self, session_id: str, request: RunRequest, *, multitask: Multitask, key: str | None
    ) -> Accepted:
        """Start the run, or (multitask) queue it behind the one in progress here."""
        if multitask is Multitask.ROLLBACK:
            raise ApiError(
                400,
                'multitask "rollback" needs the queue\'s workers (weavegraph serve --queue on '
                "PostgreSQL); this server runs sessions itself and supports reject, enqueue "
                "and interrupt",
            )
        async with self._replays.first(key) as answer:
            run = self._live.get(session_id)
            if run is None:
                await self.start(session_id, request)
            elif multitask is Multitask.REJECT:
                raise SessionBusy(session_id)
            else:
                run.waiting.append(request)
                if multitask is Multitask.INTERRUPT:
                    run.stop.request()
            accepted = Accepted(session_id=session_id)
            if answer is not None:
                answer.set_result(accepted)
            return accepted

    async def start(self, session_id: str, request: RunRequest) -> LiveRun:
        """Start (or continue, when the session exists) ``session_id`` in the background."""
        run = LiveRun(session_id)
        self._live[session_id] = run  # first: a second start of it is refused meanwhile
        try:
            run.starts_after = await event_log.last_seq(self._checkpointer, session_id)
        except BaseException:
            del self._live[session_id]
            raise
        run.waiting.append(request)
        run.task = asyncio.create_task(self._run(run), name=run.name)
        return run

    async def cancel(self, session_id: str) -> bool:
        """Cancel the session's run now, and the requests waiting behind it (the step in
        flight is not committed; running the session again continues from its last
        checkpoint). False when it is not running."""
        run = self._live.get(session_id)
        if run is None or run.task is None or run.task.done():
            return False
        run.cancelled = True
        run.waiting.clear()
        run.task.cancel()
        return True

    async def edit(self, session_id: str, partial: NodePartial) -> tuple[int, dict[str, Any]]:
        """Record the edit as the session's next step, now."""
        async with AppRunner(self._app, self._checkpointer, context=self._context) as runner:
            report = await runner.update_state(session_id, partial)
        return 200, {
            "session_id": session_id,
            "step": report.step,
            "updated_channels": list(report.updated_channels),
        }

    async def _run(self, run: LiveRun) -> None:
        """Drive the session for each request waiting, oldest first."""
        try:
            while run.waiting and not run.cancelled:
                request = run.waiting.popleft()
                run.stop = StopRequest()
                await self._drive(run, request)
        finally:
            await run.bus.aclose()
            if self._live.get(run.session_id) is run:
                del self._live[run.session_id]
            event_log.ring(run.session_id)  # its streams see it is over

    async def _drive(self, run: LiveRun, request: RunRequest) -> None:
        log_run_start(run.session_id, request.describe())
        started = time.monotonic()
        status: str = RunStatus.ERROR
        step: int | None = None
        try:
            async with AppRunner(
                self._app,
                self._checkpointer,
                event_bus=run.bus,
                context=self._context,
            ) as runner:
                result = await runner.drive(
                    run.session_id,
                    request.state,
                    answer=request.answer,
                    update=request.update,
                    goto=request.goto,
                    stop=run.stop,
                )
                status, step = result.status, result.step
        except asyncio.CancelledError:
            status = RunStatus.CANCELLED
            task = asyncio.current_task()
            if not run.cancelled or (task is not None and task.uncancel() > 0):
                raise  # the server is going away, not (only) a person's cancel
        except Exception:
            # The failure is in the stream-end event and the errors channel; the log keeps detail.
            logger.exception("run %s failed", run.session_id)
        finally:
            if step is None:  # cancelled or failed: the session stands at its last checkpoint
                step = await self._latest_step(run.session_id)
            log_run_end(run.session_id, str(status), step, time.monotonic() - started)

    async def _latest_step(self, session_id: str) -> int | None:
        try:
            latest = await self._checkpointer.load_latest(session_id)
        except Exception:  # the log line goes without it; the failure is logged elsewhere
            return None
        return latest.step if latest is not None else None

    async def events(
        self, session_id: str, last_event_id: int | None, *, live: bool = False
    ) -> AsyncIterator[tuple[dict[str, Any], str]]:
        """The session's stored events after ``last_event_id``, then each one as it is stored,
        ending after its stream end (see ``weavegraph.events.log``), each with how it is sent:
        ``stored`` (with its id), ``live`` (an LLM chunk of a step in flight: no id) or ``echo``
        (a chunk sent live, now stored: its id alone; only with ``live``). Without
        ``last_event_id``: from the start of its run in progress here, else of its last run
        (``-1``: every run)."""
        run = self._live.get(session_id)
        after = last_event_id
        if after is None:
            if run is not None:
                after = run.starts_after
            else:
                after = await event_log.last_run_start(self._checkpointer, session_id)
        sent_live: set[int] = set()
        async for event, stored in event_log.follow(
            self._checkpointer,
            session_id,
            after=after,
            running=lambda: session_id in self._live,
            stale_after=self._stale_after,
            live=run.live if run is not None and live else None,
        ):
            seq = event.get("seq")
            if not stored:
                if isinstance(seq, int):
                    sent_live.add(seq)
                yield event, "live"
            elif seq in sent_live:
                sent_live.discard(seq)
                yield event, "echo"
            else:
                yield event, "stored"

    def request_stop_all(self) -> None:
        """Ask every running session to stop at its next step boundary (nothing queued behind
        it starts)."""
        for run in self._live.values():
            run.waiting.clear()
            run.stop.request()

    async def shutdown(self, grace: float = 10.0) -> None:
        """Stop every running session at its next step boundary (checkpointed), then wait."""
        self.request_stop_all()
        tasks = [run.task for run in self._live.values() if run.task and not run.task.done()]
        if not tasks:
            return
        _done, pending = await asyncio.wait(tasks, timeout=grace)
        for task in pending:
            task.cancel()
        for task in pending:
            with contextlib.suppress(asyncio.CancelledError):
                await task
