"""The values a run reports (step reports, pause reasons), step limits and session id rules."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any, Final, Literal, final

from ..errors import ConfigError, InvalidSessionId
from ..state import VersionedState
from ..status import RunStatus

__all__ = [
    "NO_ANSWER",
    "DriveResult",
    "StepResult",
    "PausedReason",
    "StepReport",
    "new_session_id",
    "node_path",
    "step_limit",
    "validate_session_id",
]

_SESSION_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_PATH_SEGMENTS = frozenset({".", ".."})
"""Ids that URL paths resolve away (``/api/sessions/..`` is ``/api``): never a session id."""


def validate_session_id(session_id: object) -> str:
    """``session_id`` if it is 1-128 letters, digits, '.', '_', ':' or '-' and not ``.`` or
    ``..``; else InvalidSessionId."""
    if (
        not isinstance(session_id, str)
        or not _SESSION_ID.fullmatch(session_id)
        or session_id in _PATH_SEGMENTS
    ):
        raise InvalidSessionId(session_id)
    return session_id


def step_limit(graph_limit: int, max_steps: object) -> int:
    """How many steps a run may take: ``max_steps`` if given (an int >= 0), else the graph's."""
    if max_steps is None:
        return graph_limit
    if type(max_steps) is not int or max_steps < 0:
        raise ConfigError(f"max_steps must be None or an int >= 0, got {max_steps!r}")
    return max_steps


def new_session_id(prefix: str = "run") -> str:
    """A fresh random session id: ``<prefix>-`` and 16 hex digits (``run-3f9c...``)."""
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


@dataclass(frozen=True, slots=True, kw_only=True)
class StepReport:
    """What one superstep did."""

    step: int
    ran_nodes: tuple[str, ...]
    skipped_nodes: tuple[str, ...]
    updated_channels: tuple[str, ...]
    next_frontier: tuple[str, ...]


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class PausedReason:
    """Why a session paused: ``kind`` is ``before``/``after`` (static interrupts), ``step``
    (interrupt_each_step) or ``interrupt`` (a node called ``ctx.interrupt(value)``; when the node
    is in a subgraph, ``namespace`` is that subgraph's path of node ids)."""

    kind: Literal["before", "after", "step", "interrupt"]
    step: int
    nodes: tuple[str, ...] = ()
    value: Any = None
    namespace: str | None = None

    @property
    def asking(self) -> str:
        """Who paused: the nodes, each with its subgraph's namespace (``research/ask``)."""
        return ", ".join(node_path(self.namespace, node) for node in self.nodes)


def node_path(namespace: str | None, node: str) -> str:
    """A node named with the subgraph it is in: ``research/ask`` (``ask`` at the root)."""
    return f"{namespace}/{node}" if namespace else node


NO_ANSWER: Final[Any] = object()
"""``AppRunner.drive``'s default ``answer``: the session is not answering a ``ctx.interrupt``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StepResult:
    """``run_step``'s answer: ``completed`` once the frontier is empty; ``report`` of the step that
    ran (if one did); ``paused`` when the session stopped for an interrupt."""

    completed: bool
    report: StepReport | None = None
    paused: PausedReason | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DriveResult:
    """How ``AppRunner.drive`` left the session: ``status`` is ``completed``, ``interrupted``
    (``paused`` says why: waiting for an answer or at a static pause) or ``stopped`` (a stop
    request or signal; driving it again continues), with its state and last recorded step."""

    session_id: str
    state: VersionedState
    status: RunStatus
    step: int
    resumed: bool
    paused: PausedReason | None = None
