"""In-memory checkpointer: the latest checkpoint of each session, nothing else (automatic retention).

History therefore has one entry per session (its latest step), and ``load`` of any older step
returns None. Checkpoints are immutable values, so they are kept as-is: no serialization, no copies.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

from ..state import freeze_json
from .base import (
    Checkpoint,
    SessionInfo,
    StepInfo,
    is_subgraph_key,
    loaded_form,
    storage_key,
    subgraph_keys_prefix,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Entry:
    latest: Checkpoint
    created_at: datetime
    updated_at: datetime


def step_info(checkpoint: Checkpoint) -> StepInfo:
    """The history entry describing ``checkpoint``."""
    return StepInfo(
        step=checkpoint.step,
        created_at=checkpoint.created_at,
        ran_nodes=checkpoint.ran_nodes,
        skipped_nodes=checkpoint.skipped_nodes,
        updated_channels=checkpoint.updated_channels,
    )


class InMemoryCheckpointer:
    """Keeps the latest checkpoint per session in a dict; for tests and ephemeral runs."""

    keeps_history: ClassVar[bool] = False

    def __init__(self) -> None:
        self._sessions: dict[str, _Entry] = {}  # by storage key: subgraphs apart
        self._events: dict[str, dict[int, dict[str, Any]]] = {}
        # Per session, saved task results by the step they build on, then by task index.
        self._tasks: dict[str, dict[int, dict[int, Any]]] = {}
        # Saves are synchronous dict updates, so no lock is needed; the lock-free design relies on
        # never awaiting between reading and writing an entry.

    @classmethod
    async def connect(cls) -> InMemoryCheckpointer:
        """Symmetry with the SQL backends: ``await InMemoryCheckpointer.connect()``."""
        return cls()

    async def save(self, checkpoint: Checkpoint) -> None:
        """Store ``checkpoint`` if it is not older than the session's latest (the latest wins)."""
        now = datetime.now(UTC)
        key = storage_key(checkpoint.session_id, checkpoint.namespace)
        tasks = self._tasks.get(key)
        if tasks:  # saved task results of a committed step are dropped with the commit
            keep = checkpoint.keep_tasks_of
            for step in [step for step in tasks if step != keep]:
                del tasks[step]
        entry = self._sessions.get(key)
        if entry is None:
            self._sessions[key] = _Entry(latest=checkpoint, created_at=now, updated_at=now)
        elif checkpoint.step >= entry.latest.step:
            self._sessions[key] = _Entry(
                latest=checkpoint, created_at=entry.created_at, updated_at=now
            )
        await asyncio.sleep(0)  # a save is a yield point for every backend; keep that true here

    async def load_latest(self, session_id: str, *, namespace: str = "") -> Checkpoint | None:
        entry = self._sessions.get(storage_key(session_id, namespace))
        return loaded_form(entry.latest, session_id, namespace) if entry else None

    async def load(self, session_id: str, step: int, *, namespace: str = "") -> Checkpoint | None:
        """The checkpoint of ``step`` if it is the latest (older steps are not retained)."""
        latest = await self.load_latest(session_id, namespace=namespace)
        return latest if latest is not None and latest.step == step else None

    async def list_sessions(self) -> list[SessionInfo]:
        return [
            SessionInfo(
                session_id=session_id,
                created_at=entry.created_at,
                updated_at=entry.updated_at,
                latest_step=entry.latest.step,
            )
            for session_id, entry in self._sessions.items()
            if not is_subgraph_key(session_id)
        ]

    async def history(self, session_id: str, *, namespace: str = "") -> list[StepInfo]:
        entry = self._sessions.get(storage_key(session_id, namespace))
        return [step_info(entry.latest)] if entry else []

    async def delete_session(self, session_id: str) -> bool:
        found = self._sessions.pop(session_id, None) is not None
        self._tasks.pop(session_id, None)
        prefix = subgraph_keys_prefix(session_id)
        for key in [key for key in self._sessions if key.startswith(prefix)]:
            del self._sessions[key]
        for key in [key for key in self._tasks if key.startswith(prefix)]:
            del self._tasks[key]
        return self._events.pop(session_id, None) is not None or found

    async def append_events(self, session_id: str, events: Sequence[Mapping[str, Any]]) -> None:
        """Store events by ``seq``; an event with an already stored ``seq`` replaces it."""
        stored = self._events.setdefault(session_id, {})
        for event in events:
            stored[int(event["seq"])] = dict(event)

    async def load_events(self, session_id: str, after_seq: int = -1) -> list[dict[str, Any]]:
        stored = self._events.get(session_id, {})
        return [dict(stored[seq]) for seq in sorted(stored) if seq > after_seq]

    async def save_task_results(
        self,
        session_id: str,
        builds_on_step: int,
        results: Mapping[int, Any],
        *,
        namespace: str = "",
    ) -> None:
        """Keep finished task results (copied as JSON values) until a save drops them."""
        key = storage_key(session_id, namespace)
        stored = self._tasks.setdefault(key, {}).setdefault(builds_on_step, {})
        for index, result in results.items():
            stored[int(index)] = freeze_json(result)
        await asyncio.sleep(0)  # a save is a yield point, as for every backend

    async def load_task_results(
        self, session_id: str, builds_on_step: int, *, namespace: str = ""
    ) -> dict[int, Any]:
        key = storage_key(session_id, namespace)
        return dict(self._tasks.get(key, {}).get(builds_on_step, {}))

    async def close(self) -> None:
        """Nothing to release; the data stays readable until the object is dropped."""
