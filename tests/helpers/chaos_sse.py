"""SSE clients for the chaos suite: each follows one session through ``serve --queue`` servers,
hanging up after a random number of events and reconnecting to a random server with
``Last-Event-ID``, until a server ends the stream after a stream end."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx

END_SCOPE = "__weavegraph_stream_end__"
SERVER_STORAGE_FAILED = b"weavegraph::checkpoint::failed"
"""The error code of a server that could not read its database (say, no pooled connection came
in time): the client asks again, as after a dropped connection."""


async def follow(
    http: httpx.AsyncClient, servers: Sequence[str], sid: str, rng: random.Random,
    retries: list[str],
) -> tuple[list[dict[str, Any]], int]:  # fmt: skip
    """Every event of ``sid`` as received, and how many connections it took. An event without
    an id, or whose id is not its seq, is received as is (the check then fails). A server that
    answered with its own storage failure is asked again (``retries`` records each answer)."""
    got: list[dict[str, Any]] = []
    last = "-1"  # from the log's start, whatever runs it holds
    connections = 0
    while True:
        connections += 1
        headers = {"Last-Event-ID": last}
        hang_up_after = rng.randint(1, 8)
        ended_by_server = True
        url = f"{rng.choice(servers)}/api/runs/{sid}/events"
        try:
            async with http.stream("GET", url, headers=headers, timeout=120) as response:
                if response.status_code != 200:
                    body = await response.aread()
                    if SERVER_STORAGE_FAILED not in body:
                        raise AssertionError(f"{sid}: {response.status_code} {body!r}")
                    retries.append(body.decode())  # the server's own database trouble: again
                    await asyncio.sleep(0.2)
                    continue
                count = 0
                async for ident, event in _messages(response):
                    if ident != str(event.get("seq")):
                        event = {**event, "sse_id": ident}
                    got.append(event)
                    last = ident if ident is not None else last
                    count += 1
                    if count == hang_up_after:
                        ended_by_server = False
                        break
        except httpx.TransportError:  # (a browser reconnects too; Last-Event-ID says where)
            await asyncio.sleep(0.2)
            continue
        if ended_by_server and got and got[-1].get("scope") == END_SCOPE:
            return got, connections
        if ended_by_server:
            await asyncio.sleep(0.2)  # ended without a stream end: ask again


async def _messages(response: httpx.Response) -> AsyncIterator[tuple[str | None, dict[str, Any]]]:
    """``(id, event)`` for each SSE message with data (comments and pings skipped)."""
    ident: str | None = None
    data: list[str] = []
    async for line in response.aiter_lines():
        if line == "":
            if data:
                yield ident, json.loads("\n".join(data))
            ident, data = None, []
        elif line.startswith("id:"):
            ident = line[3:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
