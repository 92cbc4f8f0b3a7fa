"""Fixtures for the web tests: a real ``weavegraph serve`` subprocess and an SSE reader."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from web_server import Server, collect_events, read_sse, start_server

# --- fixtures (the helpers live in tests/helpers/web_server.py) ---------------------------------


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The bundled demo served from a fresh SQLite file, shared by a module's tests."""
    folder = tmp_path_factory.mktemp("serve")
    server = start_server("weavegraph.demo:demo_app", folder / "web.db", cwd=folder)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def sse() -> Any:
    """``sse(client, url, headers=None)``: every event of one SSE stream."""
    return collect_events


@pytest.fixture
def sse_reader() -> Any:
    """``sse_reader(response)``: SSE messages of a streaming response, as they arrive."""
    return read_sse


@pytest.fixture
def server_factory() -> Iterator[Any]:
    """``server_factory(target, db, cwd=..., env=...)``: start a server (stopped after the test)."""
    started: list[Server] = []

    def start(target: str, db: Path, *, cwd: Path, env: Mapping[str, str] | None = None) -> Server:
        server = start_server(target, db, cwd=cwd, env=env)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
