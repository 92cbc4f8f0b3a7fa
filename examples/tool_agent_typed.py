"""A tool-calling agent with typed state: the model asks for tools, the tool node runs them, and
a pydantic schema keeps what the agent learned (validated, checkpointed, typed on the way back).

Run: python examples/tool_agent_typed.py
(The model here is scripted so the example runs offline; pass any wg.llm model instead, e.g.
wg.llm.OpenAIChat("gpt-4o-mini").)
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from typing import Annotated, Any

from pydantic import BaseModel

import weavegraph as wg


class Research(BaseModel):
    cities: Annotated[list[str], wg.reducers.append] = []
    model_calls: Annotated[int, wg.reducers.sum_numbers] = 0


def get_weather(city: str) -> str:
    """Current weather in a city."""
    return f"{city}: 18°C, light rain"


class ScriptedModel:
    """A wg.llm.ChatModel that answers from a script, streaming word by word."""

    provider, model = "scripted", "scripted-1"

    def __init__(self, answers: list[wg.Message]) -> None:
        self.answers = answers

    async def stream(
        self, messages: Sequence[wg.Message], *, tools: Any = None, **options: Any
    ) -> AsyncIterator[wg.llm.StreamItem]:
        answer = self.answers.pop(0)
        for index, word in enumerate(answer.content.split()):
            yield wg.llm.TextDelta(word if index == 0 else f" {word}")
        for index, call in enumerate(answer.tool_calls):
            arguments = json.dumps(dict(call.arguments))
            yield wg.llm.ToolCallDelta(index=index, id=call.id, name=call.name, arguments=arguments)
        yield answer


MODEL = ScriptedModel(
    [
        wg.Message(
            "assistant", "", tool_calls=[wg.ToolCall("c1", "get_weather", {"city": "Paris"})]
        ),
        wg.Message("assistant", "Paris: 18°C with light rain."),
    ]
)


async def agent(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
    answer = await wg.llm.respond(ctx, MODEL, snapshot.messages, tools=[get_weather])
    cities = [str(call.arguments["city"]) for call in answer.tool_calls]
    return wg.NodePartial(messages=[answer], update={"cities": cities, "model_calls": 1})


def build() -> wg.App:
    builder = wg.GraphBuilder(state=Research)
    builder.add_node("agent", agent).add_node("tools", wg.prebuilt.tool_node([get_weather]))
    builder.add_edge(wg.START, "agent").add_edge("tools", "agent")
    builder.add_conditional_edge("agent", wg.prebuilt.tools_condition, targets=["tools", wg.END])
    return builder.compile()


async def main() -> None:
    final = await build().invoke("What's the weather in Paris?")
    for message in final.messages:
        calls = [f"{c.name}({dict(c.arguments)})" for c in message.tool_calls]
        print(f"{message.role}: {message.content or ' '.join(calls)}")
    print(f"typed state: cities={final.state.cities} model_calls={final.state.model_calls}")


if __name__ == "__main__":
    asyncio.run(main())
