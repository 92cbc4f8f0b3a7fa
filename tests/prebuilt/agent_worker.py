"""A react agent run in a subprocess by the kill test (not collected: no ``test_``).

``python agent_worker.py DB SESSION CALLS_FILE`` creates or resumes SESSION on the SQLite file DB
and runs the agent (OpenAIChat on OPENAI_BASE_URL) to completion. Each tool call appends a line to
CALLS_FILE; the worker prints ``step <n> <nodes>`` after each committed step and ``ANSWER <text>``
at the end.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import weavegraph as wg


def build(calls_file: Path) -> tuple[wg.llm.OpenAIChat, wg.App]:
    def record(line: str) -> None:
        with calls_file.open("a") as out:
            out.write(line + "\n")

    def get_weather(city: str) -> str:
        """Current weather in a city."""
        record(f"get_weather {city}")
        return f"{city}: 18C, rain"

    async def local_time(city: str) -> str:
        """Local time in a city."""
        record(f"local_time {city}")
        return f"{city}: 14:05"

    model = wg.llm.OpenAIChat("fake-gpt")
    return model, wg.prebuilt.react_agent(model, [get_weather, local_time], system="Be brief.")


async def main(db: str, session: str, calls_file: str) -> int:
    model, agent = build(Path(calls_file))
    async with model, wg.AppRunner(agent, "sqlite", db_url=f"sqlite://{db}") as runner:
        await runner.create_session(session, wg.VersionedState.new_with_user_message("Paris?"))
        while True:
            result = await runner.run_step(session)
            report = result.report
            if report is not None:
                print(f"step {report.step} {','.join(report.ran_nodes)}", flush=True)
            if result.completed:
                break
        final = await runner.get_state(session)
    print(f"ANSWER {final.messages[-1].content}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(*sys.argv[1:4])))
