"""Reading what a request sends: its JSON body (bounded), session ids and partial state updates.

Every refusal is an :class:`ApiError`, answered as ``{"error", "code"}`` with its status.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request

from ..errors import InvalidSessionId, StateError
from ..partial import NodePartial
from ..runtime.values import new_session_id, validate_session_id
from ..state import freeze_json

MAX_BODY_BYTES = 1_000_000
"""Largest accepted request body (413 beyond)."""


class ApiError(Exception):
    """An error answered as JSON with a status code."""

    def __init__(
        self, status: int, message: str, code: str = "weavegraph::web::bad_request"
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code


def not_found(session_id: str) -> ApiError:
    return ApiError(404, f"no session {session_id!r}", "weavegraph::web::not_found")


def busy(session_id: str) -> ApiError:
    return ApiError(409, f"session {session_id!r} is already running", "weavegraph::web::busy")


async def read_json(request: Request) -> dict[str, Any]:
    """The body as a JSON object: 413 beyond :data:`MAX_BODY_BYTES`, 400 when not an object."""
    declared = request.headers.get("content-length")
    if (
        declared is not None
        and declared.isascii()
        and declared.isdigit()
        and int(declared) > MAX_BODY_BYTES
    ):
        raise _too_large()
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise _too_large()
    try:
        value = orjson.loads(bytes(body))
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, f"malformed JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ApiError(400, "the body must be a JSON object")
    return value  # pyright: ignore[reportUnknownVariableType]


def _too_large() -> ApiError:
    return ApiError(
        413, f"request body larger than {MAX_BODY_BYTES} bytes", "weavegraph::web::too_large"
    )


def check_keys(body: dict[str, Any], allowed: tuple[str, ...], what: str) -> None:
    """A typo such as ``"inputt"`` is refused, never dropped silently."""
    unknown = sorted(str(key) for key in body if key not in allowed)
    if unknown:
        raise ApiError(400, f"unknown key(s) {unknown}; {what} takes {', '.join(allowed)}")


def session_id_of(value: object) -> str:
    """A valid session id (a new one for None); 400 naming the problem otherwise."""
    if value is None:
        return new_session_id()
    try:
        return validate_session_id(value)
    except InvalidSessionId as exc:
        raise ApiError(400, str(exc), exc.code) from None


def partial_of(value: object, what: str) -> NodePartial:
    """A partial update ``{"messages"?, "extra"?, "errors"?}``; 400 naming the problem."""
    try:
        return NodePartial.from_json_value(value)
    except StateError as exc:
        raise ApiError(400, f"invalid {what}: {exc.message}") from None


def storable(value: object, what: str) -> Any:
    """``value`` frozen as stored JSON; 400 naming the problem (it is stored with the session, so
    it is refused before anything runs)."""
    try:
        return freeze_json(value)
    except ValueError as exc:
        raise ApiError(400, f"invalid {what}: {exc}") from None
