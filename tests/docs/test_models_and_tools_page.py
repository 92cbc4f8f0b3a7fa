"""docs/MODELS_AND_TOOLS.md: its Python blocks run, in order, as one program a reader would run,
against a local server speaking the OpenAI and Anthropic wire formats."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from fake_providers import FakeProvider, Reply, Request, anthropic_answer, openai_text, openai_tools

PAGE = Path(__file__).resolve().parents[2] / "docs" / "MODELS_AND_TOOLS.md"
ANSWER = "A superstep runs every ready node on one snapshot."


def python_blocks(text: str) -> list[str]:
    return [block.split("```", 1)[0] for block in text.split("```python\n")[1:]]


def provider(request: Request) -> Reply:
    """Asks for both tools when offered tools on a fresh question, else answers."""
    if request.path.endswith("/messages"):
        return anthropic_answer(ANSWER)
    messages = request.body["messages"]
    if request.body.get("tools") and messages[-1]["role"] == "user":
        return openai_tools(
            [("c1", "get_weather", {"city": "Paris"}), ("c2", "local_time", {"city": "Paris"})]
        )
    return openai_text(ANSWER)


def test_the_page_runs(tmp_path: Path) -> None:
    blocks = python_blocks(PAGE.read_text())
    assert len(blocks) >= 6
    script = tmp_path / "page.py"
    script.write_text("\n\n".join(blocks))
    with FakeProvider(provider) as fake:
        env = {
            **os.environ,
            "OPENAI_BASE_URL": f"{fake.url}/v1",
            "OPENAI_API_KEY": "sk-test",
            "ANTHROPIC_BASE_URL": fake.url,
            "ANTHROPIC_API_KEY": "sk-ant-test",
        }
        result = subprocess.run(
            [sys.executable, str(script)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:2] == [ANSWER, ANSWER], "the streamed tokens, then the final message"
    assert "anthropic gpt-4o-mini langchain" in lines
    assert "Current weather in a city. ['city']" in lines
    assert "2 ('tools',)" in lines
    assert "tool Paris: 18°C, light rain" in lines
    assert "429 True provider 'openai' failed (HTTP 429): Rate limit reached" in lines
    assert (tmp_path / "agent.db").is_file()
