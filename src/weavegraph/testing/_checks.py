"""What every conformance check shares: the capabilities it is told, fresh ids, checkpoints as a
runner builds them, and the comparison of a loaded checkpoint with the saved one."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from ..checkpoint.base import Checkpoint, Checkpointer
from ..state import ErrorEvent, Message, VersionedState, freeze_json
from ..state._versioned import make_versions

__all__ = [
    "CREATED",
    "Capabilities",
    "Check",
    "assert_same",
    "make_checkpoint",
    "new_sid",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Capabilities:
    """What the backend under test promises beyond the protocol's minimum.

    ``keeps_history``: every saved step stays loadable (SQL backends). When False (the in-memory
    backend), only the latest checkpoint of a session is retained: history is that one step.
    """

    keeps_history: bool = True


Check = Callable[[Checkpointer, Capabilities], Awaitable[None]]

CREATED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def new_sid(label: str) -> str:
    return f"conformance-{label}-{uuid.uuid4().hex[:12]}"


def make_checkpoint(
    session_id: str,
    step: int,
    *,
    messages: Sequence[Message] = (),
    extra: dict[str, Any] | None = None,
    errors: Sequence[ErrorEvent] = (),
    frontier: Sequence[str] = ("a",),
) -> Checkpoint:
    """A checkpoint as a runner would build it, with every field filled in."""
    state = VersionedState(
        messages=tuple(messages),
        extra=freeze_json(extra or {}),
        errors=tuple(errors),
        versions=make_versions(step + 1, step // 2 + 1, len(errors) + 1),
    )
    return Checkpoint(
        session_id=session_id,
        step=step,
        state=state,
        frontier=tuple(frontier),
        ran_nodes=(f"n{step}", "shared"),
        skipped_nodes=("skipped",) if step % 2 else (),
        updated_channels=("messages", "extra"),
        cursor=freeze_json({"seq": step * 10, "seen": {"a": [step, 1]}, "joins": []}),
        created_at=CREATED + timedelta(seconds=step),
    )


def assert_same(loaded: Checkpoint | None, saved: Checkpoint) -> None:
    """Equal in every field; ``created_at`` to the second (SQL backends store whole seconds)."""
    assert loaded is not None, f"step {saved.step} of {saved.session_id!r} was not found"
    assert loaded.created_at.tzinfo is not None, "created_at must be timezone-aware"
    delta = abs(loaded.created_at - saved.created_at)
    assert delta < timedelta(seconds=1), f"created_at {loaded.created_at} != {saved.created_at}"
    assert replace(loaded, created_at=saved.created_at) == saved, (loaded, saved)
