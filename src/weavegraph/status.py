"""The one status vocabulary: how a session stands, and how a run's event stream ended.

Used everywhere a status is shown or stored (Python, the command line, the web server):

- ``queued``: waiting for a worker; ``running``: a step is in progress;
- ``interrupted``: paused, waiting for an answer (``ctx.interrupt``) or at a static pause
  (``interrupt_before`` / ``interrupt_after`` / each step); shown to people as "waiting for an
  answer";
- ``stopped``: halted by a signal or ``request_stop`` (every committed step is checkpointed;
  running the session again continues there);
- ``completed``; ``error``: a step failed (its error is recorded, the step is retried when the
  session runs again); ``cancelled``: the run's task was cancelled; ``dead``: its worker vanished.

A run's stream-end event carries one of :data:`STREAM_END_STATUSES`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

__all__ = ["QUEUE_SHOWN", "STREAM_END_STATUSES", "RunStatus", "shown_status"]


class RunStatus(StrEnum):
    """How a session stands, or how its run ended (a ``str``: compares equal to its value)."""

    QUEUED = "queued"
    RUNNING = "running"
    INTERRUPTED = "interrupted"
    STOPPED = "stopped"
    COMPLETED = "completed"
    ERROR = "error"
    CANCELLED = "cancelled"
    DEAD = "dead"


STREAM_END_STATUSES: Final = frozenset(
    {
        RunStatus.COMPLETED,
        RunStatus.ERROR,
        RunStatus.CANCELLED,
        RunStatus.INTERRUPTED,
        RunStatus.STOPPED,
    }
)
"""The statuses a stream-end event reports."""

QUEUE_SHOWN: Final = frozenset({RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.DEAD})
"""The queue's statuses that say more than the stored session can: waiting for a worker, held
by one, given up on."""


def shown_status(stored: RunStatus, queued_as: RunStatus | None) -> RunStatus:
    """How a session is shown: ``stored`` (what its checkpoint and log say), unless the queue
    (``queued_as``, None when no worker manages it) has it queued, running or dead."""
    return queued_as if queued_as is not None and queued_as in QUEUE_SHOWN else stored
