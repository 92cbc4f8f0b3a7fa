"""``LangChainChat``: any LangChain chat model as a weavegraph ``ChatModel``.

Streams through the model's ``astream`` (tools bound with ``bind_tools``), turning its
``AIMessageChunk`` text and ``tool_call_chunks`` into deltas. LangChain marks a finished stream
with a last chunk (``chunk_position="last"``); a stream without it is unfinished.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any, cast

import orjson

from ..errors import ConfigError, ProviderError
from ..state import Message, Role
from ._answer import AnswerBuilder
from ._errors import import_sdk, provider_error
from ._tools import Tool
from ._types import StreamItem

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel
    from langchain_core.messages import AIMessage, BaseMessage

__all__ = ["LangChainChat"]


class LangChainChat:
    """Wraps a LangChain chat model (extra ``langchain``): ``LangChainChat(ChatOpenAI(...))``.

    ``provider`` and ``model`` name it in traces (default: ``langchain`` and the wrapped model's
    ``model_name``/``model`` attribute, else its class name). Errors the wrapped model raises
    become ``wg.ProviderError`` with the HTTP status when the exception carries one
    (``status_code``).
    """

    def __init__(
        self, chat_model: BaseChatModel, *, provider: str = "langchain", model: str | None = None
    ) -> None:
        import_sdk("langchain_core", adapter="LangChainChat", extra="langchain")
        self.chat_model = chat_model
        self.provider = provider
        self.model = model or _model_name(chat_model)

    def __repr__(self) -> str:
        return f"LangChainChat({type(self.chat_model).__name__}, model={self.model!r})"

    async def stream(
        self, messages: Sequence[Message], *, tools: Sequence[Tool] | None = None, **options: Any
    ) -> AsyncIterator[StreamItem]:
        """Stream the answer (see ``wg.llm.ChatModel``)."""
        from langchain_core.messages import AIMessageChunk

        runnable: Any = self.chat_model
        if tools:
            schemas = [{"type": "function", "function": t.schema()} for t in tools]
            runnable = self.chat_model.bind_tools(schemas)
        answer = AnswerBuilder(self.provider, self.model)
        reader = _ChunkReader(answer)
        chunks = runnable.astream([_to_langchain(m) for m in messages], **options)
        try:
            async for chunk in chunks:
                if isinstance(chunk, AIMessageChunk):
                    items = reader.read(chunk)
                else:  # a model that cannot stream answers with one whole message
                    items = reader.read_whole(cast("AIMessage", chunk))
                for item in items:
                    yield item
        except (ProviderError, ConfigError):
            raise
        except Exception as exc:
            raise provider_error(self.provider, exc) from exc
        finally:
            await chunks.aclose()
        yield answer.message()


class _ChunkReader:
    __slots__ = ("_last_index", "answer")

    def __init__(self, answer: AnswerBuilder) -> None:
        self.answer = answer
        self._last_index = -1

    def read(self, chunk: Any) -> list[StreamItem]:
        items: list[StreamItem] = []
        text = _text(chunk.content)
        if text:
            items.append(self.answer.text(text))
        for part in chunk.tool_call_chunks:
            index = self._index(part.get("index"), part.get("id"))
            items.append(
                self.answer.tool_call(
                    index,
                    id=part.get("id"),
                    name=part.get("name"),
                    arguments=part.get("args") or "",
                )
            )
        self._metadata(chunk)
        if chunk.chunk_position == "last":
            self.answer.finish(self.answer.finish_reason or "stop")
        return items

    def read_whole(self, message: AIMessage) -> list[StreamItem]:
        items: list[StreamItem] = []
        text = _text(message.content)
        if text:
            items.append(self.answer.text(text))
        for index, call in enumerate(message.tool_calls):
            arguments = orjson.dumps(call["args"]).decode()
            items.append(
                self.answer.tool_call(index, id=call["id"], name=call["name"], arguments=arguments)
            )
        self._metadata(message)
        self.answer.finish(self.answer.finish_reason or "stop")
        return items

    def _index(self, index: object, call_id: object) -> int:
        # Some integrations leave `index` out: a new id starts a new call, pieces continue the last.
        if isinstance(index, int):
            self._last_index = max(self._last_index, index)
            return index
        if call_id or self._last_index < 0:
            self._last_index += 1
        return self._last_index

    def _metadata(self, message: Any) -> None:
        usage: Any = message.usage_metadata
        if usage:
            # LangChain's chunks carry increments; its own `+` sums them, so do the same.
            before_in = self.answer.input_tokens or 0
            before_out = self.answer.output_tokens or 0
            self.answer.usage(
                before_in + int(usage.get("input_tokens") or 0),
                before_out + int(usage.get("output_tokens") or 0),
            )
        metadata: Any = message.response_metadata or {}
        reason = metadata.get("finish_reason") or metadata.get("stop_reason")
        if isinstance(reason, str) and reason:
            self.answer.finish_reason = reason
        name = metadata.get("model_name") or metadata.get("model")
        if isinstance(name, str) and name:
            self.answer.model = name


def _text(content: object) -> str:
    """The text of a LangChain content: a string, or the ``text`` blocks of a list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts: list[str] = []
        for block in cast("list[object]", content):
            if isinstance(block, str):
                parts.append(block)
            elif isinstance(block, dict):
                typed = cast("dict[str, object]", block)
                text = typed.get("text")
                if typed.get("type") == "text" and isinstance(text, str):
                    parts.append(text)
        return "".join(parts)
    return ""


def _to_langchain(message: Message) -> BaseMessage:
    from langchain_core.messages import (
        AIMessage,
        ChatMessage,
        HumanMessage,
        SystemMessage,
        ToolMessage,
    )

    role = str(message.role)
    if role == Role.USER:
        return HumanMessage(content=message.content, name=message.name)
    if role == Role.SYSTEM:
        return SystemMessage(content=message.content)
    if role == Role.ASSISTANT:
        calls = [
            {"name": c.name, "args": dict(c.arguments), "id": c.id, "type": "tool_call"}
            for c in message.tool_calls
        ]
        return AIMessage(content=message.content, tool_calls=calls, name=message.name)
    if role == Role.TOOL:
        if message.tool_call_id is None:
            raise ConfigError(
                "a tool message needs tool_call_id (the id of the call it answers) for LangChain"
            )
        status = "error" if message.metadata.get("is_error") else "success"
        return ToolMessage(
            content=message.content, tool_call_id=message.tool_call_id, status=status
        )
    return ChatMessage(content=message.content, role=role)


def _model_name(chat_model: object) -> str:
    for attr in ("model_name", "model"):
        value = getattr(chat_model, attr, None)
        if isinstance(value, str) and value:
            return value
    return type(chat_model).__name__
