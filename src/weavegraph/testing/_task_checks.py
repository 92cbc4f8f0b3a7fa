"""Conformance checks for saved task results (per-task durability); part of ``CHECKS``.

A step's finished tasks are saved while the step runs (``save_task_results``) and read back when
the step runs again (``load_task_results``); the step's checkpoint save drops them in its own
transaction unless the checkpoint keeps them (``Checkpoint.keep_tasks_of``: the step failed or
paused and runs again).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from ..checkpoint.base import Checkpoint, Checkpointer
from ..state import VersionedState

__all__ = ["TASK_CHECKS"]


def _sid(label: str) -> str:
    return f"conformance-{label}-{uuid.uuid4().hex[:12]}"


def _checkpoint(sid: str, step: int, keep: int | None = None) -> Checkpoint:
    return Checkpoint(
        session_id=sid, step=step, state=VersionedState(), frontier=("a",), keep_tasks_of=keep
    )


def _result(n: int) -> dict[str, Any]:
    return {"node": "work", "partial": {"extra": {"items": [n], "text": f"é{n}\u0000"}}}


async def check_task_results_roundtrip(cp: Checkpointer, caps: Any) -> None:
    """Saved task results load back by index, per session and per step; an index saved again
    is replaced."""
    sid, other = _sid("tasks"), _sid("tasks-other")
    assert await cp.load_task_results(sid, 0) == {}
    for session in (sid, other):
        await cp.save(_checkpoint(session, 0))
    await cp.save_task_results(sid, 0, {0: _result(0), 7: _result(7)})
    await cp.save_task_results(sid, 0, {7: _result(70), 3: None})
    await cp.save_task_results(other, 0, {0: _result(100)})
    assert await cp.load_task_results(sid, 0) == {0: _result(0), 7: _result(70), 3: None}
    assert await cp.load_task_results(other, 0) == {0: _result(100)}
    assert await cp.load_task_results(sid, 1) == {}


async def check_task_results_dropped_by_commit(cp: Checkpointer, caps: Any) -> None:
    """Saving the session's next checkpoint drops its saved task results (nothing left)."""
    sid, other = _sid("tasks-commit"), _sid("tasks-commit-other")
    for session in (sid, other):
        await cp.save(_checkpoint(session, 0))
        await cp.save_task_results(session, 0, {0: _result(0), 1: _result(1)})
    await cp.save(_checkpoint(sid, 1))
    assert await cp.load_task_results(sid, 0) == {}
    assert await cp.load_task_results(other, 0) == {0: _result(0), 1: _result(1)}
    await cp.save_task_results(sid, 1, {4: _result(4)})
    await cp.save(_checkpoint(sid, 2))
    assert await cp.load_task_results(sid, 1) == {}


async def check_task_results_kept_for_a_step_that_runs_again(cp: Checkpointer, caps: Any) -> None:
    """A checkpoint with ``keep_tasks_of=k`` keeps the results of the tasks planned after step
    k (a failed or paused step) and drops every other; the next plain save drops them too."""
    sid = _sid("tasks-keep")
    await cp.save(_checkpoint(sid, 0))
    await cp.save_task_results(sid, 0, {0: _result(0)})
    await cp.save_task_results(sid, 5, {0: _result(50)})
    await cp.save(_checkpoint(sid, 1, keep=0))
    assert await cp.load_task_results(sid, 0) == {0: _result(0)}
    assert await cp.load_task_results(sid, 5) == {}
    await cp.save_task_results(sid, 0, {2: _result(2)})
    await cp.save(_checkpoint(sid, 2, keep=0))
    assert await cp.load_task_results(sid, 0) == {0: _result(0), 2: _result(2)}
    await cp.save(_checkpoint(sid, 3))
    assert await cp.load_task_results(sid, 0) == {}


async def check_task_results_deleted_with_session(cp: Checkpointer, caps: Any) -> None:
    """Deleting a session deletes its saved task results."""
    sid = _sid("tasks-delete")
    await cp.save(_checkpoint(sid, 0))
    await cp.save_task_results(sid, 0, {0: _result(0)})
    assert await cp.delete_session(sid)
    assert await cp.load_task_results(sid, 0) == {}


async def check_task_results_of_a_subgraph(cp: Checkpointer, caps: Any) -> None:
    """A subgraph's task results (``namespace=``) are its own: dropped by its saves, not by the
    session's, and deleted with the session."""
    sid = _sid("tasks-sub")
    await cp.save(_checkpoint(sid, 0))
    await cp.save(replace(_checkpoint(sid, 0), namespace="inner"))
    await cp.save_task_results(sid, 0, {1: _result(1)}, namespace="inner")
    assert await cp.load_task_results(sid, 0) == {}
    await cp.save(_checkpoint(sid, 1))
    assert await cp.load_task_results(sid, 0, namespace="inner") == {1: _result(1)}
    await cp.save(replace(_checkpoint(sid, 1), namespace="inner"))
    assert await cp.load_task_results(sid, 0, namespace="inner") == {}
    await cp.save_task_results(sid, 1, {2: _result(2)}, namespace="inner")
    assert await cp.delete_session(sid)
    assert await cp.load_task_results(sid, 1, namespace="inner") == {}


TASK_CHECKS: tuple[Callable[[Checkpointer, Any], Awaitable[None]], ...] = (
    check_task_results_roundtrip,
    check_task_results_dropped_by_commit,
    check_task_results_kept_for_a_step_that_runs_again,
    check_task_results_deleted_with_session,
    check_task_results_of_a_subgraph,
)
