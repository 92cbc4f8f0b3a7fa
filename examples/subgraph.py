"""A research subgraph inside a writing graph: one session, one event stream, one pause.

The child graph searches and then asks a person which source to trust; the parent plans, runs
the child as its ``research`` node, and writes. The child's steps are checkpointed under the
parent's session (namespace ``research``), its events reach the parent's sink with that
namespace, and its question pauses the whole session until ``runner.resume`` answers it.

Run: ``python examples/subgraph.py``
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import weavegraph as wg


async def search(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
    topic = snapshot.extra["topic"]
    ctx.emit("search", f"searching for {topic}")
    return wg.NodePartial(extra={"sources": [f"{topic} handbook", f"{topic} blog"]})


async def choose(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
    pick = ctx.interrupt({"question": "Which source?", "sources": snapshot.extra["sources"]})
    return wg.NodePartial(extra={"source": pick})


async def plan(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
    return wg.NodePartial(extra={"topic": "supersteps"})


async def write(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
    text = f"On {snapshot.extra['topic']}, per the {snapshot.extra['source']}."
    return wg.NodePartial(messages=[wg.Message.assistant(text)])


def build() -> wg.App:
    research = wg.GraphBuilder().add_node("search", search).add_node("choose", choose)
    research.add_edge(wg.START, "search").add_edge("search", "choose").add_edge("choose", wg.END)
    parent = wg.GraphBuilder().add_node("plan", plan).add_node("research", research.compile())
    parent.add_node("write", write).add_edge(wg.START, "plan").add_edge("plan", "research")
    return parent.add_edge("research", "write").add_edge("write", wg.END).compile()


async def main(folder: Path) -> None:
    app = build()
    sink = wg.MemorySink()
    bus = wg.EventBus(sinks=[sink])
    url = f"sqlite://{folder / 'research.db'}"
    async with wg.AppRunner(app, "sqlite", db_url=url, event_bus=bus) as runner:
        await runner.create_session("essay", wg.VersionedState())
        await runner.run_until_complete("essay")
        info = await runner.session_info("essay")
        pending = info.interrupt
        assert pending is not None
        print(f"essay: {info.status} in {pending.namespace}/{pending.node}: {pending.value}")
        final = await runner.resume("essay", "supersteps handbook")
        print(f"wrote: {final.messages[-1].content}")
        steps = await runner.checkpointer.history("essay", namespace="research")
        print(f"research steps saved: {[step.step for step in steps]}")
        print(f"sessions listed: {[s.session_id for s in await runner.list_sessions()]}")
    for event in sink.snapshot():
        if event.scope == "search":
            print(f"event from {event.namespace}: {event.message}")
    print(app.to_mermaid().splitlines()[3].strip())


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(main(Path(tmp)))
