"""A session run in a subprocess by the crash and shutdown tests (not collected: no ``test_``).

``python session_worker.py DB SESSION [--wait-at ROUND]`` creates or resumes SESSION on the SQLite
file DB and runs it until it completes or is stopped (SIGTERM/SIGINT stop it at a step boundary).
It prints ``progress <round> <node>`` lines while running, ``END <stream-end message>``, and, once
complete, ``FINAL <state JSON>``. With ``--wait-at R`` the split of round R prints ``waiting`` and
blocks until a line arrives on stdin (so a test can signal it mid-run deterministically).
The graph is deterministic: rounds of split -> 4 parallel workers -> join -> merge, looping.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

import weavegraph as wg
from weavegraph.events.model import Event

ROUNDS = 66  # 3 supersteps a round: about 200 steps
WORKERS = 4


def progress(round_: int, node: str) -> None:
    print(f"progress {round_} {node}", flush=True)


def build_app(wait_at: int | None = None) -> wg.App:
    async def split(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
        round_ = int(snapshot.extra.get("round", 0)) + 1
        progress(round_, "split")
        if round_ == wait_at:
            print("waiting", flush=True)
            await asyncio.to_thread(sys.stdin.readline)
        return wg.NodePartial(extra={"round": round_})

    def worker(index: int) -> Any:
        async def node(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
            round_ = int(snapshot.extra["round"])
            key = f"w{index}"
            value = int(snapshot.extra.get(key, 0)) * 3 + round_ * (index + 1)
            return wg.NodePartial(extra={key: value % 1_000_003})

        return node

    async def merge(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
        round_ = int(snapshot.extra["round"])
        total = sum(int(snapshot.extra[f"w{i}"]) for i in range(WORKERS))
        progress(round_, "merge")
        return wg.NodePartial(
            messages=(wg.Message.assistant(f"round {round_} total {total}"),),
            extra={"total": total},
        )

    def again(snapshot: wg.StateSnapshot) -> str:
        return "split" if int(snapshot.extra["round"]) < ROUNDS else wg.END

    builder = wg.GraphBuilder().add_node("split", split).add_node("merge", merge)
    names = [f"w{i}" for i in range(WORKERS)]
    for name, index in zip(names, range(WORKERS), strict=True):
        builder.add_node(name, worker(index)).add_edge("split", name)
    return (
        builder.add_edge(wg.START, "split")
        .add_edge(names, "merge")
        .add_conditional_edge("merge", again, targets=["split", wg.END])
        .compile()
    )


class EndPrinter:
    """Prints the stream-end events (what a watcher of the run would see last)."""

    lifecycle = False
    last = ""

    def publish(self, event: Event) -> None:
        if event.is_stream_end:
            self.last = event.message
            print(f"END {event.message}", flush=True)


async def main(db: str, session_id: str, wait_at: int | None) -> int:
    app = build_app(wait_at)
    ends = EndPrinter()
    runner = wg.AppRunner(
        app, wg.CheckpointerType.SQLite, db_url=f"sqlite://{db}", event_bus=ends,
        stop_on_signals=True,
    )  # fmt: skip
    async with runner:
        await runner.create_session(session_id, "start")
        state = await runner.run_until_complete(session_id)
        if " status=completed " in ends.last:
            print("FINAL " + json.dumps(state.to_json_value(), sort_keys=True), flush=True)
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("db")
    parser.add_argument("session")
    parser.add_argument("--wait-at", type=int, default=None)
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.db, args.session, args.wait_at)))
