"""The SPEC section 8 workloads on weavegraph, through its public API only.

``python bench/wg_workloads.py WORKLOAD --size N`` prints one JSON line. The graphs mirror
``lg_workloads.py`` node for node: async nodes with trivial bodies, so what is measured is the
framework (scheduling, merging, checkpointing, event delivery).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from _common import (
    LARGE_VALUE_BYTES,
    PAYLOAD_BYTES,
    POSTGRES_POOL_SIZE,
    SESSION_STEPS,
    STREAM_YIELD_EVERY,
    bench_schema,
    bytes_written,
    drop_schema,
    files_size,
    large_step_stats,
    max_rss_kb,
    now,
    postgres_url,
    run_sessions,
    run_workload_cli,
    sqlite_files,
    step_window_stats,
    stream_vs_invoke,
)

import weavegraph as wg

FRAMEWORK = "weavegraph"
RSS_IMPORT_KB = max_rss_kb()
BENCH_SCOPE = "bench"

NodeFn = Callable[[wg.StateSnapshot, Any], Awaitable[wg.NodePartial | None]]


def _writer(index: int) -> NodeFn:
    async def node(snapshot: wg.StateSnapshot, ctx: Any) -> wg.NodePartial:
        return wg.NodePartial(extra={"last": index})

    return node


def _talker(index: int) -> NodeFn:
    async def node(snapshot: wg.StateSnapshot, ctx: Any) -> wg.NodePartial:
        ctx.emit(BENCH_SCOPE, "node", i=index)
        return wg.NodePartial(extra={"last": index})

    return node


def build_chain(size: int, make: Callable[[int], NodeFn] = _writer) -> wg.App:
    builder = wg.GraphBuilder()
    names = [f"n{i}" for i in range(size)]
    for i, name in enumerate(names):
        builder.add_node(name, make(i))
    builder.add_edge(wg.START, names[0])
    for a, b in itertools.pairwise(names):
        builder.add_edge(a, b)
    builder.add_edge(names[-1], wg.END)
    return builder.compile()


def initial_state(**extra: Any) -> wg.VersionedState:
    builder = wg.VersionedState.builder()
    for key, value in extra.items():
        builder = builder.with_extra(key, value)
    return builder.build()


async def chain100(size: int, workdir: Path) -> dict[str, Any]:
    t0 = now()
    app = build_chain(size)
    compile_s = now() - t0
    await app.invoke(initial_state(last=-1))  # warm-up: first-call caches on both sides
    t0 = now()
    out = await app.invoke(initial_state(last=-1))
    total = now() - t0
    assert out.extra["last"] == size - 1, out.extra
    return {"value": total / size * 1e6, "total_s": total, "compile_s": compile_s}


async def fanout1000(size: int, workdir: Path) -> dict[str, Any]:
    async def source(snapshot: wg.StateSnapshot, ctx: Any) -> None:
        return None

    async def worker(snapshot: wg.StateSnapshot, ctx: Any) -> None:
        return None

    async def join(snapshot: wg.StateSnapshot, ctx: Any) -> wg.NodePartial:
        return wg.NodePartial(extra={"last": size})

    t0 = now()
    builder = wg.GraphBuilder()
    builder.add_node("source", source)
    builder.add_node("join", join)
    builder.add_edge(wg.START, "source")
    for i in range(size):
        name = f"w{i}"
        builder.add_node(name, worker)
        builder.add_edge("source", name)
        builder.add_edge(name, "join")
    builder.add_edge("join", wg.END)
    app = builder.compile()
    compile_s = now() - t0
    rss_before = max_rss_kb()
    t0 = now()
    out = await app.invoke(initial_state(last=-1))
    total = now() - t0
    assert out.extra["last"] == size, out.extra
    return {
        "value": total / size * 1e6,
        "total_s": total,
        "compile_s": compile_s,
        "rss_before_run_kb": rss_before,
    }


def build_loop(size: int, node: NodeFn | None = None) -> wg.App:
    async def step(snapshot: wg.StateSnapshot, ctx: Any) -> wg.NodePartial:
        return wg.NodePartial(extra={"count": snapshot.extra["count"] + 1})

    def route(snapshot: wg.StateSnapshot) -> str:
        return "step" if snapshot.extra["count"] < size else wg.END

    builder = wg.GraphBuilder()
    builder.add_node("step", node or step)
    builder.add_edge(wg.START, "step")
    builder.add_conditional_edge("step", route, targets=["step", wg.END])
    builder.with_max_steps(size + 10)
    return builder.compile()


async def loop1000(size: int, workdir: Path) -> dict[str, Any]:
    t0 = now()
    app = build_loop(size)
    compile_s = now() - t0
    t0 = now()
    out = await app.invoke(initial_state(count=0))
    total = now() - t0
    assert out.extra["count"] == size, out.extra
    return {"value": total / size * 1e6, "total_s": total, "compile_s": compile_s}


async def _run_session(
    app: wg.App, checkpointer: Any, session_id: str, state: wg.VersionedState
) -> wg.VersionedState:
    """The documented path: an AppRunner session on the given checkpointer."""
    async with wg.AppRunner(app, checkpointer) as runner:
        await runner.create_session(session_id, state)
        return await runner.run_until_complete(session_id)


def _count_steps(db: Path, session_id: str) -> int:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        sql = "SELECT COUNT(*) FROM steps WHERE session_id = ?"
        return int(conn.execute(sql, (session_id,)).fetchone()[0])


async def chain100_sqlite(size: int, workdir: Path) -> dict[str, Any]:
    db = workdir / "wg_chain.db"
    for path in sqlite_files(db):
        path.unlink(missing_ok=True)
    app = build_chain(size)
    checkpointer = await wg.SQLiteCheckpointer.connect(f"sqlite://{db.resolve()}")
    try:
        await _run_session(app, checkpointer, "warmup", initial_state(last=-1))
        t0 = now()
        out = await _run_session(app, checkpointer, "bench", initial_state(last=-1))
        total = now() - t0
    finally:
        await checkpointer.close()
    assert out.extra["last"] == size - 1, out.extra
    return {
        "value": total / size * 1e6,
        "total_s": total,
        "checkpoints": _count_steps(db, "bench"),
        "db_bytes": files_size(sqlite_files(db)),
    }


async def _count_events(
    app: wg.App, state: wg.VersionedState, expected: int
) -> tuple[int, int, float]:
    """Run ``app`` with an EventBus subscriber counting node events; (received, dropped, secs)."""
    bus = wg.EventBus.with_sinks([])
    subscription = bus.subscribe()
    received = 0
    last_seen = now()

    async def consume() -> None:
        nonlocal received, last_seen
        async for event in subscription:
            if event.scope == BENCH_SCOPE:
                received += 1
                last_seen = now()
                if received == expected:
                    return
            elif event.is_stream_end:
                return

    consumer = asyncio.create_task(consume())
    t0 = now()
    # No checkpointer, as on the LangGraph side: only event delivery is measured.
    await app.invoke(state, event_bus=bus)
    run_done = now()
    # Stop waiting once the run is over and the subscriber has had a fair chance to drain.
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(consumer), timeout=5.0)
    consumer.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await consumer
    # Like LangGraph's astream loop, the clock stops when both the run and the delivery are done.
    return received, bus.metrics().dropped, max(run_done, last_seen) - t0


async def stream_updates(size: int, workdir: Path) -> dict[str, Any]:
    async def talker(snapshot: wg.StateSnapshot, ctx: Any) -> wg.NodePartial:
        for i in range(size):
            ctx.emit(BENCH_SCOPE, "tick", i=i)
            if i % STREAM_YIELD_EVERY == 0:
                await asyncio.sleep(0)
        return wg.NodePartial(extra={"last": size})

    builder = wg.GraphBuilder()
    builder.add_node("talker", talker)
    builder.add_edge(wg.START, "talker")
    builder.add_edge("talker", wg.END)
    app = builder.compile()
    received, dropped, total = await _count_events(app, initial_state(last=-1), size)
    return {"value": received / total, "total_s": total, "received": received, "dropped": dropped}


async def stream_steps(size: int, workdir: Path) -> dict[str, Any]:
    async def step(snapshot: wg.StateSnapshot, ctx: Any) -> wg.NodePartial:
        count = snapshot.extra["count"] + 1
        ctx.emit(BENCH_SCOPE, "step", count=count)
        return wg.NodePartial(extra={"count": count})

    app = build_loop(size, step)
    received, dropped, total = await _count_events(app, initial_state(count=0), size)
    return {"value": received / total, "total_s": total, "received": received, "dropped": dropped}


async def _streamed(app: wg.App, size: int) -> float:
    """One ``invoke_streaming`` run with every event read, setup included; seconds."""
    t0 = now()
    received = 0
    async with app.invoke_streaming(initial_state(last=-1)) as (handle, events):
        async for event in events:
            received += event.scope == BENCH_SCOPE
        out = await handle
    total = now() - t0
    assert received == size, received
    assert out.extra["last"] == size - 1, out.extra
    return total


async def _invoked(app: wg.App, size: int) -> float:
    t0 = now()
    out = await app.invoke(initial_state(last=-1))
    total = now() - t0
    assert out.extra["last"] == size - 1, out.extra
    return total


async def stream_chain100(size: int, workdir: Path) -> dict[str, Any]:
    app = build_chain(size, _talker)
    return await stream_vs_invoke(lambda: _streamed(app, size), lambda: _invoked(app, size), size)


async def state_growth(size: int, workdir: Path) -> dict[str, Any]:
    db = workdir / "wg_growth.db"
    for path in sqlite_files(db):
        path.unlink(missing_ok=True)
    stamps: list[float] = []
    chunk = "x" * PAYLOAD_BYTES

    async def step(snapshot: wg.StateSnapshot, ctx: Any) -> wg.NodePartial:
        stamps.append(now())
        return wg.NodePartial(messages=(wg.Message.assistant(chunk),))

    def route(snapshot: wg.StateSnapshot) -> str:
        return "step" if len(snapshot.messages) < size else wg.END

    builder = wg.GraphBuilder()
    builder.add_node("step", step)
    builder.add_edge(wg.START, "step")
    builder.add_conditional_edge("step", route, targets=["step", wg.END])
    builder.with_max_steps(size + 10)
    app = builder.compile()
    checkpointer = await wg.SQLiteCheckpointer.connect(f"sqlite://{db.resolve()}")
    try:
        t0 = now()
        out = await _run_session(app, checkpointer, "growth", wg.VersionedState.builder().build())
        total = now() - t0
    finally:
        await checkpointer.close()
    assert len(out.messages) == size, len(out.messages)
    disk = files_size(sqlite_files(db))
    payload = size * PAYLOAD_BYTES
    return {
        "value": total / size * 1e6,
        "total_s": total,
        "db_bytes": disk,
        "payload_bytes": payload,
        "disk_ratio": disk / payload,
        **step_window_stats(stamps),
    }


async def _many_sessions(checkpointer: Any, count: int) -> dict[str, Any]:
    """``count`` sessions of a SESSION_STEPS-node chain through one AppRunner (after one warm-up
    session), each created and run to completion as a whole."""
    app = build_chain(SESSION_STEPS)

    async with wg.AppRunner(app, checkpointer) as runner:

        async def one(index: int) -> None:
            session_id = f"s{index}"
            await runner.create_session(session_id, initial_state(last=-1))
            out = await runner.run_until_complete(session_id)
            assert out.extra["last"] == SESSION_STEPS - 1, out.extra

        await one(-1)
        total = await run_sessions(count, one)
    return {"value": count / total, "total_s": total, "steps": SESSION_STEPS}


async def sessions(size: int, workdir: Path) -> dict[str, Any]:
    db = workdir / "wg_sessions.db"
    for path in sqlite_files(db):
        path.unlink(missing_ok=True)
    checkpointer = await wg.SQLiteCheckpointer.connect(f"sqlite://{db.resolve()}")
    try:
        result = await _many_sessions(checkpointer, size)
    finally:
        await checkpointer.close()
    return {**result, "db_bytes": files_size(sqlite_files(db))}


async def sessions_pg(size: int, workdir: Path) -> dict[str, Any]:
    url, schema = postgres_url(), bench_schema(FRAMEWORK)
    checkpointer = await wg.PostgresCheckpointer.connect(
        url, schema=schema, max_size=POSTGRES_POOL_SIZE
    )
    try:
        return await _many_sessions(checkpointer, size)
    finally:
        await checkpointer.close()
        drop_schema(url, schema)


async def large_extra(size: int, workdir: Path) -> dict[str, Any]:
    """``size`` steps, each changing one small key next to a large untouched value (SQLite)."""
    db = workdir / "wg_large.db"
    for path in sqlite_files(db):
        path.unlink(missing_ok=True)
    marks: list[tuple[float, int]] = []

    async def step(snapshot: wg.StateSnapshot, ctx: Any) -> wg.NodePartial:
        marks.append((now(), bytes_written()))
        return wg.NodePartial(extra={"count": snapshot.extra["count"] + 1})

    app = build_loop(size, step)
    checkpointer = await wg.SQLiteCheckpointer.connect(f"sqlite://{db.resolve()}")
    state = initial_state(big="x" * LARGE_VALUE_BYTES, count=0)
    try:
        t0 = now()
        out = await _run_session(app, checkpointer, "large", state)
        total = now() - t0
    finally:
        await checkpointer.close()
    assert out.extra["count"] == size, out.extra["count"]
    return {**large_step_stats(marks), "total_s": total, "db_bytes": files_size(sqlite_files(db))}


async def map_reduce(size: int, workdir: Path) -> dict[str, Any]:
    """A router sends ``size`` tasks, each returns one item, a reducer gathers them."""

    def fan_out(snapshot: wg.StateSnapshot) -> list[wg.Send]:
        return [wg.Send("item", i) for i in range(snapshot.extra["n"])]

    async def item(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
        return wg.NodePartial(extra={"items": [ctx.input]})

    async def reduce(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
        return wg.NodePartial(extra={"total": len(snapshot.extra["items"])})

    builder = wg.GraphBuilder().with_extra_reducer("items", wg.reducers.append)
    builder.add_node("item", item).add_node("reduce", reduce)
    builder.add_conditional_edge(wg.START, fan_out, targets=["item"])
    builder.add_edge("item", "reduce").add_edge("reduce", wg.END)
    app = builder.compile()
    await app.invoke(initial_state(n=10))  # warm-up: first-call caches on both sides
    rss_before = max_rss_kb()
    t0 = now()
    out = await app.invoke(initial_state(n=size))
    total = now() - t0
    assert out.extra["total"] == size, out.extra["total"]
    return {"value": total / size * 1e6, "total_s": total, "rss_before_run_kb": rss_before}


async def workers(size: int, workdir: Path) -> dict[str, Any]:
    """``size`` queued sessions run by 1, 2 and 4 ``weavegraph worker`` processes, and the
    takeover after kill -9 (``bench_workers``; in a thread: it runs its own event loops)."""
    import bench_workers

    takeover = min(bench_workers.TAKEOVER_SESSIONS, max(4, size // 5))
    return await asyncio.to_thread(
        bench_workers.measure, size, bench_workers.WORKER_COUNTS, bench_workers.CONCURRENCY,
        takeover,
    )  # fmt: skip


ALL_WORKLOADS = (
    chain100,
    fanout1000,
    loop1000,
    chain100_sqlite,
    stream_chain100,
    stream_updates,
    stream_steps,
    state_growth,
    sessions,
    sessions_pg,
    large_extra,
    map_reduce,
    workers,
)

if __name__ == "__main__":
    run_workload_cli(FRAMEWORK, ALL_WORKLOADS, RSS_IMPORT_KB)
