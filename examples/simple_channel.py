"""Simple pattern (CLI tools): run a workflow, then read every event it emitted from a channel.

Run: python examples/simple_channel.py
"""

from __future__ import annotations

import asyncio

import weavegraph as wg


async def greet(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
    name = snapshot.messages[-1].content
    ctx.emit("greeting", f"greeting {name}")
    return wg.NodePartial(messages=(wg.Message.assistant(f"Hello, {name}!"),))


async def shout(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
    ctx.emit("shouting", "turning the volume up")
    return wg.NodePartial(extra={"loud": snapshot.messages[-1].content.upper()})


def build() -> wg.App:
    builder = wg.GraphBuilder()
    builder.add_node("greet", greet)
    builder.add_node("shout", shout)
    builder.add_edge(wg.START, "greet")
    builder.add_edge("greet", "shout")
    builder.add_edge("shout", wg.END)
    return builder.compile()


async def main() -> None:
    app = build()
    final, events = await app.invoke_with_channel(wg.VersionedState.new_with_user_message("Ada"))
    async for event in events:  # ends after the stream-end event
        print(f"event #{event.seq}: {event.type} {event.scope}: {event.message}")
    print("final:", final.extra["loud"])


if __name__ == "__main__":
    asyncio.run(main())
