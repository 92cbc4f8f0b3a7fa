"""Graphs the queue tests run in worker processes (``weavegraph worker queue_flows:app``).

``app``: rounds of split -> 4 parallel nodes (sleeping 0..``WG_TEST_SLEEP_MS`` ms, default 200)
-> join -> merge, looping ``WG_TEST_ROUNDS`` times (default 3: 9 steps after step 0). Its
final state (and each node's events) depends only on the input, never on timing or on which
worker ran which step.
``ask_app``: one node asks a question (``ctx.interrupt``) and records the answer.
``slow_app``: a loop of ``WG_TEST_ROUNDS`` steps each sleeping ``WG_TEST_SLEEP_MS`` ms.
``long_app``: one node sleeping ``WG_TEST_SLEEP_MS`` ms, then another.
"""

from __future__ import annotations

import asyncio
import os
import random
from typing import Any

import weavegraph as wg

WIDTH = 4


def _rounds() -> int:
    return int(os.environ.get("WG_TEST_ROUNDS", "3"))


def _sleep_s() -> float:
    return int(os.environ.get("WG_TEST_SLEEP_MS", "200")) / 1000


def build_app(*, sleep_ms: int | None = None) -> wg.App:
    rounds = _rounds()
    sleep_s = _sleep_s() if sleep_ms is None else sleep_ms / 1000

    async def split(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
        round_ = int(snapshot.extra.get("round", 0)) + 1
        ctx.emit("split", f"round {round_}")
        return wg.NodePartial(extra={"round": round_})

    def part(index: int) -> Any:
        async def node(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
            await asyncio.sleep(random.uniform(0, sleep_s))
            round_ = int(snapshot.extra["round"])
            seed = sum(map(ord, snapshot.messages[0].content)) % 997 + 1 if snapshot.messages else 1
            key = f"w{index}"
            value = int(snapshot.extra.get(key, seed)) * 7 + round_ * (index + 1)
            ctx.emit("part", f"{key}={value % 1_000_003}")
            return wg.NodePartial(extra={key: value % 1_000_003})

        return node

    async def merge(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
        round_ = int(snapshot.extra["round"])
        total = sum(int(snapshot.extra[f"w{i}"]) for i in range(WIDTH))
        return wg.NodePartial(
            messages=(wg.Message.assistant(f"round {round_} total {total}"),),
            extra={"total": total},
        )

    def again(snapshot: wg.StateSnapshot) -> str:
        return "split" if int(snapshot.extra["round"]) < rounds else wg.END

    builder = wg.GraphBuilder().add_node("split", split).add_node("merge", merge)
    names = [f"w{i}" for i in range(WIDTH)]
    for index, name in enumerate(names):
        builder.add_node(name, part(index)).add_edge("split", name)
    return (
        builder.add_edge(wg.START, "split")
        .add_edge(names, "merge")
        .add_conditional_edge("merge", again, targets=["split", wg.END])
        .compile()
    )


def build_ask_app() -> wg.App:
    async def ask(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
        answer = ctx.interrupt({"question": "approve?"})
        return wg.NodePartial(extra={"answer": answer})

    async def done(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
        return wg.NodePartial(extra={"done": True})

    return (
        wg.GraphBuilder()
        .add_node("ask", ask)
        .add_node("done", done)
        .add_edge(wg.START, "ask")
        .add_edge("ask", "done")
        .add_edge("done", wg.END)
        .compile()
    )


def build_slow_app() -> wg.App:
    rounds, sleep_s = _rounds(), _sleep_s()

    async def tick(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
        await asyncio.sleep(sleep_s)
        return wg.NodePartial(extra={"n": int(snapshot.extra.get("n", 0)) + 1})

    def again(snapshot: wg.StateSnapshot) -> str:
        return "tick" if int(snapshot.extra["n"]) < rounds else wg.END

    builder = wg.GraphBuilder().add_node("tick", tick).add_edge(wg.START, "tick")
    return builder.add_conditional_edge("tick", again, targets=["tick", wg.END]).compile()


def build_long_app() -> wg.App:
    """``long`` (sleeping ``WG_TEST_SLEEP_MS`` ms) -> ``done``: two steps after step 0."""
    sleep_s = _sleep_s()

    async def long(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
        await asyncio.sleep(sleep_s)
        ctx.emit("long", "slept")
        return wg.NodePartial(extra={"slept": True})

    async def done(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
        return wg.NodePartial(extra={"done": True})

    return (
        wg.GraphBuilder()
        .add_node("long", long)
        .add_node("done", done)
        .add_edge(wg.START, "long")
        .add_edge("long", "done")
        .add_edge("done", wg.END)
        .compile()
    )


app = build_app
long_app = build_long_app
ask_app = build_ask_app
slow_app = build_slow_app
