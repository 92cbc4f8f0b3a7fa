"""``OpenAIChat``: any OpenAI-compatible chat-completions endpoint, through the ``openai`` SDK.

OpenAI itself, vLLM, Ollama, LM Studio, llama.cpp's server: they all speak the same streamed
chat-completions protocol, so one adapter serves them all (set ``base_url``).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any, cast

import orjson

from ..errors import ConfigError
from ..state import Message, Role
from ._answer import AnswerBuilder
from ._clients import PerLoop
from ._errors import import_sdk, provider_error, transport_errors
from ._tools import Tool
from ._types import StreamItem

if TYPE_CHECKING:
    from openai import AsyncOpenAI, AsyncStream
    from openai.types.chat import ChatCompletionChunk

__all__ = ["OpenAIChat"]


class OpenAIChat:
    """A chat model behind an OpenAI-compatible endpoint (extra ``openai``).

    ``base_url`` and ``api_key`` default to ``OPENAI_BASE_URL`` and ``OPENAI_API_KEY``; ``client``
    takes a ready ``openai.AsyncOpenAI`` instead. ``max_retries`` is the SDK's own retrying,
    off by default so that the node's ``wg.RetryPolicy`` is the one place retries are decided.
    Other keyword arguments (``temperature=0.2``, ``max_tokens=500``, ...) are sent with every
    request; ``stream(..., **options)`` adds or overrides them per call.
    """

    provider = "openai"

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        client: AsyncOpenAI | None = None,
        max_retries: int = 0,
        timeout: float | None = 60.0,
        include_usage: bool = True,
        **options: Any,
    ) -> None:
        sdk = import_sdk("openai", adapter="OpenAIChat", extra="openai")

        def make() -> AsyncOpenAI:
            try:
                return sdk.AsyncOpenAI(
                    base_url=base_url, api_key=api_key, max_retries=max_retries, timeout=timeout
                )
            except sdk.OpenAIError as exc:
                raise ConfigError(
                    f"OpenAIChat cannot create its client: {exc}",
                    help="Pass api_key=... or set OPENAI_API_KEY (any value for a local server "
                    "that checks none), and base_url=... or OPENAI_BASE_URL for another server.",
                ) from exc

        self.model = model
        self._clients = PerLoop(client or make(), None if client else make)
        self._include_usage = include_usage
        self._options = options

    @property
    def client(self) -> AsyncOpenAI:
        """The ``openai.AsyncOpenAI`` client requests go through (one per event loop)."""
        return self._clients.current

    def __repr__(self) -> str:
        return f"OpenAIChat(model={self.model!r}, base_url={str(self.client.base_url)!r})"

    async def __aenter__(self) -> OpenAIChat:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the client's connections (also done by leaving ``async with model:``)."""
        await self.client.close()

    async def stream(
        self, messages: Sequence[Message], *, tools: Sequence[Tool] | None = None, **options: Any
    ) -> AsyncIterator[StreamItem]:
        """Stream the answer (see ``wg.llm.ChatModel``)."""
        import openai

        request: dict[str, Any] = {
            "model": self.model,
            "messages": [_to_openai(message) for message in messages],
            "stream": True,
            **self._options,
            **options,
        }
        if self._include_usage:
            request.setdefault("stream_options", {"include_usage": True})
        if tools:
            request["tools"] = [{"type": "function", "function": t.schema()} for t in tools]
        answer = AnswerBuilder(self.provider, self.model)
        try:
            stream = cast(
                "AsyncStream[ChatCompletionChunk]",
                await self._clients.get().chat.completions.create(**request),
            )
            # Leaving the block (also by cancellation or aclose) closes the HTTP response.
            async with stream:
                async for chunk in stream:
                    for item in _read_chunk(chunk, answer):
                        yield item
        except (openai.APIError, json.JSONDecodeError, *transport_errors()) as exc:
            raise provider_error(self.provider, _malformed(exc)) from exc
        yield answer.message()


def _malformed(exc: BaseException) -> BaseException:
    if isinstance(exc, json.JSONDecodeError):
        return ValueError(f"malformed stream: an event is not JSON ({exc})")
    return exc


def _read_chunk(chunk: ChatCompletionChunk, answer: AnswerBuilder) -> list[StreamItem]:
    """The deltas in one streamed chunk (recording them, the usage and the finish reason)."""
    if chunk.model:
        answer.model = chunk.model
    if chunk.usage is not None:
        answer.usage(chunk.usage.prompt_tokens, chunk.usage.completion_tokens)
    items: list[StreamItem] = []
    for choice in chunk.choices:
        if choice.index != 0:  # n > 1 is not supported: one answer per call
            continue
        delta = choice.delta
        if delta.content:
            items.append(answer.text(delta.content))
        for call in delta.tool_calls or ():
            function = call.function
            items.append(
                answer.tool_call(
                    call.index,
                    id=call.id,
                    name=function.name if function else None,
                    arguments=(function.arguments if function else None) or "",
                )
            )
        if choice.finish_reason:
            answer.finish(choice.finish_reason)
    return items


def _to_openai(message: Message) -> dict[str, Any]:
    """One message in the chat-completions request format."""
    role = str(message.role)
    if role == Role.TOOL:
        if message.tool_call_id is None:
            raise ConfigError(
                "a tool message needs tool_call_id (the id of the call it answers) for OpenAI"
            )
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.content}
    value: dict[str, Any] = {"role": role, "content": message.content}
    if message.name is not None:
        value["name"] = message.name
    if message.tool_calls:
        value["content"] = message.content or None
        value["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": orjson.dumps(call.arguments).decode()},
            }
            for call in message.tool_calls
        ]
    return value
