"""Shared fixtures: the PostgreSQL test database (skipped without it, unless it is required)."""

from __future__ import annotations

import importlib.util
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, LiteralString, cast

import pytest


@pytest.fixture
def postgres_url() -> str:
    """``WEAVEGRAPH_POSTGRES_TEST_URL``; a skip without it, a failure if WEAVEGRAPH_REQUIRE_POSTGRES=1."""
    url = os.environ.get("WEAVEGRAPH_POSTGRES_TEST_URL", "")
    if not url:
        reason = "WEAVEGRAPH_POSTGRES_TEST_URL is not set"
        if os.environ.get("WEAVEGRAPH_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL is required (WEAVEGRAPH_REQUIRE_POSTGRES=1) but {reason}")
        pytest.skip(reason)
    return url


@pytest.fixture
def postgres_schema(postgres_url: str) -> Iterator[str]:
    """A fresh schema name for one test, dropped afterwards, so runs and tests never collide."""
    import psycopg

    name = f"wg_test_{uuid.uuid4().hex[:12]}"
    yield name
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(raw(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))


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
