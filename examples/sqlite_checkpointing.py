"""SQLite checkpointing: every step is saved; a stopped session resumes where it left off.

Run: python examples/sqlite_checkpointing.py   (creates workflow.db in the working directory)
"""

from __future__ import annotations

import asyncio

import weavegraph as wg


async def count(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
    n = int(snapshot.extra.get("n", 0)) + 1
    ctx.emit("count", f"n={n}")
    return wg.NodePartial(extra={"n": n})


def again(snapshot: wg.StateSnapshot) -> str:
    return "count" if int(snapshot.extra["n"]) < 5 else wg.END


def build() -> wg.App:
    builder = wg.GraphBuilder()
    builder.add_node("count", count)
    builder.add_edge(wg.START, "count")
    builder.add_conditional_edge("count", again, targets=["count", wg.END])
    return builder.compile()


async def main() -> None:
    app = build()
    checkpointer = await wg.SQLiteCheckpointer.connect("sqlite://workflow.db")
    try:
        # First process: run two steps, then stop (as if the machine went down).
        async with wg.AppRunner(app, checkpointer) as runner:
            await runner.create_session("counter", wg.VersionedState())
            await runner.run_step("counter")
            await runner.run_step("counter")
        # Later: the same session id resumes from the last committed step.
        async with wg.AppRunner(app, checkpointer) as runner:
            init = await runner.create_session("counter", wg.VersionedState())
            print(f"resumed={init.resumed} at step {init.step}")
            final = await runner.run_until_complete("counter")
            print(f"n={final.extra['n']}")
            for info in await runner.history("counter"):
                print(f"  step {info.step}: ran {', '.join(info.ran_nodes) or '-'}")
    finally:
        await checkpointer.close()
    # The resolution order (WEAVEGRAPH_SQLITE_URL, code, SQLITE_DB_NAME, default) applies when
    # the runner picks the database itself:  wg.AppRunner(app, wg.CheckpointerType.SQLite)


if __name__ == "__main__":
    asyncio.run(main())
