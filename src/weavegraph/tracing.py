"""OpenTelemetry spans for runs, steps, nodes and checkpoints — free when nobody traces.

The runtime calls :func:`span` around each unit of work::

    with tracing.span(tracing.RUN, session_id=sid):
        with tracing.span(tracing.STEP, session_id=sid, step=n):
            with tracing.span(tracing.NODE, session_id=sid, step=n, node_id=node):
                ...
            with tracing.span(tracing.CHECKPOINT, session_id=sid, step=n):
                ...

Calls to outside services (a model provider) get a :func:`client_span` carrying the attributes
their own semantic conventions name (``gen_ai.*``), child of the node's span.

When ``opentelemetry`` is not installed, or installed without a tracer provider configured (no
SDK set up by the application), ``span`` returns a shared no-op context manager: no allocation,
no attribute conversion. Exceptions leaving a span are recorded on it and mark it as an error.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Final, TypeAlias

__all__ = ["CHECKPOINT", "NODE", "RUN", "STEP", "AttributeValue", "client_span", "enabled", "span"]

AttributeValue: TypeAlias = str | int | float | bool | Sequence[str]
"""What a span attribute may hold."""

RUN: Final = "weavegraph.run"
STEP: Final = "weavegraph.step"
NODE: Final = "weavegraph.node"
CHECKPOINT: Final = "weavegraph.checkpoint"

_NOOP: Final[AbstractContextManager[None]] = contextlib.nullcontext()

try:
    from opentelemetry import trace as _otel_trace
except ImportError:  # the `otel` extra is not installed
    _otel_trace = None


def enabled() -> bool:
    """Whether spans are recorded: OpenTelemetry is installed and a tracer provider is set."""
    if _otel_trace is None:
        return False
    # Until the application sets a provider, the API hands out a proxy that records nothing.
    return not isinstance(_otel_trace.get_tracer_provider(), _otel_trace.ProxyTracerProvider)


def span(name: str, **attributes: str | int | float | bool) -> AbstractContextManager[Any]:
    """A span named ``name`` (use the constants above) with ``weavegraph.*`` attributes.

    Becomes a child of the current span (contextvars carry it across tasks). A no-op when
    tracing is not :func:`enabled`.
    """
    if _otel_trace is None:
        return _NOOP
    provider = _otel_trace.get_tracer_provider()
    if isinstance(provider, _otel_trace.ProxyTracerProvider):
        return _NOOP
    prefixed = {f"weavegraph.{key}": value for key, value in attributes.items()}
    return _tracer(provider).start_as_current_span(name, attributes=prefixed)


def client_span(name: str, attributes: Mapping[str, AttributeValue]) -> AbstractContextManager[Any]:
    """A CLIENT span named ``name`` with ``attributes`` exactly as given (no prefix), for a call
    to an outside service. Entering it gives the span, to add results with
    ``set_attribute`` (``None`` when tracing is not :func:`enabled`)."""
    if _otel_trace is None:
        return _NOOP
    provider = _otel_trace.get_tracer_provider()
    if isinstance(provider, _otel_trace.ProxyTracerProvider):
        return _NOOP
    return _tracer(provider).start_as_current_span(
        name, kind=_otel_trace.SpanKind.CLIENT, attributes=dict(attributes)
    )


_cached: list[tuple[object, Any]] = []


def _tracer(provider: Any) -> Any:
    # One tracer per provider: asking the SDK for a tracer on every span would cost more.
    if _cached and _cached[0][0] is provider:
        return _cached[0][1]
    tracer = provider.get_tracer("weavegraph")
    _cached[:] = [(provider, tracer)]
    return tracer
