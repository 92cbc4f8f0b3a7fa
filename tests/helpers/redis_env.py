"""The Redis server the tests use: ``WEAVEGRAPH_REDIS_TEST_URL`` (default the local one)."""

from __future__ import annotations

import os

import pytest

DEFAULT_URL = "redis://127.0.0.1:6379/0"


def redis_test_url() -> str:
    """The URL of a Redis that answers; a skip otherwise, a failure if
    ``WEAVEGRAPH_REQUIRE_REDIS=1``."""
    url = os.environ.get("WEAVEGRAPH_REDIS_TEST_URL") or DEFAULT_URL
    try:
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=2)  # pyright: ignore[reportUnknownMemberType]
        try:
            client.ping()  # pyright: ignore[reportUnknownMemberType]
        finally:
            client.close()
    except Exception as exc:
        reason = f"no Redis at {url}: {exc}"
        if os.environ.get("WEAVEGRAPH_REQUIRE_REDIS") == "1":
            pytest.fail(f"Redis is required (WEAVEGRAPH_REQUIRE_REDIS=1) but {reason}")
        pytest.skip(reason)
    return url
