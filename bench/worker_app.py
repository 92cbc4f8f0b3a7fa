"""The graph the ``workers`` benchmark's ``weavegraph worker`` processes run (``worker_app:app``).

A chain of SESSION_STEPS nodes, each setting ``extra["last"]`` (as ``sessions`` does); each node
first sleeps ``WG_BENCH_NODE_SLEEP_MS`` (0 unless set: the takeover measurement needs sessions
that are still running when their worker is killed).
"""

from __future__ import annotations

import asyncio
import itertools
import os
from typing import Any

from _common import SESSION_STEPS

import weavegraph as wg

SLEEP_S = float(os.environ.get("WG_BENCH_NODE_SLEEP_MS", "0")) / 1000


def _node(index: int) -> Any:
    async def node(snapshot: wg.StateSnapshot, ctx: Any) -> wg.NodePartial:
        if SLEEP_S:
            await asyncio.sleep(SLEEP_S)
        return wg.NodePartial(extra={"last": index})

    return node


def build_app(size: int = SESSION_STEPS) -> wg.App:
    builder = wg.GraphBuilder()
    names = [f"n{i}" for i in range(size)]
    for i, name in enumerate(names):
        builder.add_node(name, _node(i))
    builder.add_edge(wg.START, names[0])
    for a, b in itertools.pairwise(names):
        builder.add_edge(a, b)
    builder.add_edge(names[-1], wg.END)
    return builder.compile()


app = build_app()
