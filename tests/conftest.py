"""Shared fixtures: the PostgreSQL test database (skipped without it, unless it is required)."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, LiteralString, cast

import pytest
from postgres_env import drop_schema, new_schema_name, postgres_test_url


@pytest.fixture
def postgres_url() -> str:
    """``WEAVEGRAPH_POSTGRES_TEST_URL``; a skip without it, a failure if WEAVEGRAPH_REQUIRE_POSTGRES=1."""
    return postgres_test_url()


@pytest.fixture
def postgres_schema(postgres_url: str) -> Iterator[str]:
    """A fresh schema name for one test, dropped afterwards, so runs and tests never collide."""
    name = new_schema_name()
    yield name
    drop_schema(postgres_url, name)


def raw(text: str) -> LiteralString:
    """A test-built SQL string (schema names are generated here, never user input)."""
    return cast("LiteralString", text)


@pytest.fixture
async def uninterrupted_state() -> dict[str, Any]:
    """The final state JSON of ``session_worker.py``'s graph run in-process without interruption:
    what a session that was killed or stopped and then resumed must end with."""
    spec = importlib.util.spec_from_file_location(
        "session_worker", Path(__file__).with_name("session_worker.py")
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    state = await module.build_app().invoke("start")
    return json.loads(json.dumps(state.to_json_value()))
