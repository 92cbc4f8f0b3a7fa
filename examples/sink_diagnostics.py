"""Sink diagnostics: a failing sink is isolated, reported as diagnostics and in sink health.

Run: python examples/sink_diagnostics.py
"""

from __future__ import annotations

import asyncio

import weavegraph as wg


class FlakyWebhook:
    """A custom sink (name + handle) whose endpoint rejects every node event."""

    name = "webhook"

    def handle(self, event: wg.Event) -> None:
        if event.type == "node":
            raise ConnectionError("webhook endpoint answered 503")


async def work(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
    for item in range(3):
        ctx.emit("work", f"item {item} done")
    return wg.NodePartial(extra={"done": 3})


async def main() -> None:
    builder = wg.GraphBuilder()
    builder.add_node("work", work)
    builder.add_edge(wg.START, "work")
    builder.add_edge("work", wg.END)
    app = builder.compile()

    memory = wg.MemorySink()
    bus = wg.EventBus.with_sinks([FlakyWebhook(), memory])
    diagnostics = bus.diagnostics()

    async def watch() -> None:
        async for diagnostic in diagnostics:
            print(f"sink {diagnostic.sink!r} error #{diagnostic.occurrence}: {diagnostic.error}")

    watcher = asyncio.create_task(watch())
    final = await app.invoke(wg.VersionedState.new_with_user_message("go"), event_bus=bus)
    await bus.aclose()  # delivers what is buffered and ends the diagnostics stream
    await watcher
    for health in bus.sink_health():
        print(f"{health.sink}: {health.error_count} errors (last: {health.last_error})")
    print(
        f"the run was not affected: done={final.extra['done']}, memory sink has {len(memory.snapshot())} events"
    )


if __name__ == "__main__":
    asyncio.run(main())
