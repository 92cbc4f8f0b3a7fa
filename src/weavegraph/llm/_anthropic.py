"""``AnthropicChat``: Claude models through the ``anthropic`` SDK's streamed Messages API."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any, cast

from ..errors import ConfigError
from ..state import Message, Role
from ._answer import AnswerBuilder
from ._clients import PerLoop
from ._errors import import_sdk, provider_error, transport_errors
from ._tools import Tool
from ._types import StreamItem

if TYPE_CHECKING:
    from anthropic import AsyncAnthropic, AsyncStream
    from anthropic.types import RawMessageStreamEvent

__all__ = ["AnthropicChat"]


class AnthropicChat:
    """A Claude model through Anthropic's Messages API (extra ``anthropic``).

    ``api_key`` and ``base_url`` default to ``ANTHROPIC_API_KEY`` and ``ANTHROPIC_BASE_URL``;
    ``client`` takes a ready ``anthropic.AsyncAnthropic`` instead. ``max_tokens`` is required by
    the API (4096 unless given). ``max_retries`` is the SDK's own retrying, off by default so that
    the node's ``wg.RetryPolicy`` decides. System messages become the request's ``system`` text;
    tool results become ``tool_result`` blocks of a user turn, as the API expects.
    """

    provider = "anthropic"

    def __init__(
        self,
        model: str,
        *,
        max_tokens: int = 4096,
        base_url: str | None = None,
        api_key: str | None = None,
        client: AsyncAnthropic | None = None,
        max_retries: int = 0,
        timeout: float | None = 60.0,
        **options: Any,
    ) -> None:
        sdk = import_sdk("anthropic", adapter="AnthropicChat", extra="anthropic")

        def make() -> AsyncAnthropic:
            made: AsyncAnthropic = sdk.AsyncAnthropic(
                base_url=base_url, api_key=api_key, max_retries=max_retries, timeout=timeout
            )
            if made.api_key is None and made.auth_token is None:
                raise ConfigError(
                    "AnthropicChat has no API key",
                    help="Pass api_key=... or set ANTHROPIC_API_KEY.",
                )
            return made

        self.model = model
        self._clients = PerLoop(client or make(), None if client else make)
        self._options: dict[str, Any] = {"max_tokens": max_tokens, **options}

    @property
    def client(self) -> AsyncAnthropic:
        """The ``anthropic.AsyncAnthropic`` client requests go through (one per event loop)."""
        return self._clients.current

    def __repr__(self) -> str:
        return f"AnthropicChat(model={self.model!r}, base_url={str(self.client.base_url)!r})"

    async def __aenter__(self) -> AnthropicChat:
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
        import anthropic

        system, turns = _to_anthropic(messages)
        request: dict[str, Any] = {
            "model": self.model,
            "messages": turns,
            "stream": True,
            **self._options,
            **options,
        }
        if system:
            request["system"] = system
        if tools:
            request["tools"] = [
                {"name": t.name, "description": t.description, "input_schema": t.parameters}
                for t in tools
            ]
        reader = _EventReader(AnswerBuilder(self.provider, self.model))
        try:
            stream = cast(
                "AsyncStream[RawMessageStreamEvent]",
                await self._clients.get().messages.create(**request),
            )
            # Leaving the block (also by cancellation or aclose) closes the HTTP response.
            async with stream:
                async for event in stream:
                    for item in reader.read(event):
                        yield item
        except (anthropic.APIError, json.JSONDecodeError, *transport_errors()) as exc:
            raise provider_error(self.provider, exc) from exc
        if not reader.stopped:
            reader.answer.finish_reason = None  # no message_stop: the answer is unfinished
        yield reader.answer.message()


class _EventReader:
    """Turns the Messages stream's events into deltas; tool-use blocks are numbered 0, 1, ..."""

    __slots__ = ("_tool_index", "answer", "stopped")

    def __init__(self, answer: AnswerBuilder) -> None:
        self.answer = answer
        self.stopped = False
        self._tool_index: dict[int, int] = {}

    def read(self, event: RawMessageStreamEvent) -> list[StreamItem]:
        answer = self.answer
        if event.type == "message_start":
            answer.model = event.message.model
            answer.usage(event.message.usage.input_tokens, event.message.usage.output_tokens)
        elif event.type == "content_block_start":
            block = event.content_block
            if block.type == "tool_use":
                index = self._tool_index.setdefault(event.index, len(self._tool_index))
                return [answer.tool_call(index, id=block.id, name=block.name)]
            if block.type == "text" and block.text:
                return [answer.text(block.text)]
        elif event.type == "content_block_delta":
            delta = event.delta
            if delta.type == "text_delta":
                return [answer.text(delta.text)]
            if delta.type == "input_json_delta" and event.index in self._tool_index:
                index = self._tool_index[event.index]
                return [answer.tool_call(index, arguments=delta.partial_json)]
        elif event.type == "message_delta":
            if event.delta.stop_reason:
                answer.finish(event.delta.stop_reason)
            answer.usage(event.usage.input_tokens, event.usage.output_tokens)
        elif event.type == "message_stop":
            self.stopped = True
        return []


def _to_anthropic(messages: Sequence[Message]) -> tuple[str, list[dict[str, Any]]]:
    """The request's ``system`` text and its turns; consecutive same-role turns are merged."""
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for message in messages:
        if message.role == Role.SYSTEM:
            system.append(message.content)
            continue
        role, blocks = _blocks(message)
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    return "\n\n".join(system), turns


def _blocks(message: Message) -> tuple[str, list[dict[str, Any]]]:
    if message.role == Role.TOOL:
        if message.tool_call_id is None:
            raise ConfigError(
                "a tool message needs tool_call_id (the id of the call it answers) for Anthropic"
            )
        block: dict[str, Any] = {
            "type": "tool_result",
            "tool_use_id": message.tool_call_id,
            "content": message.content,
        }
        if message.metadata.get("is_error"):
            block["is_error"] = True
        return "user", [block]
    role = "assistant" if message.role == Role.ASSISTANT else "user"
    blocks: list[dict[str, Any]] = []
    if message.content:
        blocks.append({"type": "text", "text": message.content})
    for call in message.tool_calls:
        blocks.append(
            {"type": "tool_use", "id": call.id, "name": call.name, "input": dict(call.arguments)}
        )
    return role, blocks
