"""Running a subgraph node: the child graph steps as part of its parent's session.

The child is a :class:`Session` of its own graph with the parent's session id, checkpointer,
context and event sequence (``Session.subgraph``), stepped by the run loop like any session. Its
checkpoints are stored under the parent's session in its namespace (the path of node ids, a
Send task's with its index: ``research/search:2``), each
marked with the parent step it ran in, so the node can tell what to do with what it finds:

- an unfinished child (steps left, or a question pending) that ran after the parent's last
  merged step (the parent crashed, failed or paused since), or whose question this re-run
  answers: it continues from its last step;
- a finished child that ran after the parent's last merged step (its result was never merged: a
  crash, or a sibling's failure or pause): its final state is used as is, nothing re-runs;
- anything else: a new run, numbered after the namespace's last step.

A pause inside the child (``ctx.interrupt``) is saved there, then raised to the parent as an
``Interrupt`` carrying the namespace, so the whole session pauses; ``resume`` re-runs this node
with the answer, which it hands to the child (see ``plan.answering_node``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Literal, cast

from ..checkpoint import Checkpoint
from ..checkpoint.base import NAMESPACE_SEPARATOR
from ..context import Interrupt, NodeContext, resume_value, running_session
from ..errors import StateError
from ..partial import NodePartial
from ..state import FrozenDict, StateSnapshot
from ..status import RunStatus
from . import loop, superstep
from .plan import Cursor, cursor_of
from .session import PARENT_STEP, Session

if TYPE_CHECKING:
    from ..graph.subgraph import Subgraph

__all__ = ["child_namespace", "run_subgraph", "settled_step", "task_view", "what_to_do"]

Plan = Literal["continue", "finished", "new"]


def child_namespace(parent_namespace: str, node_id: str, task: int | None = None) -> str:
    """The namespace of the subgraph that node ``node_id`` of the graph at ``parent_namespace``
    runs (as Send task ``task``: ``node:task``, each task a subgraph run of its own)."""
    segment = node_id if task is None else f"{node_id}:{task}"
    return f"{parent_namespace}{NAMESPACE_SEPARATOR}{segment}" if parent_namespace else segment


def task_view(snapshot: StateSnapshot, ctx: NodeContext) -> StateSnapshot:
    """What a subgraph node maps from: the parent's snapshot, with a Send task's input (a
    mapping of ``extra`` keys) laid over its ``extra``."""
    given = cast(object, ctx.input)
    if ctx.task is None or given is None:
        return snapshot
    if not isinstance(given, Mapping):
        raise StateError(
            f"a Send to subgraph node {ctx.node_id!r} needs a mapping of extra keys as its "
            f"input, got {type(given).__name__}"
        )
    overlay = cast("Mapping[str, Any]", given)
    return replace(snapshot, extra=FrozenDict({**snapshot.extra, **overlay}))


def what_to_do(latest: Checkpoint, settled: int, answering: bool) -> Plan:
    """Continue the child's ``latest`` checkpoint, use it as finished, or start a new run.

    ``settled``: the parent's last step whose node results were merged; a child run in a later
    parent step belongs to the step being run now (the parent crashed, paused or failed since,
    merging nothing). ``answering``: the node re-runs to answer the child's question (the parent
    may have recorded an edit since the pause).
    """
    marker: object = latest.cursor.get(PARENT_STEP)
    ran_in = marker if type(marker) is int else -1
    pending = ran_in > settled
    if bool(latest.frontier) or latest.cursor.get("interrupt") is not None:
        return "continue" if pending or answering else "new"
    return "finished" if pending else "new"


def settled_step(parent: Session) -> int:
    """The parent's last step whose node results were merged (see :func:`what_to_do`)."""
    ran = parent.last_record[0]
    step = parent.cursor.step
    return step if ran else step - 1


async def run_subgraph(
    sub: Subgraph, snapshot: StateSnapshot, ctx: NodeContext
) -> NodePartial | None:
    """Run the child of ``sub`` for node ``ctx`` to its end; its partial for the parent."""
    parent = running_session(ctx)
    if parent is None:
        raise RuntimeError(f"subgraph node {ctx.node_id!r} runs only as a node of a graph")
    namespace = child_namespace(parent.namespace, ctx.node_id, ctx.task)
    snapshot = task_view(snapshot, ctx)
    answering, answer = resume_value(ctx)
    child = await _open(sub, parent, namespace, snapshot, ctx.step, answering)
    if isinstance(child, Checkpoint):  # finished within this step already
        final = child.state.with_schema(sub.spec.state_schema)
        return sub.partial(snapshot, final.snapshot())
    if answering and child.cursor.interrupt is not None:
        await child.answer(answer)
    outcome = await loop.drive(child)
    if outcome.status is RunStatus.INTERRUPTED:
        raise _pause_of(child.cursor.interrupt, namespace)
    return sub.partial(snapshot, child.state.snapshot())


async def _open(
    sub: Subgraph,
    parent: Session,
    namespace: str,
    snapshot: StateSnapshot,
    step: int,
    answering: bool,
) -> Session | Checkpoint:
    """The child's session, ready to drive (a new run already begun), or its finished
    checkpoint."""
    latest = None
    if parent.checkpointer is not None:
        latest = await parent.checkpointer.load_latest(parent.session_id, namespace=namespace)
    if latest is not None:
        plan = what_to_do(latest, settled_step(parent), answering)
        if plan == "finished":
            return latest
        if plan == "continue":
            child = parent.subgraph(sub.spec, namespace, latest.state, cursor_of(latest))
            child.last_record = (latest.ran_nodes, latest.skipped_nodes, latest.updated_channels)
            child.parent_step = step
            parent.stamper.skip_to(child.cursor.next_seq)
            return child
    base = latest.step + 1 if latest is not None else 0
    child = parent.subgraph(sub.spec, namespace, sub.initial_state(snapshot), Cursor(step=base))
    child.parent_step = step
    await superstep.begin(child)
    return child


def _pause_of(pending: Mapping[str, Any] | None, namespace: str) -> Interrupt:
    """The pause the child ended in, raised in the parent with the namespace that asked."""
    asked = pending or {}
    return Interrupt(
        str(asked.get("node")), asked.get("value"), str(asked.get("namespace") or namespace)
    )
