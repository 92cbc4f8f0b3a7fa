"""Event throughput: how many events per second reach a subscriber (SPEC §8 ``stream_updates``).

    .venv/bin/python bench/bench_events.py [--events N] [--reps R]

Measures, best of R repetitions:
* ``publish (no listener)`` — the cost of ``EventBus.publish`` alone;
* ``bus -> subscriber`` — publish N events, a subscriber task reads them all;
* ``run -> subscriber`` — a node emitting N events via ``ctx.emit`` (yielding to the loop every
  100 events, like the cross-framework bench), read live through ``app.invoke_streaming``;
* ``run -> subscriber + sinks`` — the same with a MemorySink and a JsonLinesSink to /dev/null.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import weavegraph as wg
from weavegraph.events import node_event

YIELD_EVERY = 100


async def publish_alone(n: int) -> tuple[float, int]:
    bus = wg.EventBus()
    event = node_event("n", 1, "tick", "x")
    t0 = time.perf_counter()
    for _ in range(n):
        bus.publish(event)
    return time.perf_counter() - t0, n


async def bus_to_subscriber(n: int) -> tuple[float, int]:
    bus = wg.EventBus()
    sub = bus.subscribe()
    event = node_event("n", 1, "tick", "x")

    async def consume() -> int:
        received = 0
        async for _ in sub:
            received += 1
            if received + sub.dropped >= n:
                break
        return received

    consumer = asyncio.create_task(consume())
    t0 = time.perf_counter()
    for i in range(n):
        bus.publish(event)
        if i % YIELD_EVERY == 0:
            await asyncio.sleep(0)
    received = await consumer
    return time.perf_counter() - t0, received


def talker_app(n: int) -> wg.App:
    async def talker(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> None:
        for i in range(n):
            ctx.emit("bench", "tick", i=i)
            if i % YIELD_EVERY == 0:
                await asyncio.sleep(0)

    builder = wg.GraphBuilder().add_node("talker", talker)
    return builder.add_edge(wg.START, "talker").add_edge("talker", wg.END).compile()


async def run_to_subscriber(n: int, *, with_sinks: bool = False) -> tuple[float, int]:
    app = talker_app(n)
    sinks: list[Any] = [wg.MemorySink(), wg.JsonLinesSink("/dev/null")] if with_sinks else []
    t0 = time.perf_counter()
    handle, events = app.invoke_streaming("go", sinks=sinks)
    received = 0
    async for event in events:
        if event.scope == "bench":
            received += 1
    await handle
    return time.perf_counter() - t0, received


async def best_of(
    reps: int, n: int, fn: Callable[[int], Awaitable[tuple[float, int]]]
) -> tuple[float, int]:
    results = [await fn(n) for _ in range(reps)]
    return min(results)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    n = args.events
    cases: list[tuple[str, Callable[[int], Awaitable[tuple[float, int]]]]] = [
        ("publish (no listener)", publish_alone),
        ("bus -> subscriber", bus_to_subscriber),
        ("run -> subscriber", run_to_subscriber),
        ("run -> subscriber + sinks", lambda k: run_to_subscriber(k, with_sinks=True)),
    ]
    print(f"{n} events, best of {args.reps}")
    for name, fn in cases:
        elapsed, received = await best_of(args.reps, n, fn)
        print(
            f"  {name:<28} {received / elapsed:>12,.0f} ev/s"
            f"  {elapsed / n * 1e6:6.2f} us/event  received {received}/{n}"
        )


if __name__ == "__main__":
    asyncio.run(main())
