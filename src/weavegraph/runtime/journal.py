"""Per-task durability: a step's finished task results are saved while the step runs.

When a step has several tasks and the checkpointer keeps task results, every task's result is
handed to a :class:`TaskJournal` as soon as the task finishes; one writer coroutine saves what
has accumulated in one call (a group commit), so 10,000 tasks cost a few writes, not 10,000. If
the step then fails, pauses, or the process dies, the step runs again with only the tasks that
have no saved result (:func:`load_finished`), and the saved and new results merge in task order.
A saved result keeps the events its task emitted: when the step's commit never happened (a
crash, a failed save), the loop emits them again with the step that commits the result.
The rows are keyed by the step the tasks were planned after (``plan.task_base``) and dropped by
the checkpointer in the same transaction that commits the step.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any, cast

from ..checkpoint.base import TaskResultStore
from ..errors import CheckpointError, StateError
from ..events.model import Event
from ..events.modes import partial_json
from ..partial import FrontierCommand, NodePartial, Send
from ..state import ErrorEvent, Message, StateSchema
from .barrier import freeze_partial
from .executor import NodeFailure, Outcome

__all__ = ["TaskJournal", "decode_result", "encode_result", "load_finished", "saved_events"]


def encode_result(
    node: str, outcome: NodePartial | None, events: Sequence[Event] = ()
) -> dict[str, Any]:
    """A finished task's result as stored: its node, what it returned and the events it
    emitted (JSON)."""
    stored: dict[str, Any] = {"node": node, "partial": partial_json(outcome)}
    if events:
        stored["events"] = [event.to_json_value() for event in events]
    return stored


def saved_events(stored: object) -> list[dict[str, Any]]:
    """The events a saved task result recorded (as they were emitted, with their seqs)."""
    if not isinstance(stored, Mapping):
        return []
    events = cast("Mapping[str, Any]", stored).get("events")
    return list(cast("list[dict[str, Any]]", events)) if isinstance(events, list) else []


def decode_result(
    node: str, stored: object, schema: StateSchema | None
) -> tuple[bool, NodePartial | None]:
    """``(True, partial)`` when ``stored`` is a result of a task of ``node``, else ``(False, None)``.

    A result saved for another node (the graph changed since) is not used: the task runs again.
    """
    if not isinstance(stored, Mapping):
        return False, None
    fields = cast("Mapping[str, Any]", stored)
    if fields.get("node") != node:
        return False, None
    value = fields.get("partial")
    if value is None:
        return True, None
    try:
        return True, freeze_partial(node, _partial(cast("Mapping[str, Any]", value)), schema)
    except (KeyError, TypeError, ValueError) as exc:
        raise StateError(f"a saved result of a task of {node!r} is malformed: {exc}") from exc


def _partial(value: Mapping[str, Any]) -> NodePartial:
    frontier = value.get("frontier")
    sends = value.get("sends") or ()
    return NodePartial(
        messages=[Message.from_json_value(m) for m in value.get("messages") or ()],
        extra=value.get("extra"),
        errors=[ErrorEvent.from_json_value(e) for e in value.get("errors") or ()],
        frontier=FrontierCommand(frontier["kind"], tuple(frontier["targets"]))
        if frontier is not None
        else None,
        sends=[Send(send["node"], send.get("input")) for send in sends],
    )


async def load_finished(
    store: TaskResultStore, session_id: str, namespace: str, base: int
) -> dict[int, Any]:
    """The saved results of the tasks planned after step ``base``, by task index."""
    try:
        return await store.load_task_results(session_id, base, namespace=namespace)
    except CheckpointError:
        raise
    except Exception as exc:
        raise CheckpointError(
            f"loading the finished tasks of session {session_id!r} failed: {exc}"
        ) from exc


class TaskJournal:
    """Saves one step's finished task results as they come, in batches (see the module doc).

    :meth:`record` never waits; :meth:`settle` waits until everything recorded is saved (a
    failed write raises CheckpointError there). :meth:`abandon` stops writing (the step was
    cancelled).
    """

    __slots__ = ("_base", "_namespace", "_pending", "_session_id", "_store", "_writer")

    def __init__(self, store: TaskResultStore, session_id: str, namespace: str, base: int) -> None:
        self._store = store
        self._session_id = session_id
        self._namespace = namespace
        self._base = base
        self._pending: dict[int, Any] = {}
        self._writer: asyncio.Task[None] | None = None

    def record(self, index: int, node: str, outcome: Outcome, events: Sequence[Event] = ()) -> None:
        """Queue a finished task's result and the events it emitted (failures are not results:
        that task runs again)."""
        if isinstance(outcome, NodeFailure):
            return
        self._pending[index] = encode_result(node, outcome, events)
        if self._writer is None:
            self._writer = asyncio.ensure_future(self._write())

    async def _write(self) -> None:
        # Everything queued while a write is in flight goes in the next one (a group commit).
        while self._pending:
            batch, self._pending = self._pending, {}
            try:
                await self._store.save_task_results(
                    self._session_id, self._base, batch, namespace=self._namespace
                )
            except CheckpointError:
                raise
            except Exception as exc:
                raise CheckpointError(
                    f"saving finished tasks of session {self._session_id!r} failed: {exc}"
                ) from exc
        self._writer = None  # (a failed writer stays: settle() raises its error)

    async def settle(self) -> None:
        """Wait until every recorded result is saved; raise the first write failure."""
        while self._writer is not None:
            await self._writer

    def abandon(self) -> None:
        """Stop saving (the step was cancelled or failed: what was not saved runs again)."""
        self._pending.clear()
        writer, self._writer = self._writer, None
        if writer is None:
            return
        if writer.done():
            if not writer.cancelled():
                writer.exception()  # retrieved: it was reported, or the step failed anyway
        else:
            writer.cancel()
