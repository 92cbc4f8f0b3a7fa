"""Property (c): any state survives a JSON round trip, through real JSON text."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

import weavegraph as wg

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)

messages = st.builds(
    wg.Message,
    role=st.sampled_from(["user", "assistant", "system", "tool", "critic"]),
    content=st.text(max_size=40),
    id=st.none() | st.text(min_size=1, max_size=8),
    name=st.none() | st.text(min_size=1, max_size=8),
    metadata=st.dictionaries(st.text(max_size=8), json_values, max_size=3),
)

errors = st.builds(
    wg.ErrorEvent,
    message=st.text(min_size=1, max_size=40),
    scope=st.sampled_from(["node", "router", "app"]),
    node_id=st.none() | st.text(min_size=1, max_size=8),
    step=st.none() | st.integers(min_value=0, max_value=10_000),
    error_type=st.none() | st.just("ValueError"),
    tags=st.lists(st.text(max_size=5), max_size=3).map(tuple),
    context=st.dictionaries(st.text(max_size=8), json_values, max_size=3),
)

states = st.builds(
    wg.VersionedState,
    messages=st.lists(messages, max_size=5).map(tuple),
    extra=st.dictionaries(st.text(max_size=10), json_values, max_size=6),
    errors=st.lists(errors, max_size=3).map(tuple),
    versions=st.fixed_dictionaries(
        {
            "messages": st.integers(min_value=1, max_value=10**6),
            "extra": st.integers(min_value=1, max_value=10**6),
            "errors": st.integers(min_value=1, max_value=10**6),
        }
    ),
)


@settings(max_examples=150, deadline=None)
@given(state=states)
def test_state_round_trips_through_json_text(state: wg.VersionedState) -> None:
    text = orjson.dumps(state.to_json_value())
    parsed: Any = orjson.loads(text)
    back = wg.VersionedState.from_json_value(parsed)
    assert back == state
    assert back.to_json_value() == state.to_json_value()
    assert back.snapshot() == state.snapshot()
