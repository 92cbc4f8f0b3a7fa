"""Assembling one streamed answer: text and tool-call pieces in, the final assistant Message out.

Every adapter feeds its provider's stream through an :class:`AnswerBuilder`, so the rules live in
one place: tool-call arguments arrive as JSON text in pieces and must parse to an object at the
end, and an answer the provider did not finish is an error, never a shorter answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from ..errors import ProviderError
from ..state import Message, Role, ToolCall
from ._types import TextDelta, ToolCallDelta

__all__ = ["AnswerBuilder"]


@dataclass(slots=True)
class _CallParts:
    id: str | None = None
    name: str | None = None
    arguments: list[str] = field(default_factory=list[str])


class AnswerBuilder:
    """Collects one answer's pieces; :meth:`message` checks and returns the whole answer."""

    __slots__ = (
        "_calls",
        "_text",
        "finish_reason",
        "input_tokens",
        "model",
        "output_tokens",
        "provider",
    )

    def __init__(self, provider: str, model: str) -> None:
        self.provider = provider
        self.model = model
        self.finish_reason: str | None = None
        self.input_tokens: int | None = None
        self.output_tokens: int | None = None
        self._text: list[str] = []
        self._calls: dict[int, _CallParts] = {}

    def text(self, text: str) -> TextDelta:
        """Record a piece of text and return it as a delta."""
        self._text.append(text)
        return TextDelta(text)

    def tool_call(
        self, index: int, *, id: str | None = None, name: str | None = None, arguments: str = ""
    ) -> ToolCallDelta:
        """Record a piece of tool call ``index`` and return it as a delta."""
        parts = self._calls.setdefault(index, _CallParts())
        if id and not parts.id:
            parts.id = id
        if name and not parts.name:
            parts.name = name
        if arguments:
            parts.arguments.append(arguments)
        return ToolCallDelta(index=index, arguments=arguments, id=id or None, name=name or None)

    def finish(self, reason: str) -> None:
        """The provider's end marker: the answer is complete (``reason`` as the provider says)."""
        self.finish_reason = reason

    def usage(self, input_tokens: int | None, output_tokens: int | None) -> None:
        """Token counts as the provider reports them (later reports replace earlier ones)."""
        if input_tokens is not None:
            self.input_tokens = input_tokens
        if output_tokens is not None:
            self.output_tokens = output_tokens

    def message(self) -> Message:
        """The assistant message; ProviderError if the answer is unfinished or malformed."""
        if self.finish_reason is None:
            raise ProviderError(
                self.provider,
                "the stream ended before the answer was finished (no finish reason); "
                "the connection was probably cut",
            )
        calls = tuple(self._tool_call(index, parts) for index, parts in sorted(self._calls.items()))
        metadata: dict[str, Any] = {"model": self.model, "finish_reason": self.finish_reason}
        if self.input_tokens is not None or self.output_tokens is not None:
            metadata["usage"] = {
                "input_tokens": self.input_tokens or 0,
                "output_tokens": self.output_tokens or 0,
            }
        return Message(Role.ASSISTANT, "".join(self._text), metadata=metadata, tool_calls=calls)

    def _tool_call(self, index: int, parts: _CallParts) -> ToolCall:
        if not parts.id or not parts.name:
            raise ProviderError(self.provider, f"tool call #{index} came without an id or a name")
        text = "".join(parts.arguments).strip()
        try:
            arguments: object = orjson.loads(text) if text else {}
        except orjson.JSONDecodeError as exc:
            raise ProviderError(
                self.provider, f"tool call {parts.name!r} has arguments that are not JSON: {exc}"
            ) from None
        if not isinstance(arguments, dict):
            raise ProviderError(
                self.provider, f"tool call {parts.name!r} has arguments that are not a JSON object"
            )
        return ToolCall(id=parts.id, name=parts.name, arguments=arguments)  # pyright: ignore[reportUnknownArgumentType]
