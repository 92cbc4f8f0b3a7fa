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


@pytest.mark.parametrize(("value", "prepared"), [("off", False), ("on", True), ("0", False)])
def test_the_url_switches_prepared_statements(value: str, prepared: bool) -> None:
    target = parse_target(
        f"postgresql://postgres@127.0.0.1/test?prepared_statements={value}&schema=wg"
    )
    assert (target.prepared, target.schema) == (prepared, "wg")
    assert "prepared_statements" not in target.conninfo
    assert "schema" not in target.conninfo
    assert parse_target("postgresql://postgres@127.0.0.1/test").prepared


def test_a_bad_prepared_statements_value_is_named() -> None:
    with pytest.raises(ConfigError, match=r"\?prepared_statements='maybe'.*expected on or off"):
        parse_target("postgresql://postgres@127.0.0.1/test?prepared_statements=maybe")
