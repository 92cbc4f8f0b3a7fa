"""configure_logging: WEAVEGRAPH_LOG directives in the seed's syntax."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

import weavegraph as wg
from weavegraph.logs import LogDirectives, configure_logging, parse_log_directives


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    configure_logging("")  # resets the targets a test configured
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.parametrize(
    ("text", "default", "targets"),
    [
        ("", logging.WARNING, {}),
        ("debug", logging.DEBUG, {}),
        ("error,weavegraph=debug", logging.ERROR, {"weavegraph": logging.DEBUG}),
        ("weavegraph.scheduler=debug", logging.WARNING, {"weavegraph.scheduler": logging.DEBUG}),
        ("weavegraph::scheduler=trace", logging.WARNING, {"weavegraph.scheduler": logging.DEBUG}),
        (" WARN , httpx=off ,", logging.WARNING, {"httpx": logging.CRITICAL + 10}),
        (
            "info,weavegraph=error,weavegraph.events=info",
            logging.INFO,
            {"weavegraph": logging.ERROR, "weavegraph.events": logging.INFO},
        ),
    ],
)
def test_parse_directives(text: str, default: int, targets: dict[str, int]) -> None:
    assert parse_log_directives(text) == LogDirectives(default=default, targets=targets)


def test_an_unknown_level_is_a_config_error_with_help() -> None:
    with pytest.raises(wg.ConfigError, match="loud") as info:
        parse_log_directives("weavegraph=loud")
    assert "error,weavegraph=debug" in info.value.help


def test_configure_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEAVEGRAPH_LOG", "error,weavegraph=debug")
    out = io.StringIO()
    configure_logging(stream=out)
    logging.getLogger("weavegraph.scheduler").debug("planned step %d", 3)
    logging.getLogger("elsewhere").warning("not shown")
    logging.getLogger("elsewhere").error("shown")
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert "DEBUG" in lines[0]
    assert "weavegraph.scheduler: planned step 3" in lines[0]
    assert "elsewhere: shown" in lines[1]


def test_a_narrow_target_leaves_its_parent_at_the_default() -> None:
    out = io.StringIO()
    configure_logging("weavegraph.scheduler=debug", stream=out)
    logging.getLogger("weavegraph.scheduler").debug("yes")
    logging.getLogger("weavegraph.runner").debug("no")
    assert [line.rsplit(": ", 1)[1] for line in out.getvalue().splitlines()] == ["yes"]


def test_reconfiguring_replaces_the_handler_and_resets_old_targets() -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging("weavegraph=debug", stream=first)
    configure_logging("info", stream=second)
    logging.getLogger("weavegraph").debug("hidden now")
    logging.getLogger("weavegraph").info("visible")
    assert first.getvalue() == ""
    assert second.getvalue().count("\n") == 1
    assert logging.getLogger("weavegraph").level == logging.NOTSET
