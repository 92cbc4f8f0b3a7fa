"""The HTTP API and page: start runs, stream their events over SSE, browse sessions and the graph.

Every JSON error has the form ``{"error": message, "code": code}``; no traceback ever reaches a
client, nor does a stored traceback. Every request first passes the checks of ``_guard`` (allowed
``Host``/``Origin``, JSON-only changes, the API token when one is configured).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import re
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

import anyio
import orjson
from sse_starlette.sse import EventSourceResponse
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..app import App
from ..checkpoint import Checkpointer, SessionInfo
from ..checkpoint.postgres import PostgresCheckpointer
from ..config import getenv
from ..errors import (
    CheckpointConflict,
    CheckpointError,
    ConfigError,
    LeaseLost,
    SessionBusy,
    SessionGraphMismatch,
    StateError,
    WeavegraphError,
)
from ..queue import Multitask
from ..runtime.plan import cursor_of, missing_nodes
from ..session_status import PendingInterrupt, describe, stored_status
from ..sessions import NO_ANSWER
from ..state import VersionedState
from ..status import RunStatus, shown_status
from ._body import ApiError, busy, check_keys, not_found, read_json, session_id_of, storable
from ._graph import graph_json
from ._guard import ALLOWED_HOSTS_ENV, HostPolicy, RequestGuard
from ._guard import error_response as _error
from ._queue_runs import QueueRuns
from ._redact import public_state, redact_access_log
from ._requests import RunRequest, Runs, idempotency_key_of, multitask_of
from ._runs import RunManager
from ._serverlog import AccessLog
from ._studio import StudioActions
from ._wakeups import Wakeups

logger = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
SHUTDOWN_GRACE = 10.0
"""Seconds a running session gets to reach its step boundary when the server shuts down."""
CheckpointerFactory = Callable[[], Awaitable[Checkpointer]]


_RUN_KEYS = ("input", "state", "session_id", "answer", "multitask")


def _initial_state(body: dict[str, Any]) -> VersionedState | None:
    check_keys(body, _RUN_KEYS, "a run")
    if "input" in body and "state" in body:
        raise ApiError(400, 'give either "input" or "state", not both')
    if "input" in body:
        if not isinstance(body["input"], str):
            raise ApiError(400, '"input" must be a string')
        return VersionedState.new_with_user_message(body["input"])
    if "state" in body:
        try:
            return VersionedState.from_json_value(body["state"])
        except (StateError, ValueError, TypeError) as exc:
            raise ApiError(400, f'invalid "state": {exc}') from None
    return None


_EVENT_SEQ = re.compile(r"-?[0-9]{1,19}")


def _last_event_id(text: str) -> int:
    """The seq a stream resumes after. Checked before streaming (the seq is a 64-bit column, and a
    stream that failed after its 200 header could only be cut off): ASCII digits only, since
    ``str.isdigit`` also accepts characters such as '²' that ``int`` refuses."""
    match = _EVENT_SEQ.fullmatch(text.strip())
    if match is None or not -1 <= int(match.group()) < 2**63:
        raise ApiError(400, "Last-Event-ID must be an integer event seq")
    return int(match.group())


def _answer(body: dict[str, Any]) -> Any:
    return storable(body["answer"], '"answer"') if "answer" in body else NO_ANSWER


class WebApi:
    """The handlers, bound to one App and (once started) one checkpointer."""

    def __init__(
        self,
        app: App,
        open_checkpointer: CheckpointerFactory,
        context: Any = None,
        *,
        queue: bool = False,
        redis_url: str | None = None,
    ) -> None:
        self.app = app
        self.context = context
        self.queue = queue
        self._open = open_checkpointer
        self._redis_url = redis_url
        self._checkpointer: Checkpointer | None = None
        self._runs: Runs | None = None

    @property
    def runs(self) -> Runs:
        if self._runs is None:
            raise ApiError(503, "the server is starting", "weavegraph::web::unavailable")
        return self._runs

    @property
    def checkpointer(self) -> Checkpointer:
        if self._checkpointer is None:
            raise ApiError(503, "the server is starting", "weavegraph::web::unavailable")
        return self._checkpointer

    @contextlib.asynccontextmanager
    async def lifespan(self, _app: Starlette) -> AsyncGenerator[None]:
        self._checkpointer = checkpointer = await self._open()
        try:
            self._runs = self._runs_on(checkpointer)
            wakeups = await Wakeups.start(checkpointer, self._redis_url)
        except BaseException:
            await checkpointer.close()
            raise
        try:
            yield
        finally:
            # Graceful shutdown: running sessions stop at a step boundary, checkpointed.
            await self._runs.shutdown()
            await wakeups.close()
            await checkpointer.close()

    def _runs_on(self, checkpointer: Checkpointer) -> Runs:
        if not self.queue:
            return RunManager(self.app, checkpointer, self.context)
        if not isinstance(checkpointer, PostgresCheckpointer):
            raise ConfigError(
                f"--queue needs PostgreSQL (the queue lives there), not {type(checkpointer).__name__}",
                help="serve with --db postgresql://... (or --checkpointer postgres)",
            )
        return QueueRuns(checkpointer)

    async def index(self, _request: Request) -> Response:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    async def favicon(self, _request: Request) -> Response:
        # Browsers ask for /favicon.ico whatever the page declares: answer, never a 404.
        return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml")

    async def healthz(self, _request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def start_run(self, request: Request) -> Response:
        body = await read_json(request)
        key = idempotency_key_of(request.headers)
        multitask = multitask_of(body.get("multitask"))
        named = body.get("session_id")
        if key is not None:
            first = await self.runs.replay(key, None if named is None else session_id_of(named))
            if first is not None:  # a retry: the first request's answer, nothing run again
                return JSONResponse(first.to_json_value(), status_code=202)
        state = _initial_state(body)
        answer = _answer(body)
        if "answer" in body and (state is not None or named is None):
            raise ApiError(400, '"answer" goes with a waiting "session_id" and no input or state')
        session_id = session_id_of(named)
        if not await self.runs.busy(session_id):
            await self._check_start(session_id, state, answer, "answer" in body)
        elif multitask is Multitask.REJECT:
            raise busy(session_id)
        accepted = await self.runs.submit(
            session_id, RunRequest(state=state, answer=answer), multitask=multitask, key=key
        )
        return JSONResponse(accepted.to_json_value(), status_code=202)

    async def _check_start(
        self, session_id: str, state: VersionedState | None, answer: Any, answering: bool
    ) -> None:
        """A run of an idle session: it exists (or a state starts it), runs on this graph, and
        waits for the answer given."""
        latest = await self.checkpointer.load_latest(session_id)
        if state is None and latest is None:
            if answering:
                raise not_found(session_id)
            raise ApiError(400, 'a new session needs "input" or "state"')
        unknown = missing_nodes(self.app.spec, latest.frontier) if latest else []
        if unknown:
            mismatch = SessionGraphMismatch(session_id, unknown)
            raise ApiError(409, mismatch.message, "weavegraph::web::other_graph")
        if answer is not NO_ANSWER and (latest is None or cursor_of(latest).interrupt is None):
            raise ApiError(
                409,
                f"session {session_id!r} is not waiting for an answer",
                "weavegraph::web::not_waiting",
            )

    async def run_events(self, request: Request) -> Response:
        session_id = session_id_of(request.path_params["session_id"])
        last = request.headers.get("last-event-id") or request.query_params.get("last_event_id")
        last_event_id = _last_event_id(last) if last else None
        # ?live=1 or Live-Chunks: 1: LLM chunks of a step in flight as they come (no id, see
        # _sse_message)
        live = "1" in (request.query_params.get("live"), request.headers.get("live-chunks"))
        if not await self.runs.known(session_id):
            raise not_found(session_id)

        shutdown = anyio.Event()

        async def stop_runs_on_shutdown() -> None:
            # Server shutdown: runs stop at their next step boundary, so this stream still gets
            # its stream-end event (status=interrupted) before the connection closes.
            await shutdown.wait()
            self.runs.request_stop_all()

        async def stream() -> AsyncIterator[dict[str, str]]:
            watcher = asyncio.create_task(stop_runs_on_shutdown())
            try:
                async for event, sent in self.runs.events(session_id, last_event_id, live=live):
                    yield _sse_message(event, sent)
            finally:
                watcher.cancel()

        return EventSourceResponse(
            stream(),
            ping=15,
            headers={"Cache-Control": "no-store"},
            shutdown_event=shutdown,
            shutdown_grace_period=SHUTDOWN_GRACE,
        )

    async def sessions(self, _request: Request) -> Response:
        stored = sorted(
            await self.checkpointer.list_sessions(), key=lambda i: i.updated_at, reverse=True
        )
        managed = await self.runs.managed([info.session_id for info in stored])
        infos = [await self._describe(info, managed) for info in stored]  # newest first
        return JSONResponse(
            {
                "sessions": [
                    {
                        "session_id": info.session_id,
                        "created_at": info.created_at.isoformat(),
                        "updated_at": info.updated_at.isoformat(),
                        "latest_step": info.latest_step,
                        "running": managed.get(info.session_id) is RunStatus.RUNNING,
                        "status": info.status,
                        "interrupt": _interrupt_json(info.interrupt),
                    }
                    for info in infos
                ]
            },
        )

    async def _describe(self, info: SessionInfo, managed: dict[str, RunStatus]) -> SessionInfo:
        """``info`` with its status and pending interrupt, read from storage (and the queue)."""
        run = managed.get(info.session_id)
        running = (info.session_id,) if run is RunStatus.RUNNING else ()
        described = await describe(self.checkpointer, info, running=running)
        if described.status is None:
            return described
        return dataclasses.replace(described, status=shown_status(described.status, run))

    async def session(self, request: Request) -> Response:
        session_id = session_id_of(request.path_params["session_id"])
        latest = await self.checkpointer.load_latest(session_id)
        if latest is None:
            raise not_found(session_id)
        history = await self.checkpointer.history(session_id)
        run = (await self.runs.managed([session_id])).get(session_id)
        running = run is RunStatus.RUNNING
        status, interrupt = await stored_status(self.checkpointer, latest, running=running)
        return Response(
            orjson.dumps(
                {
                    "session_id": session_id,
                    "step": latest.step,
                    "running": running,
                    "frontier": list(latest.frontier),
                    "status": shown_status(status, run),
                    # A node's ctx.interrupt question: POST /api/runs with "answer" continues.
                    "interrupt": _interrupt_json(interrupt),
                    "state": public_state(latest.state),
                    "history": [
                        {
                            "step": info.step,
                            "created_at": info.created_at.isoformat(),
                            "ran_nodes": list(info.ran_nodes),
                            "skipped_nodes": list(info.skipped_nodes),
                            "updated_channels": list(info.updated_channels),
                        }
                        for info in history
                    ],
                },
                default=str,
            ),
            media_type="application/json",
        )

    async def graph(self, request: Request) -> Response:
        if request.query_params.get("format") == "json":
            return JSONResponse(graph_json(self.app))
        return PlainTextResponse(self.app.to_mermaid())


async def _api_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return _error(exc.status, exc.message, exc.code)


async def _http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return _error(exc.status_code, str(exc.detail), "weavegraph::web::http")


async def _weavegraph_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, WeavegraphError)
    if isinstance(exc, SessionBusy):  # a run started meanwhile (another request, another server)
        busy_now = busy(exc.session_id)
        return _error(busy_now.status, busy_now.message, busy_now.code)
    return _error(_status_of(exc), exc.message, exc.code)


def _status_of(exc: WeavegraphError) -> int:
    """The HTTP status of an error: a missing session 404; a session another writer moved on
    409; a storage failure 503 (the request was fine, the database was not: try again); else the
    request's fault, 400."""
    if isinstance(exc, KeyError):
        return 404
    if isinstance(exc, (CheckpointConflict, LeaseLost)):
        return 409
    if isinstance(exc, CheckpointError):
        return 503
    return 400


