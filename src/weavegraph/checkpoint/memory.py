"""In-memory checkpointer: the latest checkpoint of each session, nothing else (automatic retention).

History therefore has one entry per session (its latest step), and ``load`` of any older step
returns None. Checkpoints are immutable values, so they are kept as-is: no serialization, no copies.
Fences and event rows follow the same save plan as the SQL backends (``_save_plan``); every
stored event is kept (with the step it belongs to) until the session is deleted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

from ..state import freeze_json
from . import _codec as codec
from . import _save_plan as saves
from .base import (
    Checkpoint,
    SessionInfo,
    StepInfo,
    check_events_query,
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
        self._events: dict[str, dict[int, tuple[int | None, bytes]]] = {}  # seq: (step, JSON)
        # Per session, saved task results by the step they build on, then by task index.
        self._tasks: dict[str, dict[int, dict[int, Any]]] = {}
        # Saves are synchronous dict updates, so no lock is needed; the lock-free design relies on
        # never awaiting between reading and writing an entry.

    @classmethod
    async def connect(cls) -> InMemoryCheckpointer:
        """Symmetry with the SQL backends: ``await InMemoryCheckpointer.connect()``."""
        return cls()

    async def save(
        self,
        checkpoint: Checkpoint,
        *,
        events: Sequence[Mapping[str, Any]] = (),
        builds_on: int | None = None,
    ) -> None:
        """Store ``checkpoint`` (unless older than the latest: the latest wins) and its events."""
        saves.check_builds_on(builds_on)
        key = storage_key(checkpoint.session_id, checkpoint.namespace)
        entry = self._sessions.get(key)
        plan = saves.plan_save(
            key, checkpoint.step, builds_on, entry.latest.step if entry else None, events
        )
        # First: a duplicate seq refuses the whole save. Events belong to the session.
        self._store_events(checkpoint.session_id, plan.events)
        tasks = self._tasks.get(key)
        if tasks:  # saved task results of a committed step are dropped with the commit
            keep = checkpoint.keep_tasks_of
            for step in [step for step in tasks if step != keep]:
                del tasks[step]
        now = datetime.now(UTC)
        if entry is None:
            self._sessions[key] = _Entry(latest=checkpoint, created_at=now, updated_at=now)
        elif plan.moves_head:
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

    async def append_events(
        self,
        session_id: str,
        events: Sequence[Mapping[str, Any]],
        *,
        builds_on: int | None = None,
    ) -> None:
        """Store events with the session's latest step; a ``seq`` already stored is a conflict
        (an unfenced append replaces it)."""
        saves.check_builds_on(builds_on)
        entry = self._sessions.get(session_id)
        latest = entry.latest.step if entry else None
        plan = saves.plan_append(session_id, builds_on, latest, events)
        self._store_events(session_id, plan.rows, replaces=plan.replaces)

    def _store_events(
        self, session_id: str, rows: Sequence[saves.EventRow], *, replaces: bool = False
    ) -> None:
        if not rows:
            return
        stored = self._events.setdefault(session_id, {})
        for seq, _, _ in rows:
            if seq in stored and not replaces:
                raise saves.duplicate_seq(session_id, seq)
        for seq, step, data in rows:
            stored[seq] = (step, data)

    async def load_events(
        self, session_id: str, after_seq: int = -1, limit: int | None = None
    ) -> list[dict[str, Any]]:
        check_events_query(after_seq, limit)
        stored = self._events.get(session_id, {})
        seqs = [seq for seq in sorted(stored) if seq > after_seq]
        return [codec.loads(stored[seq][1]) for seq in seqs[:limit]]

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
