"""Map-reduce with Send: a router starts one task per document (a count known only at run time),
each task summarizes its own document, and a reducer node gathers the summaries in order.

Run: python examples/map_reduce.py
"""

from __future__ import annotations

import asyncio

import weavegraph as wg

DOCUMENTS = {
    "supersteps": "Nodes of one step run concurrently on the same snapshot.",
    "barriers": "Partials merge at the barrier in a fixed order, never by completion time.",
    "checkpoints": "Every committed step is saved, so a session resumes after a crash.",
}


def one_task_per_document(snapshot: wg.StateSnapshot) -> list[wg.Send]:
    return [wg.Send("summarize", {"title": title}) for title in snapshot.extra["titles"]]


async def summarize(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
    title = ctx.input["title"]
    await asyncio.sleep(0.01 * len(title) % 3)  # tasks finish in any order
    first_words = " ".join(DOCUMENTS[title].split()[:4])
    return wg.NodePartial(extra={"summaries": [f"{title}: {first_words}..."]})


async def report(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
    text = "\n".join(snapshot.extra["summaries"])
    return wg.NodePartial(messages=[wg.Message.assistant(text)])


def build() -> wg.App:
    builder = wg.GraphBuilder().with_extra_reducer("summaries", wg.reducers.append)
    builder.add_node("summarize", summarize).add_node("report", report)
    builder.add_conditional_edge(wg.START, one_task_per_document, targets=["summarize"])
    builder.add_edge("summarize", "report").add_edge("report", wg.END)
    return builder.compile()


async def main() -> None:
    start = wg.VersionedState.builder().with_extra("titles", list(DOCUMENTS)).build()
    async for update in build().stream(start, modes="updates"):
        print(f"step ran: {', '.join(update)}")
    final = await build().invoke(start)
    print(final.messages[-1].content)


if __name__ == "__main__":
    asyncio.run(main())
