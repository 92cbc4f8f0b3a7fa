"""What never leaves the server: tracebacks (in answers) and the API token (in access logs).

A failed node's ``ErrorEvent`` keeps its traceback in storage, where ``weavegraph sessions show``
and ``--debug`` reach it; over HTTP an error is its type and message only.
"""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from typing import Any

from ..state import VersionedState

ACCESS_LOGGER = "uvicorn.access"
_TOKEN_PARAM = re.compile(r"([?&]token=)[^&\s\"]*", re.IGNORECASE)


def public_state(state: VersionedState) -> dict[str, Any]:
    """``state.to_json_value()`` without the tracebacks of its error entries."""
    value = state.to_json_value()
    value["errors"] = [replace(error, traceback=None).to_json_value() for error in state.errors]
    return value


def redact_token(text: str) -> str:
    """``text`` with every ``?token=``/``&token=`` value replaced by ``[redacted]``."""
    return _TOKEN_PARAM.sub(r"\1[redacted]", text)


class RedactToken(logging.Filter):
    """Rewrites log records so a ``?token=`` in a logged URL never reaches a log file."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact_token(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(
                redact_token(arg) if isinstance(arg, str) else arg for arg in record.args
            )
        return True


def redact_access_log() -> None:
    """Install :class:`RedactToken` on the server's access logger (once)."""
    access = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(existing, RedactToken) for existing in access.filters):
        access.addFilter(RedactToken())
