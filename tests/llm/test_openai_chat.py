"""OpenAIChat through the real ``openai`` SDK against a local server speaking the real wire format."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncGenerator
from typing import Any

import pytest
from fake_providers import (
    FakeProvider,
    Reply,
    openai_error,
    openai_events,
    openai_text,
    openai_text_chunks,
    openai_tool_chunks,
    openai_tools,
)

import weavegraph as wg
from weavegraph.llm import OpenAIChat, StreamItem, TextDelta, ToolCallDelta


def weather(city: str, unit: str = "celsius") -> str:
    """Current weather in a city."""
    return f"sunny in {city} ({unit})"


def chat(fake: FakeProvider, **kwargs: Any) -> OpenAIChat:
    return OpenAIChat("fake-gpt", base_url=f"{fake.url}/v1", api_key="sk-test", **kwargs)


async def collect(fake: FakeProvider, messages: list[wg.Message], **kw: Any) -> list[StreamItem]:
    """Everything one call streams (the model is closed afterwards)."""
    options = {key: kw.pop(key) for key in list(kw) if key != "tools"}
    async with chat(fake, **options) as model:
        return [item async for item in model.stream(messages, **kw)]


async def test_text_streams_word_by_word_and_ends_with_the_whole_answer() -> None:
    with FakeProvider([openai_text("Hello there, Ada.")]) as fake:
        items = await collect(fake, temperature=0, messages=[wg.Message.user("hi")])
    *deltas, final = items
    assert deltas == [TextDelta("Hello"), TextDelta(" there,"), TextDelta(" Ada.")]
    assert isinstance(final, wg.Message)
    assert (final.role, final.content, final.tool_calls) == ("assistant", "Hello there, Ada.", ())
    assert final.metadata["finish_reason"] == "stop"
    assert final.metadata["usage"] == {"input_tokens": 12, "output_tokens": 5}
    body = fake.requests[0].body
    assert fake.requests[0].path == "/v1/chat/completions"
    assert fake.requests[0].headers["authorization"] == "Bearer sk-test"
    assert body["messages"] == [{"role": "user", "content": "hi"}]
    assert body["stream"] is True
    assert body["temperature"] == 0
    assert body["stream_options"] == {"include_usage": True}


async def test_tool_calls_split_across_chunks_are_assembled() -> None:
    calls = [("call_1", "weather", {"city": "Paris"}), ("call_2", "weather", {"city": "Oslo"})]
    tool = wg.llm.tool(weather)
    with FakeProvider([openai_tools(calls)]) as fake:
        items = await collect(fake, [wg.Message.user("weather?")], tools=[tool])
    *deltas, final = items
    assert all(isinstance(d, ToolCallDelta) for d in deltas)
    assert len(deltas) > 4, "the arguments must arrive in several pieces"
    first = [d for d in deltas if isinstance(d, ToolCallDelta) and d.id]
    assert [(d.index, d.id, d.name) for d in first] == [
        (0, "call_1", "weather"),
        (1, "call_2", "weather"),
    ]
    assert isinstance(final, wg.Message)
    assert final.tool_calls == (
        wg.ToolCall("call_1", "weather", {"city": "Paris"}),
        wg.ToolCall("call_2", "weather", {"city": "Oslo"}),
    )
    assert final.metadata["finish_reason"] == "tool_calls"
    (offered,) = fake.requests[0].body["tools"]
    assert offered["type"] == "function"
    assert offered["function"]["name"] == "weather"
    assert offered["function"]["description"] == "Current weather in a city."
    assert offered["function"]["parameters"]["required"] == ["city"]


async def test_history_with_tool_calls_and_results_is_sent_in_openai_form() -> None:
    history = [
        wg.Message.system("be brief"),
        wg.Message.user("weather in Paris?"),
        wg.Message.assistant("", tool_calls=[wg.ToolCall("c1", "weather", {"city": "Paris"})]),
        wg.Message.tool("sunny", "c1", name="weather"),
    ]
    with FakeProvider([openai_text("It is sunny.")]) as fake:
        await collect(fake, history)
    sent = fake.requests[0].body["messages"]
    assert sent[0] == {"role": "system", "content": "be brief"}
    assert sent[2] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "c1",
                "type": "function",
                "function": {"name": "weather", "arguments": '{"city":"Paris"}'},
            }
        ],
    }
    assert sent[3] == {"role": "tool", "tool_call_id": "c1", "content": "sunny"}


@pytest.mark.parametrize(
    ("reply", "status", "message", "retryable"),
    [
        (
            openai_error(429, "Rate limit reached for requests", "rate_limit_exceeded"),
            429,
            "Rate limit reached for requests",
            True,
        ),
        (openai_error(401, "Incorrect API key provided"), 401, "Incorrect API key provided", False),
        (
            openai_error(400, "'messages' must not be empty"),
            400,
            "'messages' must not be empty",
            False,
        ),
        (openai_error(503, "The server is overloaded"), 503, "The server is overloaded", True),
    ],
)
async def test_http_errors_become_provider_errors(
    reply: Reply, status: int, message: str, retryable: bool
) -> None:
    with FakeProvider([reply]) as fake, pytest.raises(wg.ProviderError) as caught:
        await collect(fake, [wg.Message.user("hi")])
    err = caught.value
    assert (err.provider, err.status, err.message, err.retryable) == (
        "openai",
        status,
        message,
        retryable,
    )
    assert wg.llm.is_retryable(err) is retryable
    assert f"HTTP {status}" in str(err)


async def test_a_stream_cut_mid_way_is_an_error_not_a_short_answer() -> None:
    events = openai_events(openai_text_chunks("one two three four"))[:3]
    with FakeProvider([Reply(body=events, cut=True)]) as fake:
        seen: list[StreamItem] = []

        async def consume() -> None:
            async with chat(fake) as model:
                async for item in model.stream([wg.Message.user("count")]):
                    seen.append(item)

        with pytest.raises(wg.ProviderError) as caught:
            await consume()
    assert seen == [TextDelta("one"), TextDelta(" two")]
    assert caught.value.status is None
    assert caught.value.retryable


async def test_a_stream_closed_cleanly_without_a_finish_is_an_error() -> None:
    chunks = openai_text_chunks("one two")[:-2]  # no finish_reason, no usage
    with (
        FakeProvider([Reply(body=openai_events(chunks, done=False))]) as fake,
        pytest.raises(wg.ProviderError, match="no finish reason"),
    ):
        await collect(fake, [wg.Message.user("count")])


async def test_an_error_sent_inside_the_stream_is_a_provider_error() -> None:
    chunks = openai_text_chunks("partial answer")[:2]
    events = openai_events(chunks, done=False)
    events.append(
        b'data: {"error": {"message": "upstream overloaded", "type": "server_error"}}\n\n'
    )
    with FakeProvider([Reply(body=events)]) as fake, pytest.raises(wg.ProviderError) as caught:
        await collect(fake, [wg.Message.user("x")])
    assert caught.value.message == "upstream overloaded"
    assert caught.value.status is None


async def test_a_malformed_event_is_a_provider_error() -> None:
    events = [b"data: {not json\n\n"]
    with (
        FakeProvider([Reply(body=events)]) as fake,
        pytest.raises(wg.ProviderError, match="malformed stream"),
    ):
        await collect(fake, [wg.Message.user("x")])


async def test_tool_arguments_that_are_not_json_are_a_provider_error() -> None:
    chunks = openai_tool_chunks([("c1", "weather", {"city": "Paris"})])
    chunks[2]["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"] = "{oops"
    with (
        FakeProvider([Reply(body=openai_events(chunks))]) as fake,
        pytest.raises(wg.ProviderError, match="not JSON"),
    ):
        await collect(fake, [wg.Message.user("x")])


def test_a_missing_key_is_a_config_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(wg.ConfigError) as caught:
        OpenAIChat("gpt-x")
    assert "OPENAI_API_KEY" in caught.value.help


def test_the_request_body_is_json_the_server_reads() -> None:
    # A tool call's frozen arguments are sent as plain JSON text.
    call = wg.ToolCall("c", "t", {"nested": {"list": [1, 2]}})
    assert json.loads(json.dumps(dict(call.arguments))) == {"nested": {"list": [1, 2]}}


@pytest.mark.parametrize("how", ["cancel", "aclose"])
async def test_stopping_mid_stream_closes_the_connection(how: str) -> None:
    chunks = openai_text_chunks(" ".join(f"w{i}" for i in range(200)))
    resume = threading.Event()
    reply = Reply(body=openai_events(chunks), hold=resume, pause_after=2)
    with FakeProvider([reply]) as fake:
        async with chat(fake) as model:
            stream = model.stream([wg.Message.user("talk")])
            assert isinstance(stream, AsyncGenerator)
            assert await anext(stream) == TextDelta("w0")
            if how == "aclose":  # what respond does when it stops reading
                await stream.aclose()
            else:
                task = asyncio.create_task(anext(stream))
                await asyncio.sleep(0.05)
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
            # The client is still open: only the stopped stream's own close hangs up.
            resume.set()
            await asyncio.to_thread(wait_for_disconnect, fake)
    assert fake.disconnects == 1


def wait_for_disconnect(fake: FakeProvider) -> None:
    with fake.received:
        assert fake.received.wait_for(lambda: fake.disconnects > 0, timeout=30)
