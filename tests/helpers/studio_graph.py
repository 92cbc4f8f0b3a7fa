"""The graph the studio's browser tests serve (loaded by ``weavegraph serve studio_graph:app``).

Its node output and questions carry HTML payloads the page must show as text. The first user
message decides the path: ``slow ...`` loops ``write`` for a long time (a run to watch, reload
and cancel), ``ask ...`` waits for an answer before ``finish``, anything else runs straight
through.
"""

from __future__ import annotations

import asyncio

import weavegraph as wg

PAYLOAD = '<img src=x onerror="window.pwned=1"><script>window.pwned=2</script>'
WORDS = ("Supersteps ", "keep ", "nodes ", "deterministic.")


async def plan(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
    topic = snapshot.messages[-1].content if snapshot.messages else ""
    ctx.emit("plan", f"planning {topic} {PAYLOAD}")
    return wg.NodePartial(extra={"topic": topic, "payload": PAYLOAD, "rounds": 0})


async def write(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
    slow = str(snapshot.extra["topic"]).startswith("slow")
    stream = f"write-{ctx.step}"
    for word in WORDS:
        await asyncio.sleep(0.12 if slow else 0.01)
        ctx.emit_llm_chunk(word, stream_id=stream)
    ctx.emit_llm_final("".join(WORDS), stream_id=stream)
    return wg.NodePartial(extra={"draft": "".join(WORDS), "rounds": snapshot.extra["rounds"] + 1})


def after_write(snapshot: wg.StateSnapshot) -> str:
    topic = str(snapshot.extra["topic"])
    if topic.startswith("slow") and snapshot.extra["rounds"] < 500:
        return "write"
    return "ask" if topic.startswith("ask") else "finish"


async def ask(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
    answer = ctx.interrupt({"question": f"publish {PAYLOAD}?"})
    return wg.NodePartial(extra={"answer": answer})


async def finish(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
    ctx.emit("finish", f"done after {snapshot.extra['rounds']} round(s)")
    return wg.NodePartial(messages=[wg.Message.assistant(str(snapshot.extra["draft"]))])


def build() -> wg.App:
    builder = wg.GraphBuilder()
    for name, node in (("plan", plan), ("write", write), ("ask", ask), ("finish", finish)):
        builder.add_node(name, node)
    builder.add_edge(wg.START, "plan")
    builder.add_edge("plan", "write")
    builder.add_conditional_edge("write", after_write, targets=["write", "ask", "finish"])
    builder.add_edge("ask", "finish")
    builder.add_edge("finish", wg.END)
    builder.with_max_steps(1000)
    return builder.compile()


app = build()
