"""What the server's terminal shows: one line per request, one per run start and end.

Both go to the ``weavegraph.web.server`` logger (INFO). ``weavegraph serve`` shows it on stderr
with :func:`show_server_log`; an application embedding :func:`~weavegraph.web.create_app` routes
that logger wherever its logging goes. A ``?token=`` in a logged URL is redacted.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import IO, Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ._redact import redact_token

SERVER_LOGGER: Final = "weavegraph.web.server"
"""The logger of request and run lines."""

server_log = logging.getLogger(SERVER_LOGGER)


class _ServerLogHandler(logging.StreamHandler[IO[str]]):
    """The handler :func:`show_server_log` installs (recognized so it is installed once)."""


def show_server_log(stream: IO[str] | None = None) -> None:
    """Print the request and run lines on ``stream`` (stderr), ``HH:MM:SS message``."""
    if any(isinstance(h, _ServerLogHandler) for h in server_log.handlers):
        return
    handler = _ServerLogHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", datefmt="%H:%M:%S"))
    server_log.addHandler(handler)
    server_log.setLevel(logging.INFO)
    server_log.propagate = False


class AccessLog:
    """ASGI middleware: one line per HTTP request, when its response starts (a stream's line
    comes as the stream opens, with the time to its first byte)."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = time.perf_counter()
        logged = False

        async def send_logged(message: Message) -> None:
            nonlocal logged
            if message["type"] == "http.response.start" and not logged:
                logged = True
                _log_request(scope, int(message["status"]), time.perf_counter() - started)
            await send(message)

        try:
            await self._app(scope, receive, send_logged)
        finally:
            if not logged:  # the client went away before any answer
                _log_request(scope, 499, time.perf_counter() - started)


def _log_request(scope: Scope, status: int, seconds: float) -> None:
    if not server_log.isEnabledFor(logging.INFO):
        return
    client = scope.get("client")
    who = str(client[0]) if client else "-"
    query = scope.get("query_string", b"").decode("latin-1")
    target = str(scope.get("path", "")) + (f"?{query}" if query else "")
    server_log.info(
        '%s "%s %s HTTP/%s" %d %.1f ms',
        who,
        scope.get("method", "-"),
        redact_token(target),
        scope.get("http_version", "1.1"),
        status,
        seconds * 1000,
    )


def log_run_start(session_id: str, how: str) -> None:
    server_log.info("run %s started (%s)", session_id, how)


def log_run_end(session_id: str, status: str, step: int | None, seconds: float) -> None:
    where = f" at step {step}" if step is not None else ""
    server_log.info("run %s ended: %s%s in %.2f s", session_id, status, where, seconds)
