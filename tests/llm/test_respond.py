"""wg.llm.respond inside a node: chunk events per delta, one stream id, the final, errors, retries,
cancellation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from scripted_model import ScriptedModel

import weavegraph as wg
from weavegraph.llm import StreamItem, TextDelta, Tool


def one_node_app(model: wg.llm.ChatModel, **node_options: Any) -> wg.App:
    async def ask(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
        answer = await wg.llm.respond(ctx, model, snapshot.messages)
        return wg.NodePartial(messages=(answer,))

    builder = wg.GraphBuilder()
    builder.add_node("ask", ask, **node_options)
    builder.add_edge(wg.START, "ask")
    builder.add_edge("ask", wg.END)
    return builder.compile()


async def llm_events(app: wg.App, text: str = "hi") -> tuple[wg.VersionedState, list[wg.Event]]:
    final, stream = await app.invoke_with_channel(wg.VersionedState.new_with_user_message(text))
    return final, [event async for event in stream if event.type == "llm"]


async def test_every_delta_is_a_chunk_event_with_one_stream_id_then_the_final() -> None:
    calls = [wg.ToolCall("c1", "lookup", {"q": "barriers"})]
    model = ScriptedModel([wg.Message.assistant("Let me look that up", tool_calls=calls)])
    final, events = await llm_events(one_node_app(model))
    chunks = [e for e in events if e.scope == "chunk"]
    (last,) = [e for e in events if e.scope == "final"]
    assert [e.message for e in chunks if e.metadata["kind"] == "text"] == [
        "Let",
        " me",
        " look",
        " that",
        " up",
    ]
    pieces = [e for e in chunks if e.metadata["kind"] == "tool_call"]
    assert "".join(e.message for e in pieces) == '{"q": "barriers"}'
    assert pieces[0].metadata["tool_call_id"] == "c1"
    assert pieces[0].metadata["tool_name"] == "lookup"
    assert len({e.metadata["stream_id"] for e in events}) == 1
    assert events[-1] is last
    assert last.message == "Let me look that up"
    assert last.metadata["input_tokens"] == 10
    assert last.metadata["output_tokens"] == 3
    assert last.metadata["finish_reason"] == "tool_calls"
    assert last.metadata["provider"] == "scripted"
    assert last.metadata["tool_calls"] == [
        {"id": "c1", "name": "lookup", "arguments": {"q": "barriers"}}
    ]
    assert final.messages[-1].tool_calls == tuple(calls)


async def test_two_calls_have_two_stream_ids() -> None:
    model = ScriptedModel([wg.Message.assistant("one"), wg.Message.assistant("two")])

    async def twice(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
        first = await wg.llm.respond(ctx, model, snapshot.messages)
        second = await wg.llm.respond(ctx, model, [*snapshot.messages, first])
        return wg.NodePartial(messages=(first, second))

    app = wg.GraphBuilder().add_node("n", twice).add_edge(wg.START, "n").add_edge("n", wg.END)
    _, events = await llm_events(app.compile())
    assert len({e.metadata["stream_id"] for e in events}) == 2


class Failing:
    provider = "flaky"
    model = "flaky-1"

    def __init__(self, statuses: Sequence[int]) -> None:
        self.statuses = list(statuses)
        self.attempts = 0

    async def stream(
        self, messages: Sequence[wg.Message], *, tools: Sequence[Tool] | None = None, **options: Any
    ) -> AsyncIterator[StreamItem]:
        self.attempts += 1
        yield TextDelta("partial")
        if self.statuses:
            status = self.statuses.pop(0)
            raise wg.ProviderError(self.provider, f"status {status}", status=status)
        yield wg.Message.assistant(
            "partial answer",
        )


async def test_a_provider_error_is_an_error_event_then_fails_the_node() -> None:
    handle, stream = one_node_app(Failing([401])).invoke_streaming(
        wg.VersionedState.new_with_user_message("x")
    )
    events = [e async for e in stream if e.type == "llm"]
    with pytest.raises(wg.NodeRunError):
        await handle
    assert [e.scope for e in events] == ["chunk", "error"]
    assert "HTTP 401" in events[-1].message
    assert events[0].metadata["stream_id"] == events[1].metadata["stream_id"]


async def test_invoke_raises_the_provider_error_as_the_cause() -> None:
    app = one_node_app(Failing([401]))
    with pytest.raises(wg.NodeRunError) as caught:
        await app.invoke(wg.VersionedState.new_with_user_message("x"))
    cause = caught.value.__cause__
    assert isinstance(cause, wg.ProviderError)
    assert (cause.provider, cause.status, cause.message) == ("flaky", 401, "status 401")


async def test_retry_policy_retries_only_retryable_provider_errors() -> None:
    policy = wg.RetryPolicy(
        max_attempts=4, initial_delay=0, retry_on=wg.ProviderError, retry_if=wg.llm.is_retryable
    )
    flaky = Failing([429, 503])
    final = await one_node_app(flaky, retry=policy).invoke(
        wg.VersionedState.new_with_user_message("x")
    )
    assert flaky.attempts == 3
    assert final.messages[-1].content == "partial answer"

    refused = Failing([429, 401, 503])
    with pytest.raises(wg.NodeRunError):
        await one_node_app(refused, retry=policy).invoke(
            wg.VersionedState.new_with_user_message("x")
        )
    assert refused.attempts == 2, "a 401 is not retried"


async def test_cancelling_the_run_closes_the_model_stream() -> None:
    model = ScriptedModel([wg.Message.assistant("never finished answer")], hang=True)
    app = one_node_app(model)
    handle, events = app.invoke_streaming(wg.VersionedState.new_with_user_message("x"))
    async for event in events:
        if event.type == "llm":
            handle.cancel()
    with pytest.raises(asyncio.CancelledError):
        await handle
    assert model.closed == 1


class NoFinal:
    provider = "broken"
    model = "broken-1"

    async def stream(
        self, messages: Sequence[wg.Message], *, tools: Sequence[Tool] | None = None, **options: Any
    ) -> AsyncIterator[StreamItem]:
        yield TextDelta("half")


async def test_a_model_stream_without_a_final_message_is_a_provider_error() -> None:
    with pytest.raises(wg.NodeRunError) as caught:
        await one_node_app(NoFinal()).invoke(wg.VersionedState.new_with_user_message("x"))
    assert isinstance(caught.value.__cause__, wg.ProviderError)
    assert "without an answer" in str(caught.value.__cause__)


def test_the_adapters_are_chat_models() -> None:
    assert isinstance(ScriptedModel([]), wg.llm.ChatModel)
