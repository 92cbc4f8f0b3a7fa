"""The SPEC section 8 workloads on LangGraph (run inside .bench-venv, where langgraph is installed).

``python bench/lg_workloads.py WORKLOAD --size N`` prints one JSON line. The graphs mirror
``wg_workloads.py`` node for node; every node is ``async`` and the graph runs with ``ainvoke`` /
``astream``, the same execution mode weavegraph uses.
"""
# pyright: reportMissingImports=false, reportUnknownMemberType=false, reportAttributeAccessIssue=false

from __future__ import annotations

import asyncio
import itertools
import operator
import sqlite3
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, TypedDict

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
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph
from langgraph.types import Send

FRAMEWORK = "langgraph"
RSS_IMPORT_KB = max_rss_kb()
DURABILITY = "sync"
"""Commit each checkpoint before the next step starts: the guarantee weavegraph always gives
(LangGraph's default, "async", writes checkpoints in the background while the next step runs)."""


class ChainState(TypedDict):
    last: int


class LoopState(TypedDict):
    count: int


class LargeState(TypedDict):
    big: str
    count: int


class LogState(TypedDict):
    log: Annotated[list[str], operator.add]


def _writer(index: int) -> Callable[[ChainState], Coroutine[Any, Any, ChainState]]:
    async def node(state: ChainState) -> ChainState:
        return {"last": index}

    return node


def _talker(index: int) -> Callable[[ChainState], Coroutine[Any, Any, ChainState]]:
    async def node(state: ChainState) -> ChainState:
        get_stream_writer()({"i": index})
        return {"last": index}

    return node


def build_chain(size: int, make: Callable[[int], Any] = _writer) -> Any:
    graph = StateGraph(ChainState)
    names = [f"n{i}" for i in range(size)]
    for i, name in enumerate(names):
        graph.add_node(name, make(i))
    graph.add_edge(START, names[0])
    for a, b in itertools.pairwise(names):
        graph.add_edge(a, b)
    graph.add_edge(names[-1], END)
    return graph


async def chain100(size: int, workdir: Any) -> dict[str, Any]:
    t0 = now()
    app = build_chain(size).compile()
    compile_s = now() - t0
    await app.ainvoke({"last": -1})  # warm-up: first-call caches on both sides
    t0 = now()
    out = await app.ainvoke({"last": -1})
    total = now() - t0
    assert out["last"] == size - 1, out
    return {"value": total / size * 1e6, "total_s": total, "compile_s": compile_s}


async def fanout1000(size: int, workdir: Any) -> dict[str, Any]:
    async def source(state: ChainState) -> None:
        return None

    async def worker(state: ChainState) -> None:
        return None

    async def join(state: ChainState) -> ChainState:
        return {"last": size}

    t0 = now()
    graph = StateGraph(ChainState)
    graph.add_node("source", source)
    graph.add_node("join", join)
    graph.add_edge(START, "source")
    for i in range(size):
        name = f"w{i}"
        graph.add_node(name, worker)
        graph.add_edge("source", name)
        graph.add_edge(name, "join")
    graph.add_edge("join", END)
    app = graph.compile()
    compile_s = now() - t0
    rss_before = max_rss_kb()
    t0 = now()
    out = await app.ainvoke({"last": -1})
    total = now() - t0
    assert out["last"] == size, out
    return {
        "value": total / size * 1e6,
        "total_s": total,
        "compile_s": compile_s,
        "rss_before_run_kb": rss_before,
    }


def build_loop(size: int) -> Any:
    async def step(state: LoopState) -> LoopState:
        return {"count": state["count"] + 1}

    def route(state: LoopState) -> str:
        return "step" if state["count"] < size else END

    graph = StateGraph(LoopState)
    graph.add_node("step", step)
    graph.add_edge(START, "step")
    graph.add_conditional_edges("step", route, ["step", END])
    return graph


async def loop1000(size: int, workdir: Any) -> dict[str, Any]:
    t0 = now()
    app = build_loop(size).compile()
    compile_s = now() - t0
    config = {"recursion_limit": size + 10}
    t0 = now()
    out = await app.ainvoke({"count": 0}, config)
    total = now() - t0
    assert out["count"] == size, out
    return {"value": total / size * 1e6, "total_s": total, "compile_s": compile_s}


def _count_checkpoints(db: Any, thread_id: str) -> int:
    with sqlite3.connect(db) as conn:
        sql = "SELECT COUNT(*) FROM checkpoints WHERE thread_id = ?"
        return int(conn.execute(sql, (thread_id,)).fetchone()[0])


