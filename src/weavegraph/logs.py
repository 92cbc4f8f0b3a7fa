"""Logging setup from ``WEAVEGRAPH_LOG`` directives (``RUST_LOG``-style syntax).

A directive list is comma-separated; each item is a bare level (the default for everything) or
``target=level`` for one logger and its children::

    debug                          everything at DEBUG
    error,weavegraph=debug         ERROR in general, DEBUG for weavegraph
    weavegraph.runtime.plan=debug  DEBUG for the step planner only (``weavegraph::runtime::plan`` too)

Levels: ``trace`` (as DEBUG), ``debug``, ``info``, ``warn``/``warning``, ``error``, ``off``.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import IO, Final

from .errors import ConfigError

__all__ = ["ENV_VAR", "LogDirectives", "configure_logging", "parse_log_directives"]

ENV_VAR: Final = "WEAVEGRAPH_LOG"
_OFF: Final = logging.CRITICAL + 10
_LEVELS: Final[Mapping[str, int]] = {
    "trace": logging.DEBUG,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
    "off": _OFF,
}
_FORMAT: Final = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


@dataclass(frozen=True, slots=True, kw_only=True)
class LogDirectives:
    """A parsed directive list: the default level and per-logger levels."""

    default: int = logging.WARNING
    targets: Mapping[str, int] = field(default_factory=dict[str, int])


def parse_log_directives(text: str, *, default: int = logging.WARNING) -> LogDirectives:
    """Parse ``"error,weavegraph=debug"``; an unknown level raises ``ConfigError``."""
    targets: dict[str, int] = {}
    for raw in text.split(","):
        item = raw.strip()
        if not item:
            continue
        target, sep, level = item.rpartition("=")
        if not sep:
            target, level = "", item
        parsed = _level(level, item)
        if not target:
            default = parsed
        else:
            targets[target.strip().replace("::", ".")] = parsed
    return LogDirectives(default=default, targets=targets)


def _level(name: str, item: str) -> int:
    level = _LEVELS.get(name.strip().lower())
    if level is None:
        known = ", ".join(_LEVELS)
        raise ConfigError(
            f"{ENV_VAR}: unknown log level in {item!r}",
            help=f"levels are {known}; e.g. WEAVEGRAPH_LOG=error,weavegraph=debug",
        )
    return level


class _WeavegraphHandler(logging.StreamHandler[IO[str]]):
    """The handler ``configure_logging`` installs (recognized so reconfiguring replaces it)."""


_configured_targets: set[str] = set()


def configure_logging(
    directives: str | None = None,
    *,
    stream: IO[str] | None = None,
    default: int = logging.WARNING,
) -> LogDirectives:
    """Configure the standard ``logging`` tree from ``directives`` (default: ``$WEAVEGRAPH_LOG``).

    Installs one stderr handler on the root logger (replacing the one a previous call installed),
    sets the root level to the bare level and each named logger to its level. Calling it again
    resets the loggers the previous call configured. Returns what was applied.
    """
    text = os.environ.get(ENV_VAR, "") if directives is None else directives
    parsed = parse_log_directives(text, default=default)
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _WeavegraphHandler)]:
        root.removeHandler(handler)
    handler = _WeavegraphHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(logging.Formatter(_FORMAT))
    root.addHandler(handler)
    root.setLevel(parsed.default)
    for name in _configured_targets - set(parsed.targets):
        logging.getLogger(name).setLevel(logging.NOTSET)
    for name, level in parsed.targets.items():
        logging.getLogger(name).setLevel(level)
    _configured_targets.clear()
    _configured_targets.update(parsed.targets)
    return parsed
