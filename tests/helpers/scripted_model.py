"""A scripted ChatModel for tests: answers from a list, streaming like a provider would."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

import weavegraph as wg
from weavegraph.llm import StreamItem, TextDelta, Tool, ToolCallDelta


class ScriptedModel:
    """Answers each call with the next scripted message, streamed word by word (tool-call
    arguments in pieces); records what it was asked. ``hang`` makes a call wait forever after its
    first delta (to test cancellation); ``closed`` counts streams closed before their end."""

    provider = "scripted"
    model = "scripted-1"

    def __init__(self, answers: Sequence[wg.Message], *, hang: bool = False) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[list[wg.Message], list[str]]] = []
        self.hang = hang
        self.closed = 0

    async def stream(
        self, messages: Sequence[wg.Message], *, tools: Sequence[Tool] | None = None, **options: Any
    ) -> AsyncIterator[StreamItem]:
        self.calls.append((list(messages), [t.name for t in tools or ()]))
        answer = self.answers.pop(0)
        finished = False
        try:
            for index, word in enumerate(answer.content.split(" ") if answer.content else ()):
                yield TextDelta(word if index == 0 else f" {word}")
                if self.hang:
                    await asyncio.Event().wait()
            for index, call in enumerate(answer.tool_calls):
                text = json.dumps(dict(call.arguments))
                yield ToolCallDelta(index=index, id=call.id, name=call.name, arguments=text[:4])
                yield ToolCallDelta(index=index, arguments=text[4:])
            finished = True
        finally:
            if not finished:
                self.closed += 1
        usage = {"input_tokens": 10 * len(self.calls), "output_tokens": 3}
        yield wg.Message(
            "assistant",
            answer.content,
            tool_calls=answer.tool_calls,
            metadata={
                "usage": usage,
                "finish_reason": "tool_calls" if answer.tool_calls else "stop",
            },
        )
