"""Web server with Server-Sent Events: one run, one event bus per request (no leaks between runs).

`App.invoke_streaming` starts the run and returns (handle, events) at once; the response streams
the events until the run's stream-end event. (`weavegraph serve` is this pattern plus
persistence, resumable streams and an HTML page.)

Run: python examples/web_sse.py            (drives the app in-process with two concurrent requests)
Or serve it: uvicorn examples.web_sse:web --port 8000, then curl -N localhost:8000/runs?topic=x
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
from sse_starlette.sse import EventSourceResponse
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route

import weavegraph as wg


async def research(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
    topic = snapshot.messages[-1].content
    for word in f"notes about {topic}".split():
        ctx.emit_llm_chunk(word + " ")
        await asyncio.sleep(0)
    ctx.emit_llm_final(f"notes about {topic}")
    return wg.NodePartial(extra={"topic": topic})


def build() -> wg.App:
    builder = wg.GraphBuilder()
    builder.add_node("research", research)
    builder.add_edge(wg.START, "research")
    builder.add_edge("research", wg.END)
    return builder.compile()


APP = build()


async def run_events(request: Request) -> EventSourceResponse:
    topic = request.query_params.get("topic", "graphs")
    # A fresh bus for this request: its client sees only its own run's events.
    run = APP.invoke_streaming(wg.VersionedState.new_with_user_message(topic))

    async def stream() -> AsyncIterator[dict[str, str]]:
        async with run as (_handle, events):  # leaving early (client gone) cancels the run
            async for event in events:
                yield {"id": str(event.seq), "data": event.to_json_string()}

    return EventSourceResponse(stream())


web = Starlette(routes=[Route("/runs", run_events)])


async def fetch(client: httpx.AsyncClient, topic: str) -> list[dict[str, object]]:
    response = await client.get("/runs", params={"topic": topic})
    return [
        json.loads(line.removeprefix("data: "))
        for line in response.text.splitlines()
        if line.startswith("data: ")
    ]


async def main() -> None:
    transport = httpx.ASGITransport(app=web)
    async with httpx.AsyncClient(transport=transport, base_url="http://example") as client:
        first, second = await asyncio.gather(fetch(client, "sqlite"), fetch(client, "postgres"))
    for events in (first, second):
        sessions = {event["session_id"] for event in events}
        text = "".join(str(e["message"]) for e in events if e["scope"] == "chunk")
        print(
            f"{len(events)} events from {len(sessions)} session: {text.strip()!r}; last: {events[-1]['message']}"
        )


if __name__ == "__main__":
    asyncio.run(main())
