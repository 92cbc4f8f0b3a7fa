"""``weavegraph sessions list`` shows each session's status (read from storage, "waiting for an
answer" for an interrupted one); ``run`` hands the module factory's context to the nodes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

WEAVEGRAPH = str(Path(sys.executable).with_name("weavegraph"))

FLOWS = """
import weavegraph as wg

async def ask(snapshot, ctx):
    return wg.NodePartial(extra={"answer": ctx.interrupt({"question": "ship it?"})})

async def greet(snapshot, ctx):
    return wg.NodePartial(extra={"greeting": ctx.context["greet"](ctx.context["user"])})

def asking():
    builder = wg.GraphBuilder().add_node("ask", ask)
    return builder.add_edge(wg.START, "ask").add_edge("ask", wg.END)

def with_context():
    builder = wg.GraphBuilder().add_node("greet", greet)
    app = builder.add_edge(wg.START, "greet").add_edge("greet", wg.END).compile()
    return app, {"user": "ada", "greet": lambda name: f"hello {name}"}
"""


def wg_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("WEAVEGRAPH_SQLITE_URL", None)
    env.pop("SQLITE_DB_NAME", None)
    result = subprocess.run(
        [WEAVEGRAPH, *args], cwd=cwd, capture_output=True, text=True, timeout=120, env=env
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_sessions_list_shows_status_and_the_factory_context_reaches_nodes(tmp_path: Path) -> None:
    (tmp_path / "flows.py").write_text(FLOWS)
    wg_cli("run", "flows:asking", "--session", "waiting", "--events", "none", cwd=tmp_path)
    wg_cli("run", "flows:with_context", "--session", "greeted", "--events", "none", cwd=tmp_path)
    listed = wg_cli("sessions", "list", cwd=tmp_path).stdout
    cells = [line.split("│") for line in listed.splitlines() if line.startswith("│")]
    rows = {row[1].strip(): row[2].strip() for row in cells}
    assert "status" in listed
    assert rows == {"waiting": "waiting for an answer", "greeted": "completed"}
    as_json = json.loads(wg_cli("sessions", "list", "--json", cwd=tmp_path).stdout)
    by_id = {item["session_id"]: item for item in as_json}
    assert by_id["waiting"]["status"] == "interrupted"
    assert by_id["waiting"]["interrupt"] == {
        "id": "1:ask",
        "node": "ask",
        "namespace": None,
        "value": {"question": "ship it?"},
    }
    assert by_id["greeted"]["status"] == "completed"
    shown = json.loads(wg_cli("sessions", "show", "greeted", "--json", cwd=tmp_path).stdout)
    assert shown["state"]["extra"]["greeting"] == "hello ada"
