"""``respond``: one model call inside a node, streamed into the run's ``llm`` events and traced.

Every delta becomes one ``llm`` chunk event; the whole answer one final event (with the token
usage); a failure one error event before the ``ProviderError`` propagates. All of a call's events
share one ``stream_id``. With OpenTelemetry configured, the call is a span following the GenAI
semantic conventions, a child of the node's span.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import Any

from .. import tracing
from ..context import NodeContext
from ..errors import ProviderError
from ..state import Message, Role
from ._tools import Tool, as_tools
from ._types import ChatModel, StreamItem, TextDelta, ToolCallDelta

__all__ = ["respond"]


async def respond(
    ctx: NodeContext,
    model: ChatModel,
    messages: Sequence[Message],
    *,
    tools: Iterable[Callable[..., Any] | Tool] | None = None,
    **options: Any,
) -> Message:
    """Ask ``model`` to answer ``messages`` (offering ``tools``), streaming every delta as an
    ``llm`` chunk event, and return the assistant message (with ``tool_calls`` when it asks for
    tools). ``options`` go to the provider (``temperature=0``, ...).

    Raises ``wg.ProviderError`` when the provider fails or its stream ends unfinished; cancelling
    the node closes the provider's stream.
    """
    offered = as_tools(tools)
    stream_id = f"{ctx.node_id}-{uuid.uuid4().hex[:12]}"
    with tracing.client_span(f"chat {model.model}", _request_attributes(model)) as span:
        try:
            answer = await _relay(ctx, model, messages, offered, stream_id, options)
        except Exception as exc:
            ctx.emit_llm_error(str(exc), stream_id=stream_id)
            if span is not None:
                span.set_attribute("error.type", _error_type(exc))
            raise
        if span is not None:
            span.set_attributes(_response_attributes(answer))
    ctx.emit_llm_final(answer.content, stream_id=stream_id, **_final_metadata(model, answer))
    return answer


async def _relay(
    ctx: NodeContext,
    model: ChatModel,
    messages: Sequence[Message],
    tools: tuple[Tool, ...],
    stream_id: str,
    options: dict[str, Any],
) -> Message:
    answer: Message | None = None
    items = model.stream(messages, tools=tools or None, **options)
    try:
        async for item in items:
            if answer is not None:
                raise ProviderError(model.provider, "the model streamed past its final message")
            answer = _emit(ctx, item, stream_id)
    finally:
        await _close(items)
    if answer is None:
        raise ProviderError(model.provider, "the model's stream ended without an answer")
    if answer.role != Role.ASSISTANT:
        raise ProviderError(model.provider, f"the model answered with a {answer.role!r} message")
    return answer


def _emit(ctx: NodeContext, item: StreamItem, stream_id: str) -> Message | None:
    """Publish one delta as a chunk event; the final message is returned instead."""
    if isinstance(item, TextDelta):
        if item.text:
            ctx.emit_llm_chunk(item.text, stream_id=stream_id, kind="text")
        return None
    if isinstance(item, ToolCallDelta):
        extra: dict[str, Any] = {}
        if item.id is not None:
            extra["tool_call_id"] = item.id
        if item.name is not None:
            extra["tool_name"] = item.name
        ctx.emit_llm_chunk(
            item.arguments, stream_id=stream_id, kind="tool_call", index=item.index, **extra
        )
        return None
    return item


async def _close(items: AsyncIterator[StreamItem]) -> None:
    # Async generators close their provider stream in aclose(); plain iterators have nothing to.
    aclose = getattr(items, "aclose", None)
    if aclose is not None:
        await aclose()


def _final_metadata(model: ChatModel, answer: Message) -> dict[str, Any]:
    meta = answer.metadata
    usage: Any = meta.get("usage") or {}
    metadata: dict[str, Any] = {
        "provider": model.provider,
        "model": meta.get("model") or model.model,
        "finish_reason": meta.get("finish_reason"),
        "input_tokens": usage.get("input_tokens"),
        "output_tokens": usage.get("output_tokens"),
    }
    if answer.tool_calls:
        metadata["tool_calls"] = [call.to_json_value() for call in answer.tool_calls]
    return metadata


def _request_attributes(model: ChatModel) -> dict[str, tracing.AttributeValue]:
    return {
        "gen_ai.operation.name": "chat",
        "gen_ai.system": model.provider,
        "gen_ai.provider.name": model.provider,
        "gen_ai.request.model": model.model,
    }


def _response_attributes(answer: Message) -> dict[str, tracing.AttributeValue]:
    meta = answer.metadata
    attributes: dict[str, tracing.AttributeValue] = {}
    if isinstance(meta.get("model"), str):
        attributes["gen_ai.response.model"] = meta["model"]
    if isinstance(meta.get("finish_reason"), str):
        attributes["gen_ai.response.finish_reasons"] = [meta["finish_reason"]]
    usage: Any = meta.get("usage") or {}
    for key in ("input_tokens", "output_tokens"):
        if isinstance(usage.get(key), int):
            attributes[f"gen_ai.usage.{key}"] = usage[key]
    return attributes


def _error_type(exc: BaseException) -> str:
    if isinstance(exc, ProviderError) and exc.status is not None:
        return str(exc.status)
    return type(exc).__name__
