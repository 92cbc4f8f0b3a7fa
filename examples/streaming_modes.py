"""Streaming a run three ways at once: LLM tokens as they come, what each node returned after
every step (updates), and the whole state after every step (values).

Run: python examples/streaming_modes.py
"""

from __future__ import annotations

import asyncio

import weavegraph as wg


async def research(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
    return wg.NodePartial(extra={"facts": ["supersteps", "barriers"]})


async def write(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
    text = ""
    for token in ("Nodes run in ", "supersteps; ", "partials merge ", "at barriers."):
        await asyncio.sleep(0)  # a real model would be awaiting the network here
        ctx.emit_llm_chunk(token, stream_id="answer")
        text += token
    return wg.NodePartial(messages=[wg.Message.assistant(text)])


def build() -> wg.App:
    builder = wg.GraphBuilder().add_node("research", research).add_node("write", write)
    builder.add_edge(wg.START, "research").add_edge("research", "write").add_edge("write", wg.END)
    return builder.compile()


async def main() -> None:
    stream = build().stream("explain supersteps", modes=("messages", "updates", "values"))
    async for mode, chunk in stream:
        if mode == "messages":
            text, metadata = chunk
            print(f"token from {metadata['node_id']}: {text!r}")
        elif mode == "updates":
            print(f"update: {chunk}")
        else:
            print(f"values: {len(chunk['messages'])} messages, extra keys {sorted(chunk['extra'])}")
    print(f"final: {stream.outcome.messages[-1].content}")


if __name__ == "__main__":
    asyncio.run(main())
