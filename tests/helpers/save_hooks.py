"""A checkpointer test double's one place to act before a save or an events append.

Mix ``SaveHooks`` in before a real checkpointer class and override :meth:`before_save` /
:meth:`before_append` to record, fail or wait; the write itself is the real checkpointer's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from weavegraph.checkpoint import Checkpoint


class SaveHooks:
    """``save`` and ``append_events`` that call a hook first, then the checkpointer's own."""

    async def before_save(
        self, checkpoint: Checkpoint, events: Sequence[Mapping[str, Any]]
    ) -> None:
        """Called with each save's checkpoint and events; raise to fail the save."""

    async def before_append(self, session_id: str, events: Sequence[Mapping[str, Any]]) -> None:
        """Called with each append's events; raise to fail the append."""

    async def save(
        self,
        checkpoint: Checkpoint,
        *,
        events: Sequence[Mapping[str, Any]] = (),
        builds_on: int | None = None,
    ) -> None:
        await self.before_save(checkpoint, events)
        await super().save(checkpoint, events=events, builds_on=builds_on)  # pyright: ignore[reportAttributeAccessIssue]

    async def append_events(
        self,
        session_id: str,
        events: Sequence[Mapping[str, Any]],
        *,
        builds_on: int | None = None,
    ) -> None:
        await self.before_append(session_id, events)
        await super().append_events(session_id, events, builds_on=builds_on)  # pyright: ignore[reportAttributeAccessIssue]
