"""A session's saves and its event log (``runtime/session.py``): what a failed save leaves."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from save_hooks import SaveHooks

import weavegraph as wg
from weavegraph.checkpoint import Checkpoint
from weavegraph.events.model import STREAM_END_SCOPE
from weavegraph.status import RunStatus


class FailsStepOnce(SaveHooks, wg.InMemoryCheckpointer):
    """A real in-memory checkpointer whose first save of step ``step`` fails."""

    def __init__(self, step: int) -> None:
        super().__init__()
        self.step = step
        self.failed = False

    async def before_save(
        self, checkpoint: Checkpoint, events: Sequence[Mapping[str, Any]]
    ) -> None:
        if checkpoint.step == self.step and not self.failed:
            self.failed = True
            raise OSError("the connection was cut")


def three_steps() -> wg.App:
    """``a -> (b1, b2) -> c``, each node emitting one event."""

    def node(name: str) -> Any:
        async def run(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
            ctx.emit("work", name)
            return wg.NodePartial(extra={name: True})

        return run

    builder = wg.GraphBuilder()
    for name in ("a", "b1", "b2", "c"):
        builder.add_node(name, node(name))
    return (
        builder.add_edge(wg.START, "a")
        .add_edge("a", "b1")
        .add_edge("a", "b2")
        .add_edge(["b1", "b2"], "c")
        .add_edge("c", wg.END)
        .compile()
    )


async def test_a_step_whose_save_failed_stores_no_events_and_leaves_no_seq_gap() -> None:
    cp = FailsStepOnce(step=2)
    app = three_steps()
    async with wg.AppRunner(app, cp) as runner:
        with pytest.raises(wg.CheckpointError):
            await runner.drive("s", "go")
    after_failure = await cp.load_events("s")
    assert [e["message"] for e in after_failure if e["type"] != "diagnostic"] == ["a"]
    async with wg.AppRunner(app, cp) as runner:  # another process continues the session
        done = await runner.drive("s")
    assert done.status is RunStatus.COMPLETED
    stored = await cp.load_events("s")
    assert [e["seq"] for e in stored] == list(range(len(stored)))
    work = Counter((e["metadata"]["step"], e["message"]) for e in stored if e["scope"] == "work")
    assert work == Counter({(1, "a"): 1, (2, "b1"): 1, (2, "b2"): 1, (3, "c"): 1})
    ends = [e["message"].split()[1] for e in stored if e["scope"] == STREAM_END_SCOPE]
    assert ends == ["status=error", "status=completed"]
