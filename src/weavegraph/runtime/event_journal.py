"""The events of a session not yet stored: collected as they are emitted, taken at each save
(``journal.py`` is the other journal: a step's task results).

Every event a session emits is added here (by the ``EventStamper``, whatever the event bus does
with it), and the run loop hands what is pending to the checkpointer with the step's checkpoint,
so the stored log never depends on how fast a live consumer reads. Memory stays bounded however
many events a step emits: beyond :data:`MEMORY_EVENTS` pending events, the older ones are spilled
to an anonymous temporary file, and :meth:`EventJournal.take` gives them back in batches.
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Iterator
from typing import IO, Any, Final

import orjson

from ..events.model import Event

__all__ = ["BATCH_EVENTS", "MEMORY_EVENTS", "NOTHING", "EventJournal", "PendingEvents"]

MEMORY_EVENTS: Final = 2048
"""Pending events kept in memory; beyond this they are spilled to a temporary file."""
BATCH_EVENTS: Final = 2048
"""Events per write when a step's events are stored in several batches (see ``PendingEvents``)."""


class PendingEvents:
    """What :meth:`EventJournal.take` took: the events in seq order, spilled ones first.

    ``len()`` is their number; :meth:`batches` reads them as lists of event JSON mappings of at
    most ``BATCH_EVENTS`` each (reading the spilled ones back from disk one batch at a time).
    """

    __slots__ = ("_events", "_spill", "_spilled")

    def __init__(self, events: list[Event], spill: IO[bytes] | None, spilled: int) -> None:
        self._events = events
        self._spill = spill
        self._spilled = spilled

    def __len__(self) -> int:
        return self._spilled + len(self._events)

    def json(self) -> list[dict[str, Any]]:
        """All of them at once (for the usual small step: no spill file)."""
        if self._spill is None:
            return [event.to_json_value() for event in self._events]
        return [event for batch in self.batches() for event in batch]

    def batches(self) -> Iterator[list[dict[str, Any]]]:
        """The events in order, ``BATCH_EVENTS`` at a time; the spill file is closed at the end."""
        if self._spill is not None:
            spill, self._spill = self._spill, None
            with spill:
                spill.seek(0)
                batch: list[dict[str, Any]] = []
                for line in spill:
                    batch.append(orjson.loads(line))
                    if len(batch) >= BATCH_EVENTS:
                        yield batch
                        batch = []
                if batch:
                    yield batch
        events = self._events
        for start in range(0, len(events), BATCH_EVENTS):
            yield [event.to_json_value() for event in events[start : start + BATCH_EVENTS]]

    def discard(self) -> None:
        """Release the spill file without reading it."""
        if self._spill is not None:
            self._spill.close()
            self._spill = None


NOTHING: Final = PendingEvents([], None, 0)
"""What :meth:`EventJournal.take` returns when nothing is pending (always this object)."""


class EventJournal:
    """A session's emitted events not yet handed to storage. Thread-safe (worker threads emit)."""

    __slots__ = ("_events", "_lock", "_spill", "_spilled", "memory_events")

    def __init__(self, memory_events: int = MEMORY_EVENTS) -> None:
        self._lock = threading.Lock()
        self._events: list[Event] = []
        self._spill: IO[bytes] | None = None
        self._spilled = 0
        self.memory_events = memory_events

    def __len__(self) -> int:
        return self._spilled + len(self._events)

    def add(self, event: Event) -> None:
        """Keep ``event`` until the next :meth:`take` (spilling older ones beyond the bound)."""
        with self._lock:
            self._events.append(event)
            if len(self._events) > self.memory_events:
                self._spill_out()

    def _spill_out(self) -> None:
        if self._spill is None:
            # Closed by PendingEvents once read back (or discarded): it outlives this call.
            self._spill = tempfile.TemporaryFile(prefix="weavegraph-events-")  # noqa: SIM115
        lines = [orjson.dumps(event.to_json_value()) for event in self._events]
        lines.append(b"")
        self._spill.write(b"\n".join(lines))
        self._spilled += len(self._events)
        self._events = []

    def take(self) -> PendingEvents:
        """Everything pending, in seq order; the journal starts empty again."""
        with self._lock:
            if not self._events and self._spill is None:
                return NOTHING
            taken = PendingEvents(self._events, self._spill, self._spilled)
            self._events, self._spill, self._spilled = [], None, 0
            return taken
