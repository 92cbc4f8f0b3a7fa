"""react_agent end to end: two tools asked for in parallel, their results, the answer; the token
stream in the events; a checkpoint per step; a kill -9 between the tool step and the answer."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from fake_providers import FakeProvider, Reply, openai_text, openai_tools
from scripted_model import ScriptedModel

import weavegraph as wg

WORKER = Path(__file__).with_name("agent_worker.py")
TWO_CALLS = [
    ("call_w", "get_weather", {"city": "Paris"}),
    ("call_t", "local_time", {"city": "Paris"}),
]
ANSWER = "Paris has 18C and rain at 14:05."


def get_weather(city: str) -> str:
    """Current weather in a city."""
    return f"{city}: 18C, rain"


async def local_time(city: str) -> str:
    """Local time in a city."""
    return f"{city}: 14:05"


def scripted() -> ScriptedModel:
    calls = [wg.ToolCall(i, name, args) for i, name, args in TWO_CALLS]
    return ScriptedModel(
        [wg.Message.assistant("Checking both.", tool_calls=calls), wg.Message.assistant(ANSWER)]
    )


def test_the_graph_has_agent_and_tools_nodes() -> None:
    app = wg.prebuilt.react_agent(scripted(), [get_weather, local_time])
    assert set(app.topological_sort()) >= {"agent", "tools"}
    mermaid = app.to_mermaid()
    assert "agent" in mermaid
    assert "tools" in mermaid


async def test_two_parallel_tools_then_the_answer_with_tokens_and_checkpoints(
    tmp_path: Path,
) -> None:
    model = scripted()
    agent = wg.prebuilt.react_agent(model, [get_weather, local_time], system="Be brief.")
    sink = wg.MemorySink()
    bus = wg.EventBus.with_sinks([sink])
    db = f"sqlite://{tmp_path / 'agent.db'}"
    async with wg.AppRunner(agent, "sqlite", db_url=db, event_bus=bus) as runner:
        await runner.create_session("s", wg.VersionedState.new_with_user_message("Paris?"))
        final = await runner.run_until_complete("s")
        history = await runner.history("s")
    assert [info.ran_nodes for info in history[1:]] == [("agent",), ("tools",), ("agent",)]
    assert [m.role for m in final.messages] == ["user", "assistant", "tool", "tool", "assistant"]
    assert [m.tool_call_id for m in final.messages[2:4]] == ["call_w", "call_t"]
    assert final.messages[-1].content == ANSWER
    # The model saw the system prompt, then the conversation with both results.
    (first_prompt, tools), (second_prompt, _) = model.calls
    assert tools == ["get_weather", "local_time"]
    assert first_prompt[0] == wg.Message.system("Be brief.")
    assert [m.content for m in second_prompt[-2:]] == ["Paris: 18C, rain", "Paris: 14:05"]
    llm = [e for e in sink.snapshot() if e.type == "llm"]
    answer_stream = [e for e in llm if e.metadata["step"] == 3]
    text = [e.message for e in answer_stream if e.scope == "chunk"]
    assert "".join(text) == ANSWER
    assert len(text) == len(ANSWER.split(" "))
    assert answer_stream[-1].scope == "final"


async def test_retry_and_max_steps_apply() -> None:
    forever = wg.Message.assistant("", tool_calls=[wg.ToolCall("x", "get_weather", {"city": "A"})])
    model = ScriptedModel([forever] * 10)
    agent = wg.prebuilt.react_agent(model, [get_weather], max_steps=4)
    with pytest.raises(wg.StepLimitExceeded):
        await agent.invoke(wg.VersionedState.new_with_user_message("loop"))


def run_worker(db: Path, calls: Path, url: str) -> subprocess.Popen[str]:
    env = {**os.environ, "OPENAI_BASE_URL": url, "OPENAI_API_KEY": "sk-test"}
    return subprocess.Popen(
        [sys.executable, str(WORKER), str(db), "killed", str(calls)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=db.parent,
    )


@pytest.mark.slow
def test_a_kill_between_the_tools_and_the_answer_does_not_run_the_tools_again(
    tmp_path: Path,
) -> None:
    db, calls = tmp_path / "agent.db", tmp_path / "calls.txt"
    answer_held = threading.Event()
    replies = [
        openai_tools(TWO_CALLS),
        Reply(body=[b": the process is killed before this answer\n\n"], hold=answer_held),
        openai_text(ANSWER),
    ]
    with FakeProvider(replies) as fake:
        first = run_worker(db, calls, f"{fake.url}/v1")
        assert first.stdout is not None
        steps = [first.stdout.readline().strip() for _ in range(2)]
        assert steps == ["step 1 agent", "step 2 tools"]
        fake.wait_for_requests(2)  # the agent's second call is in flight
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=60)
        answer_held.set()
        assert first.returncode == -signal.SIGKILL
        assert sorted(calls.read_text().splitlines()) == ["get_weather Paris", "local_time Paris"]

        second = run_worker(db, calls, f"{fake.url}/v1")
        out, err = second.communicate(timeout=60)
        assert second.returncode == 0, err
    assert out.splitlines() == ["step 3 agent", f"ANSWER {ANSWER}"]
    assert len(calls.read_text().splitlines()) == 2, "the tools ran once"
    resumed = fake.requests[2].body["messages"]
    assert [m["role"] for m in resumed] == ["system", "user", "assistant", "tool", "tool"]
