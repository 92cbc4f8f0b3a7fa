"""A tool-using agent on any OpenAI-compatible endpoint, streaming its tokens, checkpointed in SQLite.

Run: OPENAI_API_KEY=... python examples/agent_openai.py "Weather and time in Paris?"
(OPENAI_BASE_URL points it at another server: vLLM, Ollama, LM Studio; OPENAI_MODEL picks the
model, gpt-4o-mini by default). Needs: pip install 'weavegraph[openai]'.
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid

import weavegraph as wg


def get_weather(city: str) -> str:
    """Current weather in a city."""
    return f"{city}: 18°C, light rain"  # a real tool would call a weather service here


def local_time(city: str) -> str:
    """Current local time in a city, as HH:MM."""
    return f"{city}: 14:05"


class Tokens:
    """Prints the model's tokens as they stream, and each tool call it asks for."""

    name = "tokens"

    def handle(self, event: wg.Event) -> None:
        if event.type == "llm" and event.metadata.get("kind") == "text":
            print(event.message, end="", flush=True)
        elif event.type == "llm" and event.scope == "final":
            for call in event.metadata.get("tool_calls") or ():
                print(f"[calls {call['name']}({dict(call['arguments'])})]", flush=True)


async def main(question: str) -> None:
    if not (os.environ.get("OPENAI_API_KEY") or os.environ.get("OPENAI_BASE_URL")):
        sys.exit("set OPENAI_API_KEY (and OPENAI_BASE_URL for a server other than OpenAI's)")
    model = wg.llm.OpenAIChat(os.environ.get("OPENAI_MODEL", "gpt-4o-mini"))
    agent = wg.prebuilt.react_agent(
        model, [get_weather, local_time], system="Answer in one sentence. Use the tools."
    )
    session = f"agent-{uuid.uuid4().hex[:8]}"
    bus = wg.EventBus.with_sinks([Tokens()])
    async with (
        model,
        wg.AppRunner(agent, "sqlite", db_url="sqlite://agent.db", event_bus=bus) as runner,
    ):
        await runner.create_session(session, wg.VersionedState.new_with_user_message(question))
        final = await runner.run_until_complete(session)
        steps = len(await runner.history(session))
    print(f"\nanswer: {final.messages[-1].content}")
    print(f"session {session}: {steps} checkpointed steps in agent.db")


if __name__ == "__main__":
    asyncio.run(main(" ".join(sys.argv[1:]) or "What is the weather and local time in Paris?"))
