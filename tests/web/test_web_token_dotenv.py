"""WEAVEGRAPH_API_TOKEN is resolved like every other setting: the environment, else ``.env``."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

import weavegraph as wg
from weavegraph.checkpoint.base import Checkpointer
from weavegraph.web.app import create_app


async def _noop(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
    return wg.NodePartial()


def _app() -> wg.App:
    builder = wg.GraphBuilder()
    builder.add_node("noop", _noop)
    builder.add_edge(wg.START, "noop")
    builder.add_edge("noop", wg.END)
    return builder.compile()


async def _never_opened() -> Checkpointer:  # the graph route needs no storage
    raise AssertionError("not used")


async def _status(headers: dict[str, str]) -> int:
    web = create_app(_app(), _never_opened)
    transport = httpx.ASGITransport(app=web)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return (await client.get("/api/graph", headers=headers)).status_code


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("WEAVEGRAPH_API_TOKEN", raising=False)
    return tmp_path


async def test_a_token_in_dotenv_protects_the_api(in_tmp: Path) -> None:
    (in_tmp / ".env").write_text("WEAVEGRAPH_API_TOKEN=from-dotenv\n")
    assert await _status({}) == 401
    assert await _status({"Authorization": "Bearer wrong"}) == 401
    assert await _status({"Authorization": "Bearer from-dotenv"}) == 200


async def test_the_environment_wins_over_dotenv(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (in_tmp / ".env").write_text("WEAVEGRAPH_API_TOKEN=from-dotenv\n")
    monkeypatch.setenv("WEAVEGRAPH_API_TOKEN", "from-env")
    assert await _status({"Authorization": "Bearer from-dotenv"}) == 401
    assert await _status({"Authorization": "Bearer from-env"}) == 200


async def test_no_token_anywhere_leaves_the_api_open(in_tmp: Path) -> None:
    assert await _status({}) == 200
