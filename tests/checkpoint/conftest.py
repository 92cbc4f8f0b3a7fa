"""Fixtures shared by the PostgreSQL checkpointer tests of this folder."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from weavegraph.checkpoint.postgres import PostgresCheckpointer


@pytest.fixture
async def cp(postgres_url: str, postgres_schema: str) -> AsyncIterator[PostgresCheckpointer]:
    """A PostgreSQL checkpointer in a schema of its own (a test module may define its own ``cp``:
    SQLite ones do, and so does one that needs a short lease)."""
    checkpointer = await PostgresCheckpointer.connect(postgres_url, schema=postgres_schema)
    try:
        yield checkpointer
    finally:
        await checkpointer.close()
