"""Talking to a running ``weavegraph serve`` (``sessions cancel``): one JSON request, its answer
or a diagnostic naming what went wrong."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote, urlsplit

from ..config import getenv
from ..errors import ConfigError, WeavegraphError

TIMEOUT_S = 10.0


async def cancel_remote_run(server: str, session_id: str, token: str | None) -> str:
    """Cancel ``session_id``'s run on ``server``; what happened, in words."""
    url = f"{_base(server)}/api/runs/{quote(session_id, safe='')}/cancel"
    await asyncio.to_thread(_post, url, token or getenv("WEAVEGRAPH_API_TOKEN") or None)
    return f"cancelled the run of {session_id} on {_base(server)}"


def _base(server: str) -> str:
    parts = urlsplit(server.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(
            f"--server must be an http(s) URL, got {server!r}",
            help="For example: --server http://127.0.0.1:8000",
        )
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"


def _post(url: str, token: str | None) -> dict[str, Any]:
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=b"{}", headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            return _json(response.read())
    except urllib.error.HTTPError as exc:
        answer = _json(exc.read())
        raise WeavegraphError(
            f"the server answered {exc.code}: {answer.get('error') or exc.reason}"
        ) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise WeavegraphError(
            f"cannot reach the server at {url}: {reason}",
            help="Is `weavegraph serve` running there? Give its address with --server.",
        ) from None


def _json(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body or b"{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}  # pyright: ignore[reportUnknownVariableType]
