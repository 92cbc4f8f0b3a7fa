"""How a stored session stands, derived from what is stored, so every process shows the same.

A session's status is read from its latest checkpoint (a pending interrupt, an empty frontier, a
failed last step) and, when the event log has it, from how its last run's stream ended. Nothing
here needs the process that ran the session: the command line and the web server call
:func:`describe` on any checkpointer.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, cast

from .checkpoint.base import Checkpoint, Checkpointer, SessionInfo
from .events.log import RESERVED_MAX
from .events.model import STREAM_END_SCOPE
from .runtime.values import node_path
from .status import RunStatus

__all__ = [
    "WAITING_LABEL",
    "PendingInterrupt",
    "describe",
    "pending_from",
    "pending_interrupt",
    "status_of",
]

WAITING_LABEL = "waiting for an answer"
"""How ``interrupted`` is shown to people (never the word used for a stopped run)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PendingInterrupt:
    """The question a paused session waits on: ``value`` is what the node passed to
    ``ctx.interrupt``; ``namespace`` is the subgraph path of the node (None for the root graph);
    ``id`` names this question (``<step>:<node>``, with the namespace when there is one)."""

    id: str
    node: str
    namespace: str | None
    value: Any

    @property
    def path(self) -> str:
        """The asking node with its subgraph's namespace (``research/ask``; ``ask`` at the root)."""
        return node_path(self.namespace, self.node)

    def to_json_value(self) -> dict[str, Any]:
        """The JSON form the command line and the web show."""
        return {"id": self.id, "node": self.node, "namespace": self.namespace, "value": self.value}


def pending_interrupt(checkpoint: Checkpoint) -> PendingInterrupt | None:
    """The dynamic interrupt the checkpoint's cursor records as pending, if any."""
    raw: object = checkpoint.cursor.get("interrupt")
    if not isinstance(raw, Mapping):
        return None
    return pending_from(cast("Mapping[str, Any]", raw), checkpoint.step)


def pending_from(pending: Mapping[str, Any], step: int) -> PendingInterrupt:
    """A cursor's pending interrupt (``{"node", "value"}``, with ``namespace`` in a subgraph)."""
    node = str(pending.get("node", ""))
    namespace_value = pending.get("namespace")
    namespace = str(namespace_value) if namespace_value else None
    where = node_path(namespace, node)
    return PendingInterrupt(
        id=f"{step}:{where}", node=node, namespace=namespace, value=pending.get("value")
    )


def status_of(
    checkpoint: Checkpoint, *, running: bool = False, last_end: str | None = None
) -> tuple[RunStatus, PendingInterrupt | None]:
    """The status a session's latest checkpoint shows, and its pending interrupt.

    ``running``: a run of it is in progress in this process; ``last_end``: the status its last
    stored stream-end event reported, when known.
    """
    interrupt = pending_interrupt(checkpoint)
    if interrupt is not None:
        return RunStatus.INTERRUPTED, interrupt
    if not checkpoint.frontier:
        return RunStatus.COMPLETED, None
    if running:
        return RunStatus.RUNNING, None
    if checkpoint.cursor.get("paused_before") == checkpoint.step + 1:
        return RunStatus.INTERRUPTED, None  # at a static interrupt_before pause
    if _failed(checkpoint):
        return RunStatus.ERROR, None
    if last_end is not None and last_end in RunStatus.__members__.values():
        ended = RunStatus(last_end)
        if ended is not RunStatus.COMPLETED:
            return ended, None
    return RunStatus.STOPPED, None


def _failed(checkpoint: Checkpoint) -> bool:
    """Whether the latest step is a failed one: nothing ran, and its error was recorded."""
    if checkpoint.ran_nodes or tuple(checkpoint.updated_channels) != ("errors",):
        return False
    errors = checkpoint.state.errors
    return bool(errors) and errors[-1].step == checkpoint.step


async def describe(
    checkpointer: Checkpointer,
    info: SessionInfo,
    *,
    running: Collection[str] = (),
    ended: Mapping[str, str] | None = None,
) -> SessionInfo:
    """``info`` with its ``status`` and ``interrupt`` filled in from the stored session.

    ``running``: sessions with a run in progress in this process; ``ended``: how this process's
    last run of a session ended (else the stored stream end says it, when events are stored).
    """
    checkpoint = await checkpointer.load_latest(info.session_id)
    if checkpoint is None:
        return info
    status, interrupt = await stored_status(
        checkpointer,
        checkpoint,
        running=info.session_id in running,
        ended=(ended or {}).get(info.session_id),
    )
    return dataclasses.replace(info, status=status, interrupt=interrupt)


async def stored_status(
    checkpointer: Checkpointer,
    checkpoint: Checkpoint,
    *,
    running: bool = False,
    ended: str | None = None,
) -> tuple[RunStatus, PendingInterrupt | None]:
    """:func:`status_of` the session's latest checkpoint, with how its last run ended (``ended``
    when this process knows, else its stored stream-end event)."""
    last_end = ended or await _last_end(checkpointer, checkpoint)
    return status_of(checkpoint, running=running, last_end=last_end)


async def _last_end(checkpointer: Checkpointer, checkpoint: Checkpoint) -> str | None:
    """The status of the last stored stream end after the checkpoint, when events are stored."""
    next_seq: object = checkpoint.cursor.get("next_seq")
    # The closing events of a run follow its last checkpoint, within the seqs it reserved.
    after = next_seq - 1 - RESERVED_MAX if isinstance(next_seq, int) else -1
    events = await checkpointer.load_events(checkpoint.session_id, max(after, -1))
    for event in reversed(events):
        if event.get("scope") == STREAM_END_SCOPE:
            for part in str(event.get("message", "")).split():
                if part.startswith("status="):
                    return part.removeprefix("status=")
    return None