async def _internal_error(_request: Request, exc: Exception) -> Response:
    logger.error("internal error while serving a request", exc_info=exc)
    return _error(500, "internal server error", "weavegraph::web::internal")


def _sse_message(event: dict[str, Any], sent: str) -> dict[str, str]:
    """One SSE message. ``id:`` is the event's seq, given only to stored events: a live LLM
    chunk goes without it, and once stored, its id alone follows (so ``Last-Event-ID`` moves on
    without the chunk being sent twice)."""
    seq = event.get("seq")
    if sent == "echo":
        return {"id": str(seq)}
    data = orjson.dumps(event).decode()
    if sent == "stored" and isinstance(seq, int):
        return {"id": str(seq), "data": data}
    return {"data": data}


def _interrupt_json(interrupt: PendingInterrupt | None) -> dict[str, Any] | None:
    return interrupt.to_json_value() if interrupt is not None else None


def create_app(
    app: App,
    open_checkpointer: CheckpointerFactory,
    *,
    api_token: str | None = None,
    context: Any = None,
    allowed_hosts: str | Iterable[str] | None = None,
    queue: bool = False,
    redis_url: str | None = None,
) -> Starlette:
    """The ASGI application serving ``app``. ``open_checkpointer`` runs at startup, in the server's
    event loop. ``api_token`` defaults to ``WEAVEGRAPH_API_TOKEN`` and ``allowed_hosts`` (extra
    ``Host``/``Origin`` names, ``*`` for any) to ``WEAVEGRAPH_ALLOWED_HOSTS`` (environment, else
    ``.env``). ``context`` reaches the nodes of every run as ``ctx.context``.

    ``queue``: run nothing here; every run request goes to the PostgreSQL queue for
    ``weavegraph worker`` processes (the checkpointer must be a PostgresCheckpointer).
    ``redis_url``: also wake event streams through Redis pub/sub (the ``redis`` extra)."""
    api = WebApi(app, open_checkpointer, context, queue=queue, redis_url=redis_url)
    actions = StudioActions(api)
    routes = [
        Route("/", api.index),
        Route("/healthz", api.healthz),
        Route("/favicon.ico", api.favicon),
        Route("/api/runs", api.start_run, methods=["POST"]),
        Route("/api/runs/{session_id}/events", api.run_events),
        Route("/api/runs/{session_id}/cancel", actions.cancel, methods=["POST"]),
        Route("/api/sessions", api.sessions),
        Route("/api/sessions/{session_id}", api.session),
        Route("/api/sessions/{session_id}/resume", actions.resume, methods=["POST"]),
        Route("/api/sessions/{session_id}/fork", actions.fork, methods=["POST"]),
        Route("/api/sessions/{session_id}/state", actions.edit_state, methods=["POST"]),
        Route("/api/sessions/{session_id}/steps/{step:int}", actions.step),
        Route("/api/graph", api.graph),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    web = Starlette(
        routes=routes,
        lifespan=api.lifespan,
        exception_handlers={
            ApiError: _api_error,
            HTTPException: _http_error,
            WeavegraphError: _weavegraph_error,
            Exception: _internal_error,
        },
    )
    # Through weavegraph.config: a token kept in .env protects the server too (the environment wins).
    token = api_token if api_token is not None else getenv("WEAVEGRAPH_API_TOKEN")
    hosts = HostPolicy.parse(
        allowed_hosts if allowed_hosts is not None else getenv(ALLOWED_HOSTS_ENV)
    )
    web.add_middleware(RequestGuard, hosts=hosts, token=token or None, page=STATIC / "index.html")
    web.add_middleware(AccessLog)  # outermost: refused requests are logged too
    redact_access_log()
    return web
