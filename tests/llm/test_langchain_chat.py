"""LangChainChat wrapping real langchain-core chat models (its fake model and a tiny subclass)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import pytest
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from pydantic import Field

import weavegraph as wg
from weavegraph.llm import LangChainChat, StreamItem, TextDelta, ToolCallDelta


class ScriptedToolModel(BaseChatModel):
    """Streams one scripted answer as chunks: text, then tool-call chunks split in pieces."""

    script: list[list[AIMessageChunk]]
    seen: list[list[BaseMessage]] = Field(default_factory=list[list[BaseMessage]])
    bound: list[Any] = Field(default_factory=list[Any])
    fail_with: Exception | None = None

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=""))])

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        self.seen.append(messages)
        for chunk in self.script.pop(0):
            yield ChatGenerationChunk(message=chunk)
        if self.fail_with is not None:
            raise self.fail_with

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[Any, AIMessage]:
        self.bound.append(list(tools))
        return self.bind(tools=list(tools))


def weather(city: str) -> str:
    """Current weather in a city."""
    return f"sunny in {city}"


async def collect(model: LangChainChat, messages: list[wg.Message], **kw: Any) -> list[StreamItem]:
    return [item async for item in model.stream(messages, **kw)]


async def test_a_langchain_fake_model_streams_text() -> None:
    fake = GenericFakeChatModel(messages=iter(["Supersteps merge at barriers."]))
    items = await collect(LangChainChat(fake), [wg.Message.user("why?")])
    *deltas, final = items
    assert all(isinstance(d, TextDelta) for d in deltas)
    assert len(deltas) > 3
    assert isinstance(final, wg.Message)
    assert final.content == "Supersteps merge at barriers."
    assert final.metadata["finish_reason"] == "stop"


async def test_tool_call_chunks_become_tool_calls() -> None:
    chunks = [
        AIMessageChunk(content="Checking."),
        AIMessageChunk(
            content="",
            tool_call_chunks=[{"name": "weather", "args": '{"ci', "id": "lc_1", "index": 0}],
        ),
        AIMessageChunk(
            content="",
            tool_call_chunks=[{"name": None, "args": 'ty": "Rome"}', "id": None, "index": 0}],
        ),
        AIMessageChunk(
            content="",
            tool_call_chunks=[
                {"name": "weather", "args": '{"city": "Lima"}', "id": "lc_2", "index": 1}
            ],
            usage_metadata={"input_tokens": 40, "output_tokens": 11, "total_tokens": 51},
            response_metadata={"finish_reason": "tool_calls"},
        ),
    ]
    model = ScriptedToolModel(script=[chunks])
    history = [
        wg.Message.system("be brief"),
        wg.Message.user("weather?"),
        wg.Message.assistant("", tool_calls=[wg.ToolCall("old", "weather", {"city": "Oslo"})]),
        wg.Message.tool("cloudy", "old"),
    ]
    items = await collect(LangChainChat(model), history, tools=[wg.llm.tool(weather)])
    *deltas, final = items
    assert deltas[0] == TextDelta("Checking.")
    assert deltas[1] == ToolCallDelta(index=0, arguments='{"ci', id="lc_1", name="weather")
    assert isinstance(final, wg.Message)
    assert final.tool_calls == (
        wg.ToolCall("lc_1", "weather", {"city": "Rome"}),
        wg.ToolCall("lc_2", "weather", {"city": "Lima"}),
    )
    assert final.metadata["finish_reason"] == "tool_calls"
    assert final.metadata["usage"] == {"input_tokens": 40, "output_tokens": 11}
    (bound,) = model.bound
    assert bound[0]["function"]["name"] == "weather"
    sent = model.seen[0]
    assert [type(m).__name__ for m in sent] == [
        "SystemMessage",
        "HumanMessage",
        "AIMessage",
        "ToolMessage",
    ]
    assert sent[2].tool_calls[0]["args"] == {"city": "Oslo"}  # type: ignore[attr-defined]
    assert sent[3].tool_call_id == "old"  # type: ignore[attr-defined]


class RateLimited(Exception):
    status_code = 429


async def test_errors_of_the_wrapped_model_become_provider_errors() -> None:
    model = ScriptedToolModel(
        script=[[AIMessageChunk(content="par")]],
        seen=[],
        bound=[],
        fail_with=RateLimited("slow down"),
    )
    with pytest.raises(wg.ProviderError) as caught:
        await collect(LangChainChat(model, provider="my-provider"), [wg.Message.user("x")])
    assert (caught.value.provider, caught.value.status) == ("my-provider", 429)
    assert caught.value.retryable
    assert "slow down" in caught.value.message
