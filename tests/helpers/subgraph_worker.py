"""A session with a subgraph, run in a subprocess by the subgraph crash test.

``python subgraph_worker.py DB LOG [--hang NODE]`` creates or resumes session ``nested`` on the
SQLite file DB and runs it to completion: START -> research (a child graph: a -> b -> c) -> after
-> END. Every node appends its name to LOG as it starts; with ``--hang NODE`` that node prints
``hanging`` and blocks, so the test can kill the process in the middle of the child. Once
complete it prints ``FINAL <extra as JSON>``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from typing import Any

import weavegraph as wg


def record(log: str, name: str) -> None:
    """Append ``name`` to the log, on disk before the node goes on (it may be killed next)."""
    with open(log, "a", encoding="utf-8") as out:
        out.write(name + "\n")
        out.flush()
        os.fsync(out.fileno())


def build_app(log: str, hang: str | None) -> wg.App:
    def node(name: str) -> Any:
        async def run(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
            record(log, name)
            if name == hang:
                print("hanging", flush=True)
                await asyncio.Event().wait()
            trail = [*snapshot.extra.get("trail", []), name]
            return wg.NodePartial(extra={"trail": trail})

        return run

    child = wg.GraphBuilder()
    for name in ("a", "b", "c"):
        child.add_node(name, node(name))
    child.add_edge(wg.START, "a").add_edge("a", "b").add_edge("b", "c").add_edge("c", wg.END)
    parent = (
        wg.GraphBuilder().add_node("research", child.compile()).add_node("after", node("after"))
    )
    parent.add_edge(wg.START, "research").add_edge("research", "after").add_edge("after", wg.END)
    return parent.compile()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("db")
    parser.add_argument("log")
    parser.add_argument("--hang")
    args = parser.parse_args()
    app = build_app(args.log, args.hang)
    async with wg.AppRunner(app, "sqlite", db_url=f"sqlite://{args.db}") as runner:
        await runner.create_session("nested", wg.VersionedState())
        final = await runner.run_until_complete("nested")
    print("FINAL " + json.dumps(dict(final.extra)), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
