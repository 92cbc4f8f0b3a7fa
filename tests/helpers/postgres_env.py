"""The PostgreSQL server the tests use, from ``WEAVEGRAPH_POSTGRES_TEST_URL``."""

from __future__ import annotations

import os
import uuid
from typing import LiteralString, cast

import pytest


def postgres_test_url() -> str:
    """The URL; a skip without it, a failure if ``WEAVEGRAPH_REQUIRE_POSTGRES=1``."""
    url = os.environ.get("WEAVEGRAPH_POSTGRES_TEST_URL", "")
    if not url:
        reason = "WEAVEGRAPH_POSTGRES_TEST_URL is not set"
        if os.environ.get("WEAVEGRAPH_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL is required (WEAVEGRAPH_REQUIRE_POSTGRES=1) but {reason}")
        pytest.skip(reason)
    return url


def new_schema_name() -> str:
    """A fresh schema name, so runs and tests never collide."""
    return f"wg_test_{uuid.uuid4().hex[:12]}"


def drop_schema(url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(cast("LiteralString", f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
