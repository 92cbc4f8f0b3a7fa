"""Scale-out on PostgreSQL: queue sessions from one process, run them on stateless workers.

Run: WEAVEGRAPH_POSTGRES_URL=postgresql://localhost/weavegraph python examples/scale_out.py

Here the worker runs inside this script so it is self-contained; in production each worker is
its own process, on any machine: ``weavegraph worker scale_out:app --db postgresql://...``.
"""

from __future__ import annotations

import asyncio

import weavegraph as wg
from weavegraph.config import resolve_postgres_url
from weavegraph.queue import QueueClient, Worker, WorkerOptions
from weavegraph.status import RunStatus


async def greet(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
    name = snapshot.messages[-1].content
    return wg.NodePartial(extra={"greeting": f"hello, {name}!"})


async def shout(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
    return wg.NodePartial(extra={"greeting": str(snapshot.extra["greeting"]).upper()})


builder = wg.GraphBuilder().add_node("greet", greet).add_node("shout", shout)
builder.add_edge(wg.START, "greet").add_edge("greet", "shout").add_edge("shout", wg.END)
app = builder.compile()

NAMES = ("ada", "grace", "linus")


async def main() -> None:
    async with wg.AppRunner(app, "postgres") as runner:
        for name in NAMES:  # the key makes a retried request (a flaky network) a no-op
            await runner.enqueue(f"greet-{name}", name, idempotency_key=f"greet-{name}-v1")
        queue = QueueClient(runner.checkpointer)
        worker = Worker(app, resolve_postgres_url(), WorkerOptions(concurrency=2, lease_s=10))
        running = asyncio.create_task(worker.run())
        for name in NAMES:
            while True:  # a web client would follow the session's event stream instead
                if (await queue.status(f"greet-{name}")).status is RunStatus.COMPLETED:
                    break
                await asyncio.sleep(0.05)
            state = await runner.get_state(f"greet-{name}")
            print(f"greet-{name}: {state.extra['greeting']}")
        worker.drain()  # what SIGTERM does to `weavegraph worker`
        await running
        for name in NAMES:
            await runner.delete_session(f"greet-{name}")


if __name__ == "__main__":
    asyncio.run(main())
