"""AnthropicChat through the real ``anthropic`` SDK against a local server speaking Messages SSE."""

from __future__ import annotations

from typing import Any

import pytest
from fake_providers import (
    FakeProvider,
    Reply,
    anthropic_answer,
    anthropic_answer_events,
    anthropic_error,
    anthropic_events,
)

import weavegraph as wg
from weavegraph.llm import AnthropicChat, StreamItem, TextDelta, ToolCallDelta


def lookup(term: str, limit: int = 3) -> list[str]:
    """Search the notes for a term."""
    return [term] * limit


async def collect(fake: FakeProvider, messages: list[wg.Message], **kw: Any) -> list[StreamItem]:
    async with AnthropicChat("claude-fake", base_url=fake.url, api_key="sk-ant-test") as model:
        return [item async for item in model.stream(messages, **kw)]


async def test_text_and_tool_use_blocks_stream_as_deltas() -> None:
    calls = [("toolu_1", "lookup", {"term": "barrier", "limit": 2})]
    with FakeProvider([anthropic_answer("Let me check.", calls)]) as fake:
        items = await collect(
            fake, [wg.Message.user("what is a barrier?")], tools=[wg.llm.tool(lookup)]
        )
    *deltas, final = items
    texts = [d for d in deltas if isinstance(d, TextDelta)]
    pieces = [d for d in deltas if isinstance(d, ToolCallDelta)]
    assert "".join(t.text for t in texts) == "Let me check."
    assert pieces[0] == ToolCallDelta(index=0, id="toolu_1", name="lookup")
    assert len(pieces) > 3, "input_json_delta pieces arrive one by one"
    assert isinstance(final, wg.Message)
    assert final.content == "Let me check."
    assert final.tool_calls == (wg.ToolCall("toolu_1", "lookup", {"term": "barrier", "limit": 2}),)
    assert final.metadata["finish_reason"] == "tool_use"
    assert final.metadata["usage"] == {"input_tokens": 21, "output_tokens": 9}
    request = fake.requests[0]
    assert request.path == "/v1/messages"
    credentials = (request.headers.get("x-api-key"), request.headers.get("authorization"))
    assert any("sk-ant-test" in (value or "") for value in credentials)
    assert request.body["max_tokens"] == 4096
    (offered,) = request.body["tools"]
    assert offered["name"] == "lookup"
    assert offered["description"] == "Search the notes for a term."
    assert offered["input_schema"]["required"] == ["term"]


async def test_history_becomes_system_text_and_tool_result_blocks() -> None:
    history = [
        wg.Message.system("be brief"),
        wg.Message.user("look up two things"),
        wg.Message.assistant(
            "",
            tool_calls=[
                wg.ToolCall("t1", "lookup", {"term": "a"}),
                wg.ToolCall("t2", "lookup", {"term": "b"}),
            ],
        ),
        wg.Message.tool("found a", "t1"),
        wg.Message("tool", "Error: boom", tool_call_id="t2", metadata={"is_error": True}),
    ]
    with FakeProvider([anthropic_answer("Done.")]) as fake:
        (*_, final) = await collect(fake, history)
    assert isinstance(final, wg.Message)
    assert final.content == "Done."
    body = fake.requests[0].body
    assert body["system"] == "be brief"
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "look up two things"}]},
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "t1", "name": "lookup", "input": {"term": "a"}},
                {"type": "tool_use", "id": "t2", "name": "lookup", "input": {"term": "b"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "t1", "content": "found a"},
                {
                    "type": "tool_result",
                    "tool_use_id": "t2",
                    "content": "Error: boom",
                    "is_error": True,
                },
            ],
        },
    ]


@pytest.mark.parametrize(
    ("reply", "status", "retryable"),
    [
        (
            anthropic_error(
                429, "Number of requests has exceeded your rate limit", "rate_limit_error"
            ),
            429,
            True,
        ),
        (anthropic_error(529, "Overloaded", "overloaded_error"), 529, True),
        (anthropic_error(400, "max_tokens: field required"), 400, False),
    ],
)
async def test_http_errors_become_provider_errors(
    reply: Reply, status: int, retryable: bool
) -> None:
    with FakeProvider([reply]) as fake, pytest.raises(wg.ProviderError) as caught:
        await collect(fake, [wg.Message.user("hi")])
    assert (caught.value.provider, caught.value.status) == ("anthropic", status)
    assert caught.value.retryable is retryable
    assert caught.value.message == reply_message(reply)


def reply_message(reply: Reply) -> str:
    import json

    assert isinstance(reply.body, bytes)
    return json.loads(reply.body)["error"]["message"]


async def test_an_error_event_mid_stream_is_a_provider_error() -> None:
    events = anthropic_answer_events("partial answer here")[:5]
    error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    with (
        FakeProvider([Reply(body=[*anthropic_events(events), *anthropic_events([error])])]) as fake,
        pytest.raises(wg.ProviderError) as caught,
    ):
        await collect(fake, [wg.Message.user("x")])
    assert (caught.value.status, caught.value.message) == (None, "Overloaded")


async def test_a_stream_without_message_stop_is_unfinished() -> None:
    events = anthropic_answer_events("all but the stop")[:-1]  # ends after message_delta
    with (
        FakeProvider([Reply(body=anthropic_events(events))]) as fake,
        pytest.raises(wg.ProviderError, match="no finish reason"),
    ):
        await collect(fake, [wg.Message.user("x")])


async def test_a_cut_connection_is_a_provider_error() -> None:
    events = anthropic_events(anthropic_answer_events("one two three four five"))[:6]
    with (
        FakeProvider([Reply(body=events, cut=True)]) as fake,
        pytest.raises(wg.ProviderError) as caught,
    ):
        await collect(fake, [wg.Message.user("x")])
    assert caught.value.status is None
    assert caught.value.retryable


def test_a_missing_key_is_a_config_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_AUTH_TOKEN", raising=False)
    with pytest.raises(wg.ConfigError) as caught:
        AnthropicChat("claude-x")
    assert "ANTHROPIC_API_KEY" in caught.value.help
