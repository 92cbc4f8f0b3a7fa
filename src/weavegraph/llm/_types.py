"""What a chat model streams, and the protocol every model adapter implements."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias, runtime_checkable

from ..state import Message

if TYPE_CHECKING:
    from ._tools import Tool

__all__ = ["ChatModel", "StreamItem", "TextDelta", "ToolCallDelta"]


@dataclass(frozen=True, slots=True)
class TextDelta:
    """A piece of the answer's text, as the model produced it."""

    text: str


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A piece of a tool call: ``index`` says which call of the answer it belongs to (0-based);
    ``id`` and ``name`` come with the call's first piece, ``arguments`` is the next fragment of
    the call's arguments as JSON text."""

    index: int
    arguments: str = ""
    id: str | None = None
    name: str | None = None


StreamItem: TypeAlias = TextDelta | ToolCallDelta | Message
"""What ``ChatModel.stream`` yields: deltas, then exactly one assistant ``Message``, last."""


@runtime_checkable
class ChatModel(Protocol):
    """A chat model weavegraph can stream from (``OpenAIChat``, ``AnthropicChat``,
    ``LangChainChat``, or your own).

    ``stream`` is an async generator: it yields :class:`TextDelta` and :class:`ToolCallDelta`
    items as they arrive and ends with one assistant :class:`~weavegraph.Message` holding the whole
    answer, its ``tool_calls`` and, in ``metadata``, ``usage`` (``input_tokens``,
    ``output_tokens``), ``finish_reason`` and the answering ``model``. Provider failures raise
    ``wg.ProviderError``; a stream the provider did not finish raises it too. Closing the
    generator (``aclose``, cancellation) closes the connection to the provider.
    """

    @property
    def provider(self) -> str:
        """The provider's name, e.g. ``openai`` (OpenTelemetry's ``gen_ai.system``)."""
        ...

    @property
    def model(self) -> str:
        """The requested model, e.g. ``gpt-4o-mini``."""
        ...

    def stream(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[Tool] | None = None,
        **options: Any,
    ) -> AsyncIterator[StreamItem]:
        """Stream an answer to ``messages``, offering ``tools``; ``options`` go to the provider."""
        ...
