"""Parsing a PostgreSQL URL: no server needed."""

from __future__ import annotations

import pytest

from weavegraph.checkpoint.postgres._connect import parse_target
from weavegraph.errors import ConfigError


@pytest.mark.parametrize("url", ["sqlite://workflow.db", "mysql://root@db/app"])
def test_a_url_of_another_database_is_named_as_such(url: str) -> None:
    scheme = url.split("://", 1)[0]
    with pytest.raises(ConfigError, match=f"^{scheme}:// is not a PostgreSQL URL"):
        parse_target(url)


@pytest.mark.parametrize(
    ("url", "schema"),
    [
        ("postgresql://postgres@127.0.0.1:5432/test?schema=wg", "wg"),
        ("postgres://postgres@127.0.0.1/test", "public"),
        ("host=127.0.0.1 dbname=test user=postgres", "public"),
    ],
)
def test_postgres_urls_and_connection_strings_are_accepted(url: str, schema: str) -> None:
    assert parse_target(url).schema == schema
