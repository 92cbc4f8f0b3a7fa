"""``RayTaskExecutor`` on a local Ray cluster (2 CPUs, no dashboard): the tasks of a wide step
run on Ray workers, the owner merges and commits; runs end exactly like runs on the event loop.

Skipped when the optional ``ray`` extra is not installed (it is not part of ``dev``: see the
operations guide, "Very wide steps on Ray").
"""

from __future__ import annotations

import ast
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import weavegraph as wg
from weavegraph.executors import RayTaskExecutor
from weavegraph.status import RunStatus

ray = pytest.importorskip(
    "ray", reason="the optional ray extra is not installed (pip install 'weavegraph[ray]')"
)

pytestmark = pytest.mark.slow

WIDTH = 40


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


def wide_app() -> wg.App:
    """A router sends WIDTH tasks; each reports the process it ran in and emits one event; a
    sync task asks a question the first time; a join gathers them."""

    def fan_out(snapshot: wg.StateSnapshot) -> list[wg.Send]:
        return [wg.Send("square", {"n": n}) for n in range(WIDTH)]

    async def square(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
        n = int(ctx.input["n"])
        ctx.emit("square", f"{n}^2", n=n)
        if n == 7 and snapshot.extra.get("approved") is None:
            approved = ctx.interrupt({"question": "square 7?"})
            return wg.NodePartial(extra={"approved": approved, "sq7": 49, "pid7": os.getpid()})
        return wg.NodePartial(extra={f"sq{n}": n * n, f"pid{n}": os.getpid()})

    def total(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
        return wg.NodePartial(
            extra={"total": sum(int(snapshot.extra[f"sq{n}"]) for n in range(WIDTH))}
        )

    return (
        wg.GraphBuilder()
        .add_node("start", lambda snapshot, ctx: None)
        .add_node("square", square)
        .add_node("total", total)
        .add_edge(wg.START, "start")
        .add_conditional_edge("start", fan_out, targets=["square"])
        .add_edge("square", "total")
        .add_edge("total", wg.END)
        .compile()
    )


async def drive(executor: Any) -> tuple[wg.VersionedState, list[dict[str, Any]]]:
    cp = wg.InMemoryCheckpointer()
    async with wg.AppRunner(wide_app(), cp, executor=executor) as runner:
        paused = await runner.drive("wide", "go")
        assert paused.status is RunStatus.INTERRUPTED
        done = await runner.drive("wide", answer="yes")
        assert done.status is RunStatus.COMPLETED
        return done.state, await cp.load_events("wide")


async def test_a_wide_step_runs_on_ray_and_ends_like_a_local_run(cluster: None) -> None:
    executor = RayTaskExecutor(chunk_size=16, min_tasks=1)
    state, events = await drive(executor)
    local_state, local_events = await drive(None)
    # Every step ran on Ray: the wide one in ceil(40 / 16) chunks, its re-run after the answer
    # (task 7 alone: the other results were saved) and the one-task steps in one chunk each.
    assert executor.chunks_sent == 3 + 1 + 1 + 1
    assert state.extra["total"] == local_state.extra["total"] == sum(n * n for n in range(WIDTH))
    assert state.extra["approved"] == "yes"
    remote_pids = {state.extra[f"pid{n}"] for n in range(WIDTH)}
    assert os.getpid() not in remote_pids  # every task ran in a Ray worker process
    # The owner numbered and stored the remote tasks' events like its own, in task order.
    assert [e["seq"] for e in events] == list(range(len(events)))
    assert squares(events) == squares(local_events)


def squares(log: list[dict[str, Any]]) -> list[tuple[int, int]]:
    """The wide step's events: (task index, n) in stored order."""
    return [(e["metadata"]["task"], e["metadata"]["n"]) for e in log if e["scope"] == "square"]


async def test_a_failing_remote_task_fails_the_step_with_its_error(cluster: None) -> None:
    class Odd(Exception):
        def __init__(self, n: int, why: str) -> None:  # cannot be rebuilt from its args
            super().__init__(f"{n}: {why}")

    def fan_out(snapshot: wg.StateSnapshot) -> list[wg.Send]:
        return [wg.Send("check", {"n": n}) for n in range(10)]

    def check(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
        if ctx.input["n"] == 3:
            raise Odd(3, "odd one out")
        return wg.NodePartial(extra={f"ok{ctx.input['n']}": True})

    app = (
        wg.GraphBuilder()
        .add_node("start", lambda snapshot, ctx: None)
        .add_node("check", check)
        .add_edge(wg.START, "start")
        .add_conditional_edge("start", fan_out, targets=["check"])
        .add_edge("check", wg.END)
        .compile()
    )
    executor = RayTaskExecutor(chunk_size=4, min_tasks=2)
    async with wg.AppRunner(app, "memory", executor=executor) as runner:
        with pytest.raises(wg.NodeRunError, match="odd one out"):
            await runner.drive("fails", "go")
    assert executor.chunks_sent == 3


def test_options_are_checked() -> None:
    with pytest.raises(wg.ConfigError, match="chunk_size"):
        RayTaskExecutor(chunk_size=0)


GUIDE = Path(__file__).resolve().parents[2] / "docs" / "OPERATIONS.md"


async def test_the_operations_guide_example_runs(cluster: None) -> None:
    section = GUIDE.read_text().split("### Very wide steps on Ray", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match is not None
    code = compile(match[1], "docs/OPERATIONS.md", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    result = eval(code, {"__name__": "guide"})
    if result is not None:
        await result
