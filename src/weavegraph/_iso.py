"""Times as ISO 8601 text, on paths that write one per step or event."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

__all__ = ["iso"]


def iso(moment: datetime) -> str:
    """``moment.isoformat()``: the same text, written by orjson for UTC and naive times (a tenth
    of the cost)."""
    if type(moment) is datetime and (moment.tzinfo is UTC or moment.tzinfo is None):
        return orjson.dumps(moment)[1:-1].decode()
    return moment.isoformat()
