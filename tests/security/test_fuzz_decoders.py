"""Property-based fuzzing of every decoder a user can reach: state JSON, event JSON, the SSE
``Last-Event-ID`` header and ``--state`` files. Whatever the input, the answer is a value or a
clear error (one of weavegraph's errors, a 4xx, exit status 2), never a raw exception."""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from web_app import serve_in_process

import weavegraph as wg
from weavegraph.cli import main
from weavegraph.cli._run import read_state
from weavegraph.events.model import Event

FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
)
json_like: st.SearchStrategy[Any] = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
STATE_KEYS = ["messages", "extra", "errors", "versions"]
MESSAGE_KEYS = ["role", "content", "id", "name", "metadata", "tool_calls"]
ERROR_KEYS = ["message", "scope", "node_id", "step", "error_type", "traceback", "tags", "context"]


def _objects(keys: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    """Objects using mostly the decoder's own keys, with any values: the shapes it must check."""
    return st.dictionaries(st.sampled_from(keys) | st.text(max_size=6), json_like, max_size=6)


def _nested(depth: int, leaf: Any = 1) -> Any:
    value = leaf
    for index in range(depth):
        value = [value] if index % 2 else {"k": value}
    return value


state_documents = st.one_of(
    json_like,
    st.fixed_dictionaries(
        {},
        optional={
            "messages": st.lists(_objects(MESSAGE_KEYS), max_size=3) | json_like,
            "extra": st.dictionaries(st.text(max_size=6), json_like, max_size=4) | json_like,
            "errors": st.lists(_objects(ERROR_KEYS), max_size=3) | json_like,
            "versions": st.dictionaries(st.sampled_from(STATE_KEYS), json_like) | json_like,
        },
    ),
    st.integers(min_value=1, max_value=3000).map(lambda d: {"extra": {"deep": _nested(d)}}),
)


def _decodes_or_refuses(decode: Callable[[], Any], refusal: type[Exception]) -> None:
    try:
        decode()
    except refusal as exc:
        message = str(exc)
    else:
        return
    assert message, "an error must say what is wrong"


@FUZZ
@given(document=state_documents)
def test_state_json_decodes_or_is_a_state_error(document: Any) -> None:
    _decodes_or_refuses(lambda: wg.VersionedState.from_json_value(document), wg.StateError)


event_documents = st.one_of(
    json_like,
    st.fixed_dictionaries(
        {},
        optional={
            "type": st.sampled_from(["node", "llm", "diagnostic"]) | json_like,
            "scope": st.text(max_size=10) | json_like,
            "message": st.text(max_size=10) | json_like,
            "timestamp": st.datetimes().map(lambda d: d.isoformat()) | json_like,
            "metadata": st.dictionaries(st.text(max_size=6), json_like) | json_like,
            "seq": st.integers(min_value=-(2**70), max_value=2**70) | json_like,
            "session_id": st.text(max_size=10) | json_like,
        },
    ),
)


@FUZZ
@given(document=event_documents)
def test_event_json_decodes_or_is_a_value_error(document: Any) -> None:
    # Event JSON is refused with ValueError (StateError is one too), naming the field.
    _decodes_or_refuses(lambda: Event.from_json_value(document), ValueError)


header_values = st.binary(max_size=40).map(
    lambda raw: bytes(b for b in raw if b not in b"\r\n\x00")
) | st.text(alphabet=st.characters(codec="utf-8"), max_size=30).map(str.encode)


async def test_last_event_id_is_an_event_seq_or_a_400(app_client: Any) -> None:
    async with app_client() as app:
        started = await app.client.post("/api/runs", json={"input": "x"})
        session_id = started.json()["session_id"]
        url = f"/api/runs/{session_id}/events"
        assert (await app.client.get(url)).status_code == 200  # the run has finished
        seen: list[int] = []

        @FUZZ
        @given(value=header_values | st.integers(-(2**64), 2**64).map(lambda n: str(n).encode()))
        def check(value: bytes) -> None:
            response = asyncio.run_coroutine_threadsafe(
                app.client.get(url, headers={"Last-Event-ID": value}), loop
            ).result()
            seen.append(response.status_code)
            assert response.status_code in (200, 400), (value, response.text)

        loop = asyncio.get_running_loop()
        await asyncio.to_thread(check)
        assert 200 in seen
        assert 400 in seen


@FUZZ
@given(document=state_documents)
def test_state_bodies_are_accepted_or_a_400(document: Any) -> None:
    async def post() -> int:
        async with serve_in_process() as app:
            try:
                body = orjson.dumps({"state": document})
            except TypeError:  # beyond 64-bit integers: orjson cannot even send them
                return 400
            response = await app.client.post(
                "/api/runs", content=body, headers={"Content-Type": "application/json"}
            )
            return response.status_code

    assert asyncio.run(post()) in (202, 400)


def _dump(document: Any) -> bytes:
    try:
        return orjson.dumps(document)
    except TypeError:  # integers beyond 64 bits, or deeper than orjson writes
        pass
    try:
        return json.dumps(document).encode()
    except RecursionError:  # too deep for any encoder: a deep document written by hand
        return b'{"extra": {"deep": ' + b"[" * 3000 + b"]" * 3000 + b"}}"


state_files = st.binary(max_size=200) | state_documents.map(_dump)


@FUZZ
@given(content=state_files)
def test_state_files_are_read_or_a_config_error(content: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "state.json"
        path.write_bytes(content)
        _decodes_or_refuses(lambda: read_state(str(path)), wg.ConfigError)


@pytest.mark.parametrize(
    "content",
    [
        b"[" * 600 + b"]" * 600,
        b'{"extra": {"a": ' + b"[" * 600 + b"]" * 600 + b"}}",
        b'{"extra": {"a": ' + b"[" * 300 + b"]" * 300 + b"}}",
        b'{"messages": [{"role": 5, "content": []}]}',
        b'{"errors": [{"message": 5}]}',
        b'{"versions": {"messages": "x"}}',
        b"\xff\xfe",
    ],
)
def test_bad_state_files_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes
) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(content)
    argv = ["run", "weavegraph.demo:demo_app", "--state", str(path), "--checkpointer", "memory"]
    assert main([*argv, "--events", "none"]) == 2
    assert "--state file" in capsys.readouterr().err
