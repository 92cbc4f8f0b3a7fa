"""GraphBuilder's signatures type-check a user's graph under pyright strict (no Unknown leaks)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

USER_GRAPH = """
import weavegraph as wg


async def plan(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
    return wg.NodePartial(extra={"n": len(snapshot.messages)})


def act(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> None:
    ctx.emit("act", "sync node")


class Review:
    async def run(self, snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> None:
        return None


async def pick(snapshot: wg.StateSnapshot) -> list[str]:
    return ["act", "review"]


app = (
    wg.GraphBuilder()
    .add_node("plan", plan)
    .add_node("act", act)
    .add_node("review", Review())
    .add_conditional_edge(wg.START, lambda snap: "plan" if snap.messages else wg.END)
    .add_conditional_edge("plan", pick, targets=["act", "review"])
    .add_edge(["act", "review"], wg.END)
    .compile()
)
"""


@pytest.mark.slow
def test_a_user_graph_with_lambda_routers_type_checks_strictly(tmp_path: Path) -> None:
    pyright = shutil.which("pyright", path=str(Path(sys.executable).parent))
    if pyright is None:
        pytest.skip("pyright is not installed in this environment")
    (tmp_path / "flows.py").write_text(USER_GRAPH, encoding="utf-8")
    (tmp_path / "pyrightconfig.json").write_text(
        json.dumps({"strict": ["."], "pythonVersion": "3.11"}), encoding="utf-8"
    )
    result = subprocess.run(
        [pyright, "--outputjson", "--pythonpath", sys.executable, "flows.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    report = json.loads(result.stdout)
    errors = [d["message"] for d in report["generalDiagnostics"] if d["severity"] == "error"]
    assert errors == []
