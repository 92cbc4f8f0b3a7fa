"""One parametrized ``backend`` fixture: every checkpointer runs the same conformance checks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from weavegraph.checkpoint.base import Checkpointer
from weavegraph.checkpoint.memory import InMemoryCheckpointer
from weavegraph.checkpoint.postgres import PostgresCheckpointer
from weavegraph.checkpoint.sqlite import SQLiteCheckpointer
from weavegraph.testing.conformance import Capabilities

BACKENDS = ["memory", "sqlite-file", "sqlite-memory", "postgres"]


@pytest.fixture(params=BACKENDS)
async def backend(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[Checkpointer, Capabilities]]:
    """A fresh checkpointer of each backend, with the capabilities it promises."""
    name: str = request.param
    checkpointer: Checkpointer
    if name == "memory":
        checkpointer = InMemoryCheckpointer()
    elif name == "sqlite-file":
        checkpointer = await SQLiteCheckpointer.connect(f"sqlite://{tmp_path}/nested/cp.db")
    elif name == "sqlite-memory":
        checkpointer = await SQLiteCheckpointer.connect("sqlite::memory:")
    else:
        url: str = request.getfixturevalue("postgres_url")
        schema: str = request.getfixturevalue("postgres_schema")
        checkpointer = await PostgresCheckpointer.connect(url, schema=schema)
    try:
        yield checkpointer, Capabilities(keeps_history=name != "memory")
    finally:
        await checkpointer.close()
