"""Process bodies for the two-process fencing tests (``tests/checkpoint/test_fenced_processes``).

Each function runs in its own process (``multiprocessing`` spawn) and reports what it did on a
queue. Processes meet at a ``multiprocessing.Barrier`` so that they race for the same step.
"""

from __future__ import annotations

import asyncio
from typing import Any

import weavegraph as wg
from weavegraph.checkpoint.base import Checkpointer
from weavegraph.testing.conformance import make_checkpoint

ROUNDS = 12
CHAIN = 6


async def open_checkpointer(url: str, schema: str | None) -> Checkpointer:
    if url.startswith("sqlite"):
        return await wg.SQLiteCheckpointer.connect(url)
    return await wg.PostgresCheckpointer.connect(url, schema=schema)


def race_steps(url: str, schema: str | None, sid: str, name: str, barrier: Any, out: Any) -> None:
    """``ROUNDS`` times: load the latest step ``k`` (all processes together), then save ``k+1``
    building on ``k`` with two events. Reports ``(name, won steps, lost (step, expected, stored)),
    or ``(name, "error", text)``."""
    try:
        out.put(asyncio.run(_race(url, schema, sid, name, barrier)))
    except BaseException as exc:  # reported to the test, which fails with it
        out.put((name, "error", f"{type(exc).__name__}: {exc}"))


async def _race(
    url: str, schema: str | None, sid: str, name: str, barrier: Any
) -> tuple[str, list[int], list[tuple[int, int | None, int | None]]]:
    cp = await open_checkpointer(url, schema)
    won: list[int] = []
    lost: list[tuple[int, int | None, int | None]] = []
    try:
        for _ in range(ROUNDS):
            await asyncio.to_thread(barrier.wait)
            latest = await cp.load_latest(sid)
            base = -1 if latest is None else latest.step
            step = base + 1
            await asyncio.to_thread(barrier.wait)  # both have read the same latest step
            events = [{"seq": 2 * step + i, "writer": name, "step": step} for i in (0, 1)]
            try:
                await cp.save(
                    make_checkpoint(sid, step, extra={"writer": name}),
                    builds_on=base,
                    events=events,
                )
                won.append(step)
            except wg.CheckpointConflict as conflict:
                lost.append((step, conflict.expected, conflict.stored))
    finally:
        await cp.close()
    return name, won, lost


def chain_app(barrier: Any) -> wg.App:
    """``n1 -> ... -> nCHAIN``; ``n1`` waits for the other process, so both run step 1 at once."""

    async def first(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
        await asyncio.to_thread(barrier.wait, 30)
        return wg.NodePartial(extra={"n1": ctx.node_id})

    def later(index: int) -> Any:
        def node(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
            return wg.NodePartial(extra={f"n{index}": ctx.node_id})

        return node

    builder = wg.GraphBuilder().add_node("n1", first)
    for index in range(2, CHAIN + 1):
        builder.add_node(f"n{index}", later(index))
    builder.add_edge(wg.START, "n1")
    for index in range(1, CHAIN):
        builder.add_edge(f"n{index}", f"n{index + 1}")
    builder.add_edge(f"n{CHAIN}", wg.END)
    return builder.compile()


def drive_session(
    url: str, schema: str | None, sid: str, name: str, barrier: Any, out: Any
) -> None:
    """Resume ``sid`` (created by the test) with an AppRunner and drive it to its end. Reports
    ``(name, status, final step)`` or ``(name, error type, message)``."""
    try:
        out.put(asyncio.run(_drive(url, schema, sid, name, barrier)))
    except BaseException as exc:
        out.put((name, type(exc).__name__, str(exc)))


async def _drive(
    url: str, schema: str | None, sid: str, name: str, barrier: Any
) -> tuple[str, str, int]:
    cp = await open_checkpointer(url, schema)
    try:
        async with wg.AppRunner(chain_app(barrier), cp) as runner:
            try:
                result = await runner.drive(sid)
            except wg.SessionBusy:
                # Refused before running anything (PostgreSQL: the other process holds the
                # session's claim): meet the other process so that it can go on.
                await asyncio.to_thread(barrier.wait, 30)
                raise
            return name, str(result.status), result.step
    finally:
        await cp.close()