async def chain100_sqlite(size: int, workdir: Any) -> dict[str, Any]:
    db = workdir / "lg_chain.db"
    for path in sqlite_files(db):
        path.unlink(missing_ok=True)
    async with AsyncSqliteSaver.from_conn_string(str(db)) as saver:
        await saver.setup()
        app = build_chain(size).compile(checkpointer=saver)
        await app.ainvoke({"last": -1}, {"configurable": {"thread_id": "warmup"}})
        t0 = now()
        out = await app.ainvoke({"last": -1}, {"configurable": {"thread_id": "bench"}})
        total = now() - t0
    assert out["last"] == size - 1, out
    return {
        "value": total / size * 1e6,
        "total_s": total,
        "checkpoints": _count_checkpoints(db, "bench"),
        "durability": DURABILITY,
        "db_bytes": files_size(sqlite_files(db)),
    }


async def stream_chain100(size: int, workdir: Any) -> dict[str, Any]:
    app = build_chain(size, _talker).compile()

    async def streamed() -> float:
        t0 = now()
        received = 0
        async for _chunk in app.astream({"last": -1}, stream_mode="custom"):
            received += 1
        total = now() - t0
        assert received == size, (received, size)
        return total

    async def invoked() -> float:
        t0 = now()
        out = await app.ainvoke({"last": -1})
        total = now() - t0
        assert out["last"] == size - 1, out
        return total

    return await stream_vs_invoke(streamed, invoked, size)


async def stream_updates(size: int, workdir: Any) -> dict[str, Any]:
    async def talker(state: ChainState) -> ChainState:
        write = get_stream_writer()
        for i in range(size):
            write({"i": i})
            if i % STREAM_YIELD_EVERY == 0:
                await asyncio.sleep(0)
        return {"last": size}

    graph = StateGraph(ChainState)
    graph.add_node("talker", talker)
    graph.add_edge(START, "talker")
    graph.add_edge("talker", END)
    app = graph.compile()
    received = 0
    t0 = now()
    async for _chunk in app.astream({"last": -1}, stream_mode="custom"):
        received += 1
    total = now() - t0
    assert received == size, (received, size)
    return {"value": received / total, "total_s": total, "received": received, "dropped": 0}


async def stream_steps(size: int, workdir: Any) -> dict[str, Any]:
    app = build_loop(size).compile()
    config = {"recursion_limit": size + 10}
    received = 0
    t0 = now()
    async for _chunk in app.astream({"count": 0}, config, stream_mode="updates"):
        received += 1
    total = now() - t0
    assert received == size, (received, size)
    return {"value": received / total, "total_s": total, "received": received, "dropped": 0}


async def state_growth(size: int, workdir: Any) -> dict[str, Any]:
    db = workdir / "lg_growth.db"
    for path in sqlite_files(db):
        path.unlink(missing_ok=True)
    stamps: list[float] = []
    chunk = "x" * PAYLOAD_BYTES

    async def step(state: LogState) -> LogState:
        stamps.append(now())
        return {"log": [chunk]}

    def route(state: LogState) -> str:
        return "step" if len(state["log"]) < size else END

    graph = StateGraph(LogState)
    graph.add_node("step", step)
    graph.add_edge(START, "step")
    graph.add_conditional_edges("step", route, ["step", END])
    async with AsyncSqliteSaver.from_conn_string(str(db)) as saver:
        await saver.setup()
        app = graph.compile(checkpointer=saver)
        config = {"configurable": {"thread_id": "growth"}, "recursion_limit": size + 10}
        t0 = now()
        out = await app.ainvoke({"log": []}, config, durability=DURABILITY)
        total = now() - t0
    assert len(out["log"]) == size, len(out["log"])
    disk = files_size(sqlite_files(db))
    payload = size * PAYLOAD_BYTES
    return {
        "value": total / size * 1e6,
        "total_s": total,
        "db_bytes": disk,
        "payload_bytes": payload,
        "disk_ratio": disk / payload,
        "durability": DURABILITY,
        **step_window_stats(stamps),
    }


