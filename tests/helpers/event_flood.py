"""``python event_flood.py DB EVENTS``: one node emits EVENTS events of 1 KB each on a SQLite
session; prints ``RSS <kb before> <peak kb after> <events stored>`` (peak RSS of this process)."""

from __future__ import annotations

import asyncio
import resource
import sys

import weavegraph as wg

PAYLOAD = "x" * 1024


def _rss_kb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


async def main(db: str, total: int) -> None:
    async def flood(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> None:
        for i in range(total):
            ctx.emit("flood", PAYLOAD, i=i)
            if i % 1000 == 0:
                await asyncio.sleep(0)

    builder = wg.GraphBuilder().add_node("flood", flood).add_edge(wg.START, "flood")
    app = builder.add_edge("flood", wg.END).compile()
    async with wg.AppRunner(app, "sqlite", db_url=f"sqlite://{db}") as runner:
        await runner.create_session("warm", "go")  # imports and caches, before measuring
        before = _rss_kb()
        await runner.create_session("flood", "go")
        await runner.run_until_complete("flood")
        stored = 0
        async for _event in runner.events("flood"):
            stored += 1
    print("RSS", before, _rss_kb(), stored, flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
