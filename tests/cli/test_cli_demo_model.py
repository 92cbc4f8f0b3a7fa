"""``weavegraph demo --model openai:MODEL`` drafts with a real endpoint (here a local stand-in)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from fake_providers import FakeProvider, openai_text

WEAVEGRAPH = Path(sys.executable).with_name("weavegraph")
DRAFT = " ".join(["Supersteps merge partial updates in frontier order at each barrier."] * 6)


def demo(tmp_path: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(WEAVEGRAPH), "demo", "--delay", "0", "--db", f"sqlite://{tmp_path}/d.db", *args],
        cwd=tmp_path,
        env={**os.environ, "COLUMNS": "200", **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_draft_step_streams_from_the_named_model(tmp_path: Path) -> None:
    with FakeProvider([openai_text(DRAFT, model="small-model")]) as fake:
        env = {"OPENAI_BASE_URL": f"{fake.url}/v1", "OPENAI_API_KEY": "sk-test"}
        result = demo(tmp_path, "--model", "openai:small-model", env=env)
    assert result.returncode == 0, result.stderr
    assert "openai:small-model (streams tokens)" in result.stderr
    assert "run completed" in result.stdout
    assert DRAFT in result.stdout, "the published answer is the model's draft"
    (request,) = fake.requests  # long enough: published without a revision
    assert request.body["model"] == "small-model"
    prompt = request.body["messages"][-1]["content"]
    assert "How do supersteps keep concurrent workflow nodes deterministic?" in prompt
    assert "search_papers: Pregel" in prompt


def test_the_environment_variable_names_the_model_and_bad_names_are_usage_errors(
    tmp_path: Path,
) -> None:
    with FakeProvider([openai_text(DRAFT)]) as fake:
        env = {
            "OPENAI_BASE_URL": f"{fake.url}/v1",
            "OPENAI_API_KEY": "sk-test",
            "WEAVEGRAPH_DEMO_MODEL": "openai:env-model",
        }
        result = demo(tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert fake.requests[0].body["model"] == "env-model"
    bad = demo(tmp_path, "--model", "gpt-4o", env={})
    assert bad.returncode == 2
    assert "provider:model" in bad.stderr
    assert "Traceback" not in bad.stderr
