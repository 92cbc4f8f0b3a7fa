"""Per-task durability on every backend: a failed step re-runs only its unfinished tasks."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import weavegraph as wg
from weavegraph.checkpoint.postgres import PostgresCheckpointer
from weavegraph.checkpoint.sqlite import SQLiteCheckpointer


@pytest.fixture(params=["memory", "sqlite", "postgres"])
async def checkpointer(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    if request.param == "memory":
        yield wg.InMemoryCheckpointer()
        return
    if request.param == "sqlite":
        cp: Any = await SQLiteCheckpointer.connect(f"sqlite://{tmp_path / 'tasks.db'}")
    else:
        url: str = request.getfixturevalue("postgres_url")
        schema: str = request.getfixturevalue("postgres_schema")
        cp = await PostgresCheckpointer.connect(url, schema=schema)
    try:
        yield cp
    finally:
        await cp.close()


class Flaky:
    """A Send target: task ``fail_on`` raises until ``healed``; every call is counted."""

    def __init__(self, fail_on: int) -> None:
        self.fail_on = fail_on
        self.healed = False
        self.calls: Counter[int] = Counter()

    async def __call__(self, snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
        n = int(ctx.input)
        self.calls[n] += 1
        await asyncio.sleep(0.001 * (n % 3))
        if n == self.fail_on and not self.healed:
            raise RuntimeError(f"task {n} is broken")
        ctx.emit("work", f"did {n}")
        return wg.NodePartial(extra={"items": [n * 10]}).with_messages(
            [wg.Message.assistant(f"did {n}")]
        )


def map_reduce(work: Flaky, count: int) -> wg.App:
    async def reduce(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
        return wg.NodePartial(extra={"total": sum(snapshot.extra["items"])})

    builder = wg.GraphBuilder().with_extra_reducer("items", wg.reducers.append)
    builder.add_node("work", work).add_node("reduce", reduce)
    builder.add_edge("work", "reduce").add_edge("reduce", wg.END)
    builder.add_conditional_edge(
        wg.START, lambda s: [wg.Send("work", n) for n in range(count)], targets=["work"]
    )
    return builder.with_max_concurrency(4).compile()


async def test_a_failed_step_reruns_only_the_tasks_without_a_saved_result(
    checkpointer: Any,
) -> None:
    work = Flaky(fail_on=5)
    async with wg.AppRunner(map_reduce(work, 12), checkpointer) as runner:
        await runner.create_session("map", wg.VersionedState())
        with pytest.raises(wg.NodeRunError, match="task 5 is broken"):
            await runner.run_until_complete("map")
        assert set(work.calls) == set(range(12))
        saved = await checkpointer.load_task_results("map", 0)
        assert set(saved) == set(range(12)) - {5}
        work.healed = True
        final = await runner.run_until_complete("map")
    assert work.calls == Counter({n: 2 if n == 5 else 1 for n in range(12)})
    # Saved and new results merge in task order, messages included.
    assert final.extra["items"] == [n * 10 for n in range(12)]
    assert final.extra["total"] == sum(n * 10 for n in range(12))
    assert [m.content for m in final.messages] == [f"did {n}" for n in range(12)]
    # Committed: nothing of the step's task results is left behind.
    for step in range(5):
        assert await checkpointer.load_task_results("map", step) == {}


async def test_a_new_runner_resumes_a_failed_step_from_storage(checkpointer: Any) -> None:
    """As after a restart: the session is loaded from its checkpoint, not kept in memory."""
    work = Flaky(fail_on=0)
    app = map_reduce(work, 6)
    async with wg.AppRunner(app, checkpointer) as runner:
        await runner.create_session("again", wg.VersionedState())
        for _ in range(2):  # failing twice keeps the results saved by the first attempt
            with pytest.raises(wg.NodeRunError):
                await runner.run_until_complete("again")
    work.healed = True
    async with wg.AppRunner(app, checkpointer) as runner:
        final = await runner.run_until_complete("again")
    assert work.calls == Counter({0: 3, 1: 1, 2: 1, 3: 1, 4: 1, 5: 1})
    assert final.extra["items"] == [0, 10, 20, 30, 40, 50]
    assert [len(e.message) > 0 for e in final.errors] == [True, True]


async def test_restored_tasks_events_are_stored_once(checkpointer: Any) -> None:
    """The events of tasks whose results were saved by a failed attempt were stored with that
    attempt: the attempt that restores the results does not store them again."""
    work = Flaky(fail_on=2)
    app = map_reduce(work, 6)
    async with wg.AppRunner(app, checkpointer) as runner:
        await runner.create_session("events", wg.VersionedState())
        with pytest.raises(wg.NodeRunError):
            await runner.run_until_complete("events")
    work.healed = True
    async with wg.AppRunner(app, checkpointer) as runner:
        await runner.run_until_complete("events")
    stored = await checkpointer.load_events("events")
    assert [e["seq"] for e in stored] == list(range(len(stored)))
    did = Counter(e["message"] for e in stored if e["scope"] == "work")
    assert did == Counter(f"did {n}" for n in range(6))


async def test_update_state_between_attempts_runs_the_step_whole(checkpointer: Any) -> None:
    """An edit is a new committed step: results computed on the state before it are dropped."""
    work = Flaky(fail_on=1)
    async with wg.AppRunner(map_reduce(work, 3), checkpointer) as runner:
        await runner.create_session("edit", wg.VersionedState())
        with pytest.raises(wg.NodeRunError):
            await runner.run_until_complete("edit")
        await runner.update_state("edit", wg.NodePartial(extra={"note": "fixed"}))
        work.healed = True
        final = await runner.run_until_complete("edit")
    assert work.calls == Counter({0: 2, 1: 2, 2: 2})
    assert final.extra["items"] == [0, 10, 20]


async def test_ordinary_parallel_nodes_are_durable_too(checkpointer: Any) -> None:
    calls: Counter[str] = Counter()
    broken = {"c"}

    def node(name: str) -> Any:
        async def run(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
            calls[name] += 1
            if name in broken:
                raise RuntimeError(f"{name} broke")
            return wg.NodePartial(extra={name: True})

        return run

    builder = wg.GraphBuilder()
    for name in "abc":
        builder.add_node(name, node(name)).add_edge(wg.START, name).add_edge(name, wg.END)
    async with wg.AppRunner(builder.compile(), checkpointer) as runner:
        await runner.create_session("fan", wg.VersionedState())
        with pytest.raises(wg.NodeRunError):
            await runner.run_until_complete("fan")
        broken.clear()
        final = await runner.run_until_complete("fan")
    assert calls == Counter({"a": 1, "b": 1, "c": 2})
    assert {k: final.extra[k] for k in "abc"} == {"a": True, "b": True, "c": True}


async def test_a_step_with_one_task_saves_no_task_result(checkpointer: Any) -> None:
    work = Flaky(fail_on=0)
    async with wg.AppRunner(map_reduce(work, 1), checkpointer) as runner:
        await runner.create_session("one", wg.VersionedState())
        with pytest.raises(wg.NodeRunError):
            await runner.run_until_complete("one")
        assert await checkpointer.load_task_results("one", 0) == {}


class NoTaskResults:
    """A custom checkpointer with only the ``Checkpointer`` methods (none for task results)."""

    def __init__(self) -> None:
        self._inner = wg.InMemoryCheckpointer()
        for name in (
            "save",
            "load_latest",
            "load",
            "list_sessions",
            "history",
            "delete_session",
            "append_events",
            "load_events",
            "close",
        ):
            setattr(self, name, getattr(self._inner, name))


async def test_a_checkpointer_without_task_results_runs_sends_whole_steps_again() -> None:
    custom = NoTaskResults()
    assert isinstance(custom, wg.Checkpointer)
    assert not isinstance(custom, wg.checkpoint.TaskResultStore)
    work = Flaky(fail_on=2)
    async with wg.AppRunner(map_reduce(work, 4), custom) as runner:
        await runner.create_session("custom", wg.VersionedState())
        with pytest.raises(wg.NodeRunError):
            await runner.run_until_complete("custom")
        work.healed = True
        final = await runner.run_until_complete("custom")
    assert work.calls == Counter({0: 2, 1: 2, 2: 2, 3: 2})
    assert final.extra["items"] == [0, 10, 20, 30]
