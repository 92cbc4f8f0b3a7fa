"""Every example runs as a user would run it (`python examples/NAME.py`) and prints what it says."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"

EXPECTED = {
    "simple_channel.py": ["status=completed", "final: HELLO, ADA!"],
    "multiple_sinks.py": ["the queue received", "holds", "JSON lines"],
    "sink_diagnostics.py": [
        "sink 'webhook' error #",
        "webhook: 3 errors",
        "the run was not affected",
    ],
    "web_sse.py": [
        "from 1 session: 'notes about sqlite'",
        "'notes about postgres'",
        "from 1 session: 'notes about runners'; last: session=req-3 status=completed",
    ],
    "sqlite_checkpointing.py": ["resumed=True at step 2", "n=5"],
    "memory_testing.py": ["2 tests passed"],
    "errors_pretty.py": [
        "graph has no Start entry",
        "unknown node referenced: b",
        "weavegraph::run::node_failed",
    ],
    "time_travel_fork.py": [
        "trip: booked a hostel",
        "step 1: ran propose",
        "trip-rich: booked a hotel",
        "trip still says: booked a hostel",
    ],
    "human_approval.py": [
        "email: waiting for an answer from review: {'question': 'Send this email?', 'email': 'hi all",
        "'email': 'Dear team, the release is out.'}",
        "sent: Dear team, the release is out.",
        "email: completed",
        "listed: email completed",
        "invoke paused: Send this email?",
    ],
    "subgraph.py": [
        "essay: interrupted in research/choose: {'question': 'Which source?'",
        "wrote: On supersteps, per the supersteps handbook.",
        "research steps saved: [0, 1, 2, 3]",
        "sessions listed: ['essay']",
        "event from research: searching for supersteps",
        'subgraph n1["research"]',
    ],
    "streaming_modes.py": [
        "update: {'research': {'extra': {'facts': ['supersteps', 'barriers']}}}",
        "token from write: 'Nodes run in '",
        "values: 2 messages, extra keys ['facts']",
        "final: Nodes run in supersteps; partials merge at barriers.",
    ],
    "tool_agent_typed.py": [
        "assistant: get_weather({'city': 'Paris'})",
        "tool: Paris: 18°C, light rain",
        "assistant: Paris: 18°C with light rain.",
        "typed state: cities=['Paris'] model_calls=2",
    ],
    "map_reduce.py": [
        "step ran: summarize:0, summarize:1, summarize:2",
        "step ran: report",
        "supersteps: Nodes of one step...\nbarriers: Partials merge at the...\ncheckpoints:",
    ],
    "retries_timeouts_cancel.py": [
        "retried: fetched after 2 failures",
        "timed out: node slow at step 1 (TimeoutError)",
        "exceeded the step limit at step 5",
        "status=cancelled",
        "stopped at ticks=3",
        "resumed: ticks=4",
    ],
}

# Run by their own tests below (they need a database server).
POSTGRES_EXAMPLES = {"postgres_conversation.py", "scale_out.py"}


TESTED_ELSEWHERE = {
    # examples that need a server: their tests start a local stand-in for it
    "agent_openai.py": "tests/llm/test_agent_example.py",
}


def test_every_example_is_covered() -> None:
    covered = sorted({*EXPECTED, *POSTGRES_EXAMPLES, *TESTED_ELSEWHERE})
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == covered
    for test in TESTED_ELSEWHERE.values():
        assert (ROOT / test).is_file()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_runs(name: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    for fragment in EXPECTED[name]:
        assert fragment in result.stdout, result.stdout
    assert "Traceback" not in result.stderr


def _run(name: str, *args: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def test_postgres_conversation_survives_restarts(
    postgres_url: str, postgres_schema: str, tmp_path: Path
) -> None:
    separator = "&" if "?" in postgres_url else "?"
    env = {
        **os.environ,
        "WEAVEGRAPH_POSTGRES_URL": f"{postgres_url}{separator}schema={postgres_schema}",
    }
    first = _run("postgres_conversation.py", "hello", "talk", cwd=tmp_path, env=env)
    assert "started talk at step 0" in first
    assert "turn 1: you said 'hello'" in first
    second = _run("postgres_conversation.py", "and now?", "talk", cwd=tmp_path, env=env)
    assert "resumed talk at step 2" in second
    assert "turn 2: you said 'and now?' (and before that 'hello')" in second
    assert "4 messages stored, 5 steps" in second
    assert "forgot it: True" in _run(
        "postgres_conversation.py", "--forget", "talk", cwd=tmp_path, env=env
    )


def test_scale_out_runs_queued_sessions_on_a_worker(
    postgres_url: str, postgres_schema: str, tmp_path: Path
) -> None:
    separator = "&" if "?" in postgres_url else "?"
    env = {
        **os.environ,
        "WEAVEGRAPH_POSTGRES_URL": f"{postgres_url}{separator}schema={postgres_schema}",
    }
    out = _run("scale_out.py", cwd=tmp_path, env=env)
    for name in ("ada", "grace", "linus"):
        assert f"greet-{name}: HELLO, {name.upper()}!" in out


def test_readme_example_runs_and_the_cli_serves_it(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    code = readme.split("```python\n", 1)[1].split("```", 1)[0]
    assert len(code.strip().splitlines()) <= 22
    (tmp_path / "flows.py").write_text(code)
    result = subprocess.run(
        [sys.executable, "flows.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "looking things up" in result.stdout
    assert result.stdout.rstrip().endswith("supersteps merge at barriers")
    cli = Path(sys.executable).with_name("weavegraph")
    run = subprocess.run(
        [str(cli), "run", "flows:app", "--input", "why?", "--events", "jsonl"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert "status=completed" in run.stdout.splitlines()[-1]
