"""Retries, timeouts and cancelling: a flaky call retried with backoff, a slow one bounded, a
runaway loop capped by max_steps, and a long run cancelled or stopped and resumed.

Run: python examples/retries_timeouts_cancel.py
"""

from __future__ import annotations

import asyncio
from typing import Any

import weavegraph as wg

failures = {"left": 2}


async def flaky_api(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
    if failures["left"]:
        failures["left"] -= 1
        raise ConnectionError("upstream hiccup")
    return wg.NodePartial(extra={"data": "fetched"})


async def slow_api(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
    await asyncio.sleep(30)
    return wg.NodePartial(extra={"never": True})


async def tick(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
    await asyncio.sleep(0.01)
    return wg.NodePartial(extra={"ticks": snapshot.extra.get("ticks", 0) + 1})


def one_node(node_id: str, fn: Any, **options: Any) -> wg.App:
    builder = wg.GraphBuilder().add_node(node_id, fn, **options)
    return builder.add_edge(wg.START, node_id).add_edge(node_id, wg.END).compile()


def ticker() -> wg.App:
    builder = wg.GraphBuilder().add_node("tick", tick).add_edge(wg.START, "tick")
    return builder.add_conditional_edge(
        "tick", lambda s: "tick", targets=["tick", wg.END]
    ).compile()


async def main() -> None:
    retry = wg.RetryPolicy(max_attempts=3, initial_delay=0.01, retry_on=ConnectionError)
    final = await one_node("fetch", flaky_api, retry=retry).invoke(wg.VersionedState())
    print(f"retried: {final.extra['data']} after 2 failures")

    try:
        await one_node("slow", slow_api, timeout=0.1).invoke(wg.VersionedState())
    except wg.NodeRunError as err:
        print(f"timed out: node {err.node} at step {err.step} ({type(err.__cause__).__name__})")

    try:
        await ticker().invoke(wg.VersionedState(), max_steps=5)
    except wg.StepLimitExceeded as err:
        print(f"capped: {err}")

    handle, events = ticker().invoke_streaming(wg.VersionedState())
    await asyncio.sleep(0.05)
    handle.cancel()
    print(f"cancelled: {[event async for event in events][-1].message}")

    async with wg.AppRunner(ticker(), "memory") as runner:
        await runner.create_session("ticker", wg.VersionedState())
        for _ in range(3):
            await runner.run_step("ticker")
        runner.request_stop()  # e.g. from a signal handler: honoured at the next step boundary
        stopped = await runner.run_until_complete("ticker")
        print(f"stopped at ticks={stopped.extra['ticks']}")
        await runner.run_step("ticker")  # running it again goes on where it stopped
        print(f"resumed: ticks={(await runner.get_state('ticker')).extra['ticks']}")


if __name__ == "__main__":
    asyncio.run(main())
