"""examples/agent_openai.py runs as a user would run it, against a local OpenAI-compatible server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from fake_providers import FakeProvider, openai_text, openai_tools

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "agent_openai.py"
CALLS = [("call_w", "get_weather", {"city": "Paris"}), ("call_t", "local_time", {"city": "Paris"})]
ANSWER = "In Paris it is 18°C with light rain, and 14:05."


def run(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXAMPLE), "Weather and time in Paris?"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_agent_example_streams_calls_tools_and_answers(tmp_path: Path) -> None:
    with FakeProvider([openai_tools(CALLS), openai_text(ANSWER)]) as fake:
        env = {**os.environ, "OPENAI_BASE_URL": f"{fake.url}/v1", "OPENAI_API_KEY": "sk-test"}
        env.pop("OPENAI_MODEL", None)
        result = run(tmp_path, env)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "[calls get_weather({'city': 'Paris'})]" in out
    assert "[calls local_time({'city': 'Paris'})]" in out
    assert f"answer: {ANSWER}" in out
    assert "4 checkpointed steps in agent.db" in out
    assert (tmp_path / "agent.db").is_file()
    first, second = fake.requests
    assert first.body["model"] == "gpt-4o-mini"
    assert first.body["messages"][1]["content"] == "Weather and time in Paris?"
    assert [m["role"] for m in second.body["messages"]][-2:] == ["tool", "tool"]
    assert "Traceback" not in result.stderr


def test_without_an_endpoint_the_example_says_what_to_set(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    result = run(tmp_path, env)
    assert result.returncode == 1
    assert "set OPENAI_API_KEY" in result.stderr
