"""Multiple sinks: the same events on the console, in a queue and in a JSON Lines file.

Run: python examples/multiple_sinks.py   (writes run.jsonl in the working directory)
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import weavegraph as wg


async def fetch(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
    for percent in (25, 50, 100):
        ctx.emit("progress", f"{percent}% fetched")
    return wg.NodePartial(extra={"rows": 3})


async def summarize(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
    rows = snapshot.extra["rows"]
    ctx.emit_llm_chunk("Three ")
    ctx.emit_llm_chunk("rows.")
    ctx.emit_llm_final("Three rows.")
    return wg.NodePartial(messages=(wg.Message.assistant(f"{rows} rows"),))


def build() -> wg.App:
    builder = wg.GraphBuilder()
    builder.add_node("fetch", fetch)
    builder.add_node("summarize", summarize)
    builder.add_edge(wg.START, "fetch")
    builder.add_edge("fetch", "summarize")
    builder.add_edge("summarize", wg.END)
    return builder.compile()


async def run(path: Path) -> int:
    queue: asyncio.Queue[wg.Event] = asyncio.Queue()
    await build().invoke_with_sinks(
        wg.VersionedState.new_with_user_message("load the table"),
        [wg.StdOutSink(), wg.ChannelSink(queue), wg.JsonLinesSink(path)],
    )
    return queue.qsize()


def main() -> None:
    path = Path("run.jsonl")
    path.unlink(missing_ok=True)
    received = asyncio.run(run(path))
    print(f"the queue received {received} events")
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    print(f"{path} holds {len(lines)} JSON lines; the last: {lines[-1]['message']}")


if __name__ == "__main__":
    main()
