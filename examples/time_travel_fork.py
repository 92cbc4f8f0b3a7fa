"""Time travel: inspect every step of a session, go back to one, change it, and fork a new run.

Run: python examples/time_travel_fork.py   (creates travel.db in the working directory)
"""

from __future__ import annotations

import asyncio

import weavegraph as wg


async def propose(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
    budget = snapshot.extra["budget"]
    return wg.NodePartial(extra={"plan": "hotel" if budget >= 100 else "hostel"})


async def book(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
    return wg.NodePartial(messages=[wg.Message.assistant(f"booked a {snapshot.extra['plan']}")])


def build() -> wg.App:
    builder = wg.GraphBuilder().add_node("propose", propose).add_node("book", book)
    builder.add_edge(wg.START, "propose").add_edge("propose", "book").add_edge("book", wg.END)
    return builder.compile()


async def main() -> None:
    checkpointer = await wg.SQLiteCheckpointer.connect("sqlite://travel.db")
    async with wg.AppRunner(build(), checkpointer) as runner:
        start = wg.VersionedState.builder().with_extra("budget", 50).build()
        await runner.create_session("trip", start)
        final = await runner.run_until_complete("trip")
        print(f"trip: {final.messages[-1].content}")
        for info in await runner.history("trip"):
            print(f"  step {info.step}: ran {', '.join(info.ran_nodes) or '-'}")
        # Go back to the state before anything ran, raise the budget, and run that instead.
        await runner.fork("trip", 0, "trip-rich")
        await runner.update_state("trip-rich", wg.NodePartial(extra={"budget": 500}))
        rich = await runner.run_until_complete("trip-rich")
        print(f"trip-rich: {rich.messages[-1].content}")
        print(f"trip still says: {(await runner.get_state('trip')).messages[-1].content}")
    await checkpointer.close()


if __name__ == "__main__":
    asyncio.run(main())
