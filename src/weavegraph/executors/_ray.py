"""``RayTaskExecutor``: the node tasks of very wide steps run on a Ray cluster.

The frontier's tasks (a wide fan-out, thousands of ``Send`` tasks) are cut into chunks; each
chunk runs on a Ray worker, its tasks concurrently there, with their retries and timeouts. The
session's owner, this process, stays the only writer: it gets each chunk's outcomes back, replays
the events the tasks emitted (numbered and stored here, with the step), merges at the barrier and
commits the step as for any other run. Narrow steps, and steps with a subgraph node (a subgraph
runs inside its parent's session), run on this event loop as usual.

What crosses to Ray is pickled (cloudpickle): the node functions, the step's snapshot, each
task's ``input`` and the run's ``context`` (leave it None, or make it picklable). Events a remote
task emits reach the owner when its chunk finishes. Ray is the optional ``ray`` extra.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import pickle
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..context import EventStamper, Interrupt, NodeContext, resume_value, system_clock
from ..errors import ConfigError
from ..events.model import Event
from ..runtime.executor import (
    LOCAL,
    NodeFailure,
    NodeTask,
    OnResult,
    Outcome,
    TaskEnv,
)

__all__ = ["RayTaskExecutor", "RemoteTaskError"]

_Wire = tuple[str, Any]
"""A remote outcome as it travels back: ("ok", partial-or-None), ("interrupt", (node, value))
or ("failure", the exception, or its text when it cannot be pickled)."""

_Emitted = tuple[str, str, str, Any]
"""An event a remote task emitted: type, scope, message, metadata."""


class RemoteTaskError(Exception):
    """A node failed on a Ray worker with an exception that cannot travel back as itself."""


@dataclass(frozen=True, slots=True)
class _Remote:
    """One task as a Ray worker runs it: everything but this process's stamper and session."""

    node: Any
    snapshot: Any
    node_id: str
    step: int
    session_id: str
    context: Any
    input: Any
    task: int | None
    resume: tuple[bool, Any]
    schema: Any


class _Recorder:
    """The remote tasks' emitter: keeps their events to replay in the owner."""

    def __init__(self) -> None:
        self.lifecycle = False
        self.events: list[_Emitted] = []

    def publish(self, event: Event) -> None:
        self.events.append((event.type, event.scope, event.message, event.metadata))


def _context(task: _Remote, stamper: EventStamper) -> NodeContext:
    answered, answer = task.resume
    extra: dict[str, Any] = {"resume": answer} if answered else {}
    return NodeContext(
        node_id=task.node_id, step=task.step, session_id=task.session_id, stamper=stamper,
        context=task.context, input=task.input, task=task.task, **extra,
    )  # fmt: skip


def _wire(outcome: Outcome) -> _Wire:
    if not isinstance(outcome, NodeFailure):
        return ("ok", outcome)
    error = outcome.error
    if isinstance(error, Interrupt):
        return ("interrupt", (error.node, error.value))
    try:
        pickle.loads(pickle.dumps(error))
    except Exception:
        return ("failure", f"{type(error).__name__}: {error}")
    return ("failure", error)


def run_chunk(chunk: Sequence[_Remote], max_concurrency: int) -> list[tuple[_Wire, list[_Emitted]]]:
    """On a Ray worker: run the chunk's tasks concurrently; each outcome with its events."""

    async def run_all() -> list[tuple[_Wire, list[_Emitted]]]:
        recorders = [_Recorder() for _ in chunk]
        tasks: list[NodeTask] = []
        for remote, recorder in zip(chunk, recorders, strict=True):
            stamper = EventStamper(recorder, remote.session_id, system_clock)
            tasks.append(
                NodeTask(
                    remote.node, remote.snapshot, _context(remote, stamper),
                    TaskEnv(stamper, False, remote.schema),
                )
            )  # fmt: skip
        outcomes = await LOCAL.run_tasks(tasks, max_concurrency)
        return [(_wire(o), r.events) for o, r in zip(outcomes, recorders, strict=True)]

    return asyncio.run(run_all())


def _outcome(wire: _Wire) -> Outcome:
    kind, value = wire
    if kind == "ok":
        return value
    if kind == "interrupt":
        node, asked = value
        return NodeFailure(Interrupt(node, asked))
    return NodeFailure(value if isinstance(value, BaseException) else RemoteTaskError(value))


class RayTaskExecutor:
    """Runs a step's node tasks on Ray in chunks of ``chunk_size`` when there are at least
    ``min_tasks`` of them (fewer run on this event loop). Ray must be initialized first
    (``ray.init(...)``); pass it as ``AppRunner(app, checkpointer, executor=...)``."""

    def __init__(self, *, chunk_size: int = 256, min_tasks: int = 64) -> None:
        if chunk_size < 1 or min_tasks < 1:
            raise ConfigError(
                f"chunk_size and min_tasks must be >= 1, got {chunk_size} and {min_tasks}"
            )
        try:
            ray = importlib.import_module("ray")
        except ImportError as exc:
            raise ConfigError(
                "the Ray executor needs the extra: pip install 'weavegraph[ray]'"
            ) from exc
        self.chunk_size = chunk_size
        self.min_tasks = min_tasks
        self._ray = ray
        self._remote: Any = None
        self.chunks_sent = 0
        """Chunks run on Ray so far (for tests and monitoring)."""

    async def run_tasks(
        self, tasks: Sequence[NodeTask], max_concurrency: int, on_result: OnResult | None = None
    ) -> list[Outcome]:
        if len(tasks) < self.min_tasks or any(t.node.subgraph is not None for t in tasks):
            return await LOCAL.run_tasks(tasks, max_concurrency, on_result)
        remote = self._remote_fn()
        starts = range(0, len(tasks), self.chunk_size)
        refs = [
            remote.remote([_outbound(t) for t in tasks[i : i + self.chunk_size]], max_concurrency)
            for i in starts
        ]
        self.chunks_sent += len(refs)
        results: list[Outcome] = [None] * len(tasks)
        try:
            for start, ref in zip(starts, refs, strict=True):
                for offset, (wire, events) in enumerate(await ref):
                    index = start + offset
                    _replay(tasks[index].env.stamper, events)
                    results[index] = _outcome(wire)
                    if on_result is not None:
                        on_result(index, results[index])
        except BaseException:
            for ref in refs:  # the step failed or was cancelled: its other chunks are moot
                with contextlib.suppress(Exception):
                    self._ray.cancel(ref)
            raise
        return results

    def _remote_fn(self) -> Any:
        if not self._ray.is_initialized():
            raise ConfigError("Ray is not running in this process: call ray.init(...) first")
        if self._remote is None:
            self._remote = self._ray.remote(run_chunk)
        return self._remote


def _outbound(task: NodeTask) -> _Remote:
    ctx = task.ctx
    return _Remote(
        node=task.node, snapshot=task.snapshot, node_id=ctx.node_id, step=ctx.step,
        session_id=ctx.session_id, context=ctx.context, input=ctx.input, task=ctx.task,
        resume=resume_value(ctx), schema=task.env.schema,
    )  # fmt: skip


def _replay(stamper: EventStamper, events: list[_Emitted]) -> None:
    for type_, scope, message, metadata in events:
        stamper.publish(type_, scope, message, dict(metadata))
