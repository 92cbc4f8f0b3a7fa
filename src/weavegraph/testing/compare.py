"""Replay checks: two runs of a deterministic graph give the same state and the same events.

Events are compared in a normalized form: timestamps, ``seq`` and durations are
dropped, the session id is replaced by a placeholder, and the events of nodes that ran
concurrently are grouped per node (each node's own order kept), since their interleaving depends
on timing, not on the graph.
"""

from __future__ import annotations

import difflib
import pprint
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..events.model import Event
from ..events.streaming import EventStream
from ..state import VersionedState

if TYPE_CHECKING:
    from ..app import App

__all__ = ["RecordedRun", "RunComparison", "compare_runs", "normalize_events", "record_run"]

VOLATILE_METADATA = frozenset({"duration_ms"})
SESSION_PLACEHOLDER = "<session>"


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordedRun:
    """A finished run: its final state and every event it emitted, in order."""

    state: VersionedState
    events: tuple[Event, ...]


async def record_run(
    app: App,
    state: VersionedState | str,
    *,
    session_id: str | None = None,
    lifecycle: bool = False,
    clock: object | None = None,
) -> RecordedRun:
    """Run ``app`` to completion and keep its final state and events."""
    final, stream = await app.invoke_with_channel(
        state, session_id=session_id, lifecycle=lifecycle, clock=clock
    )
    return RecordedRun(state=final, events=tuple(await stream.collect()))


def normalize_events(
    events: Iterable[Event], *, ignore_session: bool = True
) -> list[dict[str, Any]]:
    """The events in comparable form (see the module docstring)."""
    ordered = _group_concurrent(list(events))
    return [_normalize(event, ignore_session) for event in ordered]


def _group_concurrent(events: list[Event]) -> list[Event]:
    # Consecutive events that name a node are the work of one step's (possibly concurrent)
    # nodes: a stable sort by (step, node) removes the timing-dependent interleaving.
    out: list[Event] = []
    run: list[Event] = []
    for event in events:
        if event.node_id is not None:
            run.append(event)
            continue
        out += sorted(run, key=_node_key)
        run = []
        out.append(event)
    out += sorted(run, key=_node_key)
    return out


def _node_key(event: Event) -> tuple[int, str]:
    return (event.step or 0, event.node_id or "")


def _normalize(event: Event, ignore_session: bool) -> dict[str, Any]:
    session = event.session_id
    message = event.message
    if ignore_session and session:
        message = message.replace(session, SESSION_PLACEHOLDER)
    metadata = {k: v for k, v in event.metadata.items() if k not in VOLATILE_METADATA}
    return {
        "type": str(event.type),
        "scope": event.scope,
        "message": message,
        "metadata": metadata,
        "session_id": SESSION_PLACEHOLDER if ignore_session and session else session,
    }


@dataclass(frozen=True, slots=True, kw_only=True)
class RunComparison:
    """The outcome of :func:`compare_runs`; true when both state and events match."""

    same_state: bool
    same_events: bool
    differences: tuple[str, ...]

    def __bool__(self) -> bool:
        return self.same_state and self.same_events

    def __str__(self) -> str:
        return "runs match" if self else "\n".join(self.differences)


RunLike = RecordedRun | tuple[VersionedState, Sequence[Event]]


def compare_runs(a: RunLike, b: RunLike, *, ignore_session: bool = True) -> RunComparison:
    """Compare two runs' final states and normalized event sequences.

    ``assert compare_runs(first, second)`` fails with a readable diff (``str(result)``).
    """
    state_a, events_a = _unpack(a)
    state_b, events_b = _unpack(b)
    differences: list[str] = []
    json_a, json_b = state_a.to_json_value(), state_b.to_json_value()
    same_state = json_a == json_b
    if not same_state:
        differences.append("final states differ:\n" + _diff(json_a, json_b))
    norm_a = normalize_events(events_a, ignore_session=ignore_session)
    norm_b = normalize_events(events_b, ignore_session=ignore_session)
    same_events = norm_a == norm_b
    if not same_events:
        differences.append(
            f"event sequences differ ({len(norm_a)} vs {len(norm_b)} events):\n"
            + _diff(norm_a, norm_b)
        )
    return RunComparison(
        same_state=same_state, same_events=same_events, differences=tuple(differences)
    )


def _unpack(run: RunLike) -> tuple[VersionedState, Sequence[Event]]:
    if isinstance(run, RecordedRun):
        return run.state, run.events
    state, events = run
    if isinstance(events, EventStream):
        # The pair invoke_with_channel returns: its stream is async, compare_runs is not.
        raise TypeError(
            "compare_runs needs the events themselves, not an EventStream: pass "
            "(state, await events.collect()) or use record_run(app, state)"
        )
    return state, events


def _diff(a: object, b: object) -> str:
    lines = difflib.unified_diff(
        pprint.pformat(a, width=100).splitlines(),
        pprint.pformat(b, width=100).splitlines(),
        "first",
        "second",
        lineterm="",
        n=2,
    )
    return "\n".join(lines)
