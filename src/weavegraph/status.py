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

__all__ = ["STREAM_END_STATUSES", "RunStatus"]


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
