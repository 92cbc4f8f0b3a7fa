"""The real web app in-process for tests (its lifespan running, with an in-memory checkpointer),
and every request its routes answer."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

import weavegraph as wg
from weavegraph.checkpoint import Checkpointer
from weavegraph.config import open_checkpointer
from weavegraph.web.app import create_app

PARAM = re.compile(r"\{(\w+)(?::(\w+))?\}")


async def _answer(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
    return wg.NodePartial(extra={"answered": True})


def small_app() -> wg.App:
    builder = wg.GraphBuilder()
    builder.add_node("answer", _answer)
    builder.add_edge(wg.START, "answer")
    builder.add_edge("answer", wg.END)
    return builder.compile()


async def _memory() -> Checkpointer:
    return await open_checkpointer("memory")


def every_request(web: Starlette, session_id: str = "nobody") -> list[tuple[str, str]]:
    """``(method, path)`` for every method of every route of ``web`` (path parameters filled with
    ``session_id``, or 1 for numbers), so a route added later is covered too."""
    found: list[tuple[str, str]] = []
    for route in web.routes:
        if isinstance(route, Route):
            path = PARAM.sub(
                lambda m: "1" if m.group(2) in ("int", "float") else session_id, route.path
            )
            found += [(method, path) for method in sorted(route.methods or {"GET"})]
        elif isinstance(route, Mount):
            app: Any = route.app
            name = "app.js" if isinstance(app, StaticFiles) else "nothing"
            found.append(("GET", f"{route.path}/{name}"))
    return found


@dataclass
class InProcess:
    """A client of the app and every ``(method, path)`` its routes answer."""

    client: httpx.AsyncClient
    web: Starlette
    requests: list[tuple[str, str]]

    async def send(
        self, method: str, path: str, headers: dict[str, Any] | None = None
    ) -> httpx.Response:
        """One request as the page sends it: JSON ``{}`` for methods that change something."""
        all_headers = dict(headers or {})
        content = None
        if method not in ("GET", "HEAD", "OPTIONS"):
            all_headers.setdefault("Content-Type", "application/json")
            content = b"{}"
        return await self.client.request(method, path, headers=all_headers, content=content)


@asynccontextmanager
async def serve_in_process(
    token: str = "", allowed_hosts: str = "", app: wg.App | None = None
) -> AsyncIterator[InProcess]:
    """The app with exactly these settings (the caller keeps the environment and .env out)."""
    web = create_app(app or small_app(), _memory, api_token=token, allowed_hosts=allowed_hosts)
    async with web.router.lifespan_context(web):
        transport = httpx.ASGITransport(app=web, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield InProcess(client, web, every_request(web))
