"""A map-reduce session run in a subprocess by the kill -9 test (not collected: no ``test_``).

``python send_worker.py DB`` creates or resumes session ``job`` on the SQLite file DB: a router
sends ``TASKS`` tasks, each prints ``ran <n>`` when it starts, sleeps a little and returns its
item; a reducer sums them. Prints ``FINAL <items JSON>`` once complete.
"""

from __future__ import annotations

import asyncio
import json
import sys

import weavegraph as wg

TASKS = 30


def build_app() -> wg.App:
    async def work(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
        print(f"ran {ctx.input}", flush=True)
        await asyncio.sleep(0.05)
        return wg.NodePartial(extra={"items": [ctx.input]})

    async def reduce(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
        return wg.NodePartial(extra={"total": sum(snapshot.extra["items"])})

    builder = wg.GraphBuilder().with_extra_reducer("items", wg.reducers.append)
    builder.add_node("work", work).add_node("reduce", reduce)
    builder.add_edge("work", "reduce").add_edge("reduce", wg.END)
    builder.add_conditional_edge(
        wg.START, lambda s: [wg.Send("work", n) for n in range(TASKS)], targets=["work"]
    )
    return builder.with_max_concurrency(3).compile()


async def main(db: str) -> None:
    checkpointer = await wg.SQLiteCheckpointer.connect(f"sqlite://{db}")
    async with wg.AppRunner(build_app(), checkpointer) as runner:
        await runner.create_session("job", wg.VersionedState())
        final = await runner.run_until_complete("job")
    await checkpointer.close()
    print(f"FINAL {json.dumps(list(final.extra['items']))}", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
