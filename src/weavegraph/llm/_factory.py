"""``chat_model("provider:model")``: a model adapter named by one string (CLI flags, env vars)."""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError
from ._anthropic import AnthropicChat
from ._openai import OpenAIChat

__all__ = ["PROVIDERS", "chat_model"]

PROVIDERS = ("openai", "anthropic")
"""The prefixes :func:`chat_model` understands."""


def chat_model(spec: str, **options: Any) -> OpenAIChat | AnthropicChat:
    """``"openai:gpt-4o-mini"`` as ``OpenAIChat("gpt-4o-mini", **options)``,
    ``"anthropic:claude-sonnet-4-5"`` as ``AnthropicChat(...)``. Endpoints and keys come from
    the SDKs' environment variables (``OPENAI_BASE_URL``, ``OPENAI_API_KEY``, ...)."""
    provider, sep, model = spec.partition(":")
    if not sep or not model or provider not in PROVIDERS:
        raise ConfigError(
            f"a model is named provider:model with provider one of {', '.join(PROVIDERS)}; "
            f"got {spec!r}",
            help="For example openai:gpt-4o-mini (any OpenAI-compatible server via "
            "OPENAI_BASE_URL) or anthropic:claude-sonnet-4-5.",
        )
    if provider == "openai":
        return OpenAIChat(model, **options)
    return AnthropicChat(model, **options)