async def _many_sessions(saver: Any, count: int) -> dict[str, Any]:
    """``count`` threads of a SESSION_STEPS-node chain through one compiled graph (after one
    warm-up thread), each a new thread_id run with ``ainvoke``."""
    app = build_chain(SESSION_STEPS).compile(checkpointer=saver)

    async def one(index: int) -> None:
        config = {"configurable": {"thread_id": f"s{index}"}}
        out = await app.ainvoke({"last": -1}, config, durability=DURABILITY)
        assert out["last"] == SESSION_STEPS - 1, out

    await one(-1)
    total = await run_sessions(count, one)
    return {"value": count / total, "total_s": total, "steps": SESSION_STEPS}


async def sessions(size: int, workdir: Any) -> dict[str, Any]:
    db = workdir / "lg_sessions.db"
    for path in sqlite_files(db):
        path.unlink(missing_ok=True)
    async with AsyncSqliteSaver.from_conn_string(str(db)) as saver:
        await saver.setup()
        result = await _many_sessions(saver, size)
    return {**result, "durability": DURABILITY, "db_bytes": files_size(sqlite_files(db))}


async def sessions_pg(size: int, workdir: Any) -> dict[str, Any]:
    """LangGraph's Postgres saver on a pool as large as weavegraph's, in a schema of its own."""
    import psycopg
    from psycopg import sql
    from psycopg.rows import dict_row
    from psycopg_pool import AsyncConnectionPool

    url, schema = postgres_url(), bench_schema(FRAMEWORK)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
    kwargs = {
        "autocommit": True,
        "prepare_threshold": 0,
        "row_factory": dict_row,
        "options": f"-c search_path={schema}",
    }
    try:
        async with AsyncConnectionPool(
            url, max_size=POSTGRES_POOL_SIZE, kwargs=kwargs, open=False
        ) as pool:
            saver = AsyncPostgresSaver(pool)
            await saver.setup()
            result = await _many_sessions(saver, size)
    finally:
        drop_schema(url, schema)
    return {**result, "durability": DURABILITY}


async def large_extra(size: int, workdir: Any) -> dict[str, Any]:
    """``size`` steps, each changing one small key next to a large untouched value."""
    db = workdir / "lg_large.db"
    for path in sqlite_files(db):
        path.unlink(missing_ok=True)
    marks: list[tuple[float, int]] = []

    async def step(state: LargeState) -> dict[str, int]:
        marks.append((now(), bytes_written()))
        return {"count": state["count"] + 1}

    def route(state: LargeState) -> str:
        return "step" if state["count"] < size else END

    graph = StateGraph(LargeState)
    graph.add_node("step", step)
    graph.add_edge(START, "step")
    graph.add_conditional_edges("step", route, ["step", END])
    async with AsyncSqliteSaver.from_conn_string(str(db)) as saver:
        await saver.setup()
        app = graph.compile(checkpointer=saver)
        config = {"configurable": {"thread_id": "large"}, "recursion_limit": size + 10}
        t0 = now()
        out = await app.ainvoke(
            {"big": "x" * LARGE_VALUE_BYTES, "count": 0}, config, durability=DURABILITY
        )
        total = now() - t0
    assert out["count"] == size, out["count"]
    return {
        **large_step_stats(marks),
        "total_s": total,
        "durability": DURABILITY,
        "db_bytes": files_size(sqlite_files(db)),
    }


class MapState(TypedDict):
    n: int
    items: Annotated[list[int], operator.add]
    total: int


async def map_reduce(size: int, workdir: Any) -> dict[str, Any]:
    """A router sends ``size`` tasks (LangGraph's ``Send``), each returns one item, a reducer
    gathers them."""

    def fan_out(state: MapState) -> list[Send]:
        return [Send("item", i) for i in range(state["n"])]

    async def item(arg: int) -> dict[str, Any]:
        return {"items": [arg]}

    async def reduce(state: MapState) -> dict[str, Any]:
        return {"total": len(state["items"])}

    graph = StateGraph(MapState)
    graph.add_node("item", item)
    graph.add_node("reduce", reduce)
    graph.add_conditional_edges(START, fan_out, ["item"])
    graph.add_edge("item", "reduce")
    graph.add_edge("reduce", END)
    app = graph.compile()
    await app.ainvoke({"n": 10, "items": [], "total": 0})  # warm-up, as on the other side
    rss_before = max_rss_kb()
    t0 = now()
    out = await app.ainvoke({"n": size, "items": [], "total": 0})
    total = now() - t0
    assert out["total"] == size, out["total"]
    return {"value": total / size * 1e6, "total_s": total, "rss_before_run_kb": rss_before}


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
)

if __name__ == "__main__":
    run_workload_cli(FRAMEWORK, ALL_WORKLOADS, RSS_IMPORT_KB)
