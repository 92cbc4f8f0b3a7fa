"""The event model: constructors, normalized JSON form, stream-end parsing, the shipped schema."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from weavegraph.events import (
    LLM_FINAL_SCOPE,
    STREAM_END_SCOPE,
    Event,
    EventType,
    LifecycleKind,
    NullEmitter,
    RunStatus,
    diagnostic_event,
    event_schema,
    lifecycle_event,
    llm_event,
    node_event,
    parse_stream_end,
    stream_end_event,
)
from weavegraph.status import STREAM_END_STATUSES

KEYS = {"type", "scope", "message", "timestamp", "metadata", "seq", "session_id"}


def validate(value: dict[str, Any]) -> None:
    jsonschema.Draft202012Validator(
        event_schema(), format_checker=jsonschema.FormatChecker()
    ).validate(value)


def every_kind_of_event() -> list[Event]:
    events = [
        node_event("fetch", 2, "progress", "50%", {"pct": 50}),
        diagnostic_event("retry", "attempt 2", node_id="fetch", step=2),
        diagnostic_event("warning", "framework-level"),
        llm_event("chunk", "Hel", node_id="llm", step=1, stream_id="s1"),
        llm_event(LLM_FINAL_SCOPE, "Hello", node_id="llm", step=1),
        llm_event("error", "rate limited", node_id="llm", step=1, stream_id="s1"),
        *(lifecycle_event(kind, kind.value, step=1, node_id="n") for kind in LifecycleKind),
        lifecycle_event(LifecycleKind.RUN_START, "run", metadata={"graph_hash": "abc"}),
        *(stream_end_event("sess-1", status, 3) for status in sorted(STREAM_END_STATUSES)),
    ]
    return [event.with_sequence(i, "sess-1") for i, event in enumerate(events, start=1)]


def test_normalized_shape_has_exactly_the_seven_keys() -> None:
    event = node_event("a", 1, "scope", "msg", {"k": [1, 2]}).with_sequence(7, "s")
    value = event.to_json_value()
    assert set(value) == KEYS
    assert value["type"] == "node"
    assert value["metadata"] == {"k": [1, 2], "node_id": "a", "step": 1}
    assert value["seq"] == 7
    assert value["session_id"] == "s"
    assert '"seq":7' in event.to_json_string()
    assert "\n" in event.to_json_pretty()


@pytest.mark.parametrize("event", every_kind_of_event(), ids=lambda e: f"{e.type}:{e.scope}")
def test_every_kind_of_event_validates_against_the_shipped_schema(event: Event) -> None:
    validate(event.to_json_value())


@pytest.mark.parametrize(
    "broken",
    [
        {"type": "node", "metadata": {}},
        {"type": "unknown"},
        {"type": "llm", "scope": "partial"},
        {"scope": STREAM_END_SCOPE, "message": "finished"},
        {"seq": "one"},
        {"extra_key": 1},
    ],
)
def test_schema_rejects_malformed_events(broken: dict[str, Any]) -> None:
    value = node_event("a", 1, "s", "m").with_sequence(1, "s").to_json_value()
    value.update(broken)
    with pytest.raises(jsonschema.ValidationError):
        validate(value)


def test_json_round_trip() -> None:
    event = llm_event("chunk", "tok", node_id="n", step=4, stream_id="x").with_sequence(3, "s")
    again = Event.from_json_value(event.to_json_value())
    assert again == event


def test_node_metadata_cannot_override_node_id_or_step() -> None:
    event = node_event("real", 2, "s", "m", {"node_id": "fake", "step": 99, "other": 1})
    assert (event.node_id, event.step, event.metadata["other"]) == ("real", 2, 1)


def test_llm_final_uses_scope_final_and_is_not_the_stream_end() -> None:
    final = llm_event(LLM_FINAL_SCOPE, "done", node_id="n", step=1)
    assert final.scope == "final"
    assert final.type == EventType.LLM
    assert not final.is_stream_end
    with pytest.raises(ValueError, match="chunk, final or error"):
        llm_event("done", "x", node_id="n", step=1)


@pytest.mark.parametrize("status", sorted(STREAM_END_STATUSES))
def test_stream_end_message_round_trips(status: RunStatus) -> None:
    event = stream_end_event("abc-123", status, 12, seq=40)
    assert event.message == f"session=abc-123 status={status.value} step=12"
    assert event.is_stream_end
    assert event.session_id == "abc-123"
    parsed = parse_stream_end(event)
    assert parsed is not None
    assert (parsed.session_id, parsed.status, parsed.step) == ("abc-123", status, 12)


def test_parse_stream_end_ignores_other_events() -> None:
    assert parse_stream_end(diagnostic_event("x", "session=a status=completed step=1")) is None
    borrowed = diagnostic_event(
        STREAM_END_SCOPE, "session=a status=completed step=1", node_id="n", step=1
    )
    assert not borrowed.is_stream_end  # a node cannot end a stream by borrowing the scope
    assert parse_stream_end(borrowed) is None
    with pytest.raises(ValueError, match="'done'"):
        stream_end_event("s", "done", 1)


def test_timestamps_are_aware_and_injectable() -> None:
    when = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    assert node_event("a", 1, "s", "m", timestamp=when).timestamp == when
    assert node_event("a", 1, "s", "m").timestamp.tzinfo is not None


def test_null_emitter_swallows_events() -> None:
    emitter = NullEmitter()
    assert emitter.lifecycle is False
    emitter.publish(node_event("a", 1, "s", "m"))


@pytest.mark.slow
def test_the_schema_ships_in_the_wheel(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(root),
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("weavegraph-*.whl")
    assert "weavegraph/events/event.schema.json" in zipfile.ZipFile(wheel).namelist()


def test_stream_status_is_a_deprecated_alias_of_run_status() -> None:
    import weavegraph.events as events

    with pytest.warns(DeprecationWarning, match="RunStatus"):
        alias = events.StreamStatus  # pyright: ignore[reportAttributeAccessIssue]
    assert alias is RunStatus
    assert RunStatus.STOPPED == "stopped"
