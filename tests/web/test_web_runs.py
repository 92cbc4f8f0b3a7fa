"""Which stored event dicts end a followed stream."""

from __future__ import annotations

from typing import Any

from weavegraph.events.model import STREAM_END_SCOPE, diagnostic_event
from weavegraph.events.model import is_stream_end_json as _is_end


def test_only_the_frameworks_stream_end_diagnostic_ends_a_stream() -> None:
    framework: dict[str, Any] = diagnostic_event(
        STREAM_END_SCOPE, "status=completed"
    ).to_json_value()
    from_node = diagnostic_event(STREAM_END_SCOPE, "fake", node_id="n", step=1).to_json_value()
    as_node_event = {**framework, "type": "node"}
    assert _is_end(framework)
    assert not _is_end(from_node)
    assert not _is_end(as_node_event)
