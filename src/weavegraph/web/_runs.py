"""Runs started over HTTP: one task, one event bus and one event buffer per session.

A run's events are kept in memory while it is live (so SSE clients get them at once) and appended
to the checkpointer's event log (so a client can resume with ``Last-Event-ID`` after the run, or
after a server restart).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from ..app import App
from ..checkpoint import Checkpointer
from ..events import EventBus
from ..events.bus import LIVE_VIEW_CAPACITY
from ..events.model import Event, is_stream_end_json
from ..partial import NodePartial
from ..runtime.stop import StopRequest
from ..sessions import NO_ANSWER, AppRunner
from ..state import VersionedState
from ..status import RunStatus
from ._serverlog import log_run_end, log_run_start

logger = logging.getLogger(__name__)

_FINISHED_KEPT = 64
"""How many finished runs keep their events in memory (older ones are read from the database)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RunRequest:
    """What a run starts from: a new state (or None to continue the stored session), and how a
    paused session continues (an answer, an edit first, other nodes to run)."""

    state: VersionedState | None = None
    answer: Any = NO_ANSWER
    update: NodePartial | None = None
    goto: Sequence[str] | None = None

    def describe(self) -> str:
        """How the run starts, for the server's log."""
        if self.goto is not None:
            return f"resuming at {', '.join(self.goto) or 'the end'}"
        if self.answer is not NO_ANSWER:
            return "answering its question"
        return "new state" if self.state is not None else "continuing the stored session"


class LiveRun:
    """One session running in this process: its events so far and a way to wait for more.

    It is its run's only sink, called on the event loop (``dispatch = "loop"``).
    """

    dispatch = "loop"

    def __init__(self, session_id: str) -> None:
        self.session_id = session_id
        self.events: list[dict[str, Any]] = []
        self.finished = False
        self.stop = StopRequest()
        self.cancelled = False
        self.task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()
        self._stored = 0

    @property
    def name(self) -> str:
        """The sink name (a LiveRun is the run bus's only sink)."""
        return f"web-run:{self.session_id}"

    def handle(self, event: Event) -> None:
        """Sink entry point: buffer the event and wake every waiting SSE stream."""
        self.events.append(event.to_json_value())
        if event.is_stream_end:
            self.finished = True
        self._notify()

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def wait(self) -> None:
        """Return when a new event arrived or the run finished."""
        await self._changed.wait()

    def mark_finished(self) -> None:
        self.finished = True
        self._notify()

    async def store_pending(self, checkpointer: Checkpointer) -> None:
        """Append the events not yet stored to the session's event log."""
        pending = self.events[self._stored :]
        if pending:
            await checkpointer.append_events(self.session_id, pending)
            self._stored += len(pending)


class RunManager:
    """Starts runs in the background and serves their events, live or stored."""

    def __init__(self, app: App, checkpointer: Checkpointer, context: Any = None) -> None:
        self._app = app
        self._context = context
        self._checkpointer = checkpointer
        self._live: OrderedDict[str, LiveRun] = OrderedDict()

    def is_running(self, session_id: str) -> bool:
        run = self._live.get(session_id)
        return run is not None and not run.finished

    def start(self, session_id: str, request: RunRequest) -> LiveRun:
        """Start (or continue, when the session exists) ``session_id`` in the background."""
        run = LiveRun(session_id)
        self._live[session_id] = run
        self._live.move_to_end(session_id)
        self._forget_old()
        log_run_start(session_id, request.describe())
        run.task = asyncio.create_task(self._run(run, request), name=run.name)
        return run

    def cancel(self, session_id: str) -> bool:
        """Cancel the session's run now (the step in flight is not committed; running the session
        again continues from its last checkpoint). False when it is not running."""
        run = self._live.get(session_id)
        if run is None or run.finished or run.task is None or run.task.done():
            return False
        run.cancelled = True
        run.task.cancel()
        return True

    async def _run(self, run: LiveRun, request: RunRequest) -> None:
        # Framework events too: the page's timeline shows how long each step and node took.
        bus = EventBus.with_sinks([run], capacity=LIVE_VIEW_CAPACITY, lifecycle=True)
        started = time.monotonic()
        status: str = RunStatus.ERROR
        step: int | None = None
        try:
            async with AppRunner(
                self._app, self._checkpointer, event_bus=bus, context=self._context
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
            await bus.aclose()
            run.mark_finished()
            try:
                await run.store_pending(self._checkpointer)
            except Exception:
                logger.exception("could not store the events of %s", run.session_id)

    async def _latest_step(self, session_id: str) -> int | None:
        try:
            latest = await self._checkpointer.load_latest(session_id)
        except Exception:  # the log line goes without it; the failure is logged elsewhere
            return None
        return latest.step if latest is not None else None

    def _forget_old(self) -> None:
        finished = [sid for sid, run in self._live.items() if run.finished]
        for session_id in finished[: max(0, len(finished) - _FINISHED_KEPT)]:
            del self._live[session_id]

    async def events(
        self, session_id: str, last_event_id: int | None
    ) -> AsyncIterator[dict[str, Any]]:
        """The events of one run, live as they happen, ending after its stream-end event.

        Without ``last_event_id``: the session's current (or latest) run from its start. With
        it: every event after that one, from the stored log and then live, up to a stream end.
        """
        run = self._live.get(session_id)
        if run is None:
            async for event in self._stored_run(session_id, last_event_id):
                yield event
            return
        after = -1
        if last_event_id is not None:
            after = last_event_id
            first_live = _seq(run.events[0]) if run.events else None
            # Events of earlier runs of this session come from the log; their stream ends do not
            # end this stream, which follows the live run.
            for event in await self._checkpointer.load_events(session_id, last_event_id):
                if first_live is not None and _seq(event) >= first_live:
                    break
                if not is_stream_end_json(event):
                    yield event
                after = _seq(event)
        async for event in _follow(run, after):
            yield event

    async def _stored_run(
        self, session_id: str, last_event_id: int | None
    ) -> AsyncIterator[dict[str, Any]]:
        stored = await self._checkpointer.load_events(
            session_id, -1 if last_event_id is None else last_event_id
        )
        if last_event_id is None:
            ends = [i for i, event in enumerate(stored[:-1]) if is_stream_end_json(event)]
            stored = stored[ends[-1] + 1 :] if ends else stored
        for event in stored:
            yield event
            if is_stream_end_json(event):
                return

    def request_stop_all(self) -> None:
        """Ask every running session to stop at its next step boundary."""
        for run in self._live.values():
            run.stop.request()

    async def shutdown(self, grace: float = 10.0) -> None:
        """Stop every running session at its next step boundary (checkpointed), then wait."""
        self.request_stop_all()
        running = [run for run in self._live.values() if run.task and not run.task.done()]
        tasks = [run.task for run in running if run.task]
        if not tasks:
            return
        _done, pending = await asyncio.wait(tasks, timeout=grace)
        for task in pending:
            task.cancel()
        for task in pending:
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def _follow(run: LiveRun, after: int) -> AsyncIterator[dict[str, Any]]:
    index = 0
    while True:
        while index < len(run.events):
            event = run.events[index]
            index += 1
            if _seq(event) > after:
                yield event
                if is_stream_end_json(event):
                    return
        if run.finished:
            return
        await run.wait()


def _seq(event: dict[str, Any]) -> int:
    seq = event.get("seq")
    return seq if isinstance(seq, int) else -1
