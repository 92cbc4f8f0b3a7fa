"""Queue fixtures: a fresh schema per test (other runs share the database), and its URL."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from weavegraph.checkpoint.postgres import PostgresCheckpointer
from weavegraph.queue import QueueClient


@pytest.fixture
def queue_url(postgres_url: str, postgres_schema: str) -> str:
    """The test database's URL naming this test's own schema."""
    separator = "&" if "?" in postgres_url else "?"
    return f"{postgres_url}{separator}schema={postgres_schema}"


@pytest.fixture
async def client(queue_url: str) -> AsyncIterator[QueueClient]:
    """A queue client on this test's schema (migrated on connect)."""
    cp = await PostgresCheckpointer.connect(queue_url)
    try:
        yield QueueClient(cp)
    finally:
        await cp.close()
