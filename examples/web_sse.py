"""Web server with Server-Sent Events: one run, one event bus per request (no leaks between runs).

`App.invoke_streaming` starts the run and returns (handle, events) at once; the response streams
the events until the run's stream-end event. (`weavegraph serve` is this pattern plus
persistence, resumable streams and an HTML page.)

Run: python examples/web_sse.py            (drives the app in-process with two concurrent requests)
Or serve it: uvicorn examples.web_sse:web --port 8000, then curl -N localhost:8000/runs?topic=x
(or /sessions/ID/runs?topic=x: the same with an AppRunner per request)
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


async def session_events(request: Request) -> EventSourceResponse:
    """The production pattern: a per-request EventBus with a ChannelSink, and an AppRunner
    built with ``with_options_and_bus`` (checkpointer, autosave, bus, start_listener)."""
    topic = request.query_params.get("topic", "graphs")
    session_id = request.path_params["session_id"]
    queue: asyncio.Queue[wg.Event] = asyncio.Queue()
    bus = wg.EventBus.with_sinks([wg.ChannelSink(queue)])

    async def run() -> None:
        runner = wg.AppRunner.with_options_and_bus(
            APP, wg.CheckpointerType.InMemory, True, bus, True
        )
        async with runner:
            await runner.create_session(session_id, wg.VersionedState.new_with_user_message(topic))
            await runner.run_until_complete(session_id)
        await bus.aclose()

    async def stream() -> AsyncIterator[dict[str, str]]:
        task = asyncio.create_task(run())
        try:
            while not (event := await queue.get()).is_stream_end:
                yield {"id": str(event.seq), "data": event.to_json_string()}
            yield {"id": str(event.seq), "data": event.to_json_string()}
            await task
        finally:
            task.cancel()  # the client went away: stop the run

    return EventSourceResponse(stream())


web = Starlette(
    routes=[Route("/runs", run_events), Route("/sessions/{session_id}/runs", session_events)]
)


async def fetch(
    client: httpx.AsyncClient, topic: str, path: str = "/runs"
) -> list[dict[str, object]]:
    response = await client.get(path, params={"topic": topic})
    return [
        json.loads(line.removeprefix("data: "))
        for line in response.text.splitlines()
        if line.startswith("data: ")
    ]


async def main() -> None:
    transport = httpx.ASGITransport(app=web)
    async with httpx.AsyncClient(transport=transport, base_url="http://example") as client:
        first, second, third = await asyncio.gather(
            fetch(client, "sqlite"),
            fetch(client, "postgres"),
            fetch(client, "runners", "/sessions/req-3/runs"),
        )
    for events in (first, second, third):
        sessions = {event["session_id"] for event in events}
        text = "".join(str(e["message"]) for e in events if e["scope"] == "chunk")
        print(
            f"{len(events)} events from {len(sessions)} session: {text.strip()!r}; last: {events[-1]['message']}"
        )


if __name__ == "__main__":
    asyncio.run(main())
