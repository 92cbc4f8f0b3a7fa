"""Provider failures as ``wg.ProviderError``, and the optional SDKs' import."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from types import ModuleType
from typing import Any, cast

from ..errors import ConfigError, ProviderError

__all__ = ["import_sdk", "is_retryable", "provider_error", "transport_errors"]

_HTTP_CLIENTS = ("httpx", "httpx2")
"""The HTTP libraries the provider SDKs are built on (the name changed between releases)."""


def import_sdk(module: str, *, adapter: str, extra: str) -> ModuleType:
    """Import a provider SDK, or raise ConfigError naming the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ConfigError(
            f"{adapter} needs the {module!r} package, which is not installed",
            help=f"Install it with: pip install 'weavegraph[{extra}]'",
        ) from exc


def transport_errors() -> tuple[type[BaseException], ...]:
    """The HTTP library's connection errors (a cut stream), which some SDKs let through
    unwrapped while reading a stream."""
    found: list[type[BaseException]] = []
    for name in _HTTP_CLIENTS:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        error: object = getattr(module, "TransportError", None)
        if isinstance(error, type) and issubclass(error, BaseException):
            found.append(error)
    return tuple(found)


def is_retryable(exc: BaseException) -> bool:
    """True for a ProviderError worth retrying: rate limits (429), timeouts (408), conflicts
    (409), server errors (5xx) and failures without an HTTP status (a refused or cut connection,
    an unfinished stream). Use it as ``wg.RetryPolicy(retry_on=wg.ProviderError,
    retry_if=wg.llm.is_retryable)``."""
    return isinstance(exc, ProviderError) and exc.retryable


def provider_error(provider: str, exc: BaseException) -> ProviderError:
    """An SDK exception as a ProviderError: its HTTP status (an error status only: an error sent
    inside a 200 stream has none) and the provider's own message."""
    status: object = getattr(exc, "status_code", None)
    code = status if isinstance(status, int) and status >= 400 else None
    message = _body_message(getattr(exc, "body", None)) or _plain_message(exc)
    return ProviderError(provider, message, status=code)


def _body_message(body: object) -> str | None:
    """The ``message`` of an error body: ``{"error": {"message"}}``, ``{"message"}``."""
    if not isinstance(body, Mapping):
        return None
    mapping = cast("Mapping[str, Any]", body)
    inner: object = mapping.get("error")
    if isinstance(inner, Mapping):
        found = _body_message(cast("Mapping[str, Any]", inner))
        if found:
            return found
    message: object = mapping.get("message")
    return message if isinstance(message, str) and message else None


def _plain_message(exc: BaseException) -> str:
    message: object = getattr(exc, "message", None)
    text = message if isinstance(message, str) and message else str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
