"""OpenTelemetry spans for run, step, node and checkpoint; nothing when tracing is off."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

import weavegraph as wg
from weavegraph import tracing


@pytest.fixture
def exporter(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    # A private provider, patched in rather than set globally (OTel allows that only once).
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: provider)
    yield exporter
    provider.shutdown()


def by_name(spans: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    return [span for span in spans if span.name == name]


def test_without_a_provider_spans_are_a_shared_no_op() -> None:
    assert not tracing.enabled()
    first = tracing.span(tracing.RUN, session_id="s")
    assert first is tracing.span(tracing.NODE, node="n")
    with first as value:
        assert value is None


def test_without_opentelemetry_installed_spans_are_a_no_op(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(tracing, "_otel_trace", None)
    assert not tracing.enabled()
    with tracing.span(tracing.STEP, step=1) as value:
        assert value is None


def test_a_span_records_prefixed_attributes_and_errors(exporter: InMemorySpanExporter) -> None:
    assert tracing.enabled()
    with pytest.raises(RuntimeError), tracing.span(tracing.NODE, node="n", step=2):
        raise RuntimeError("boom")
    (span,) = exporter.get_finished_spans()
    assert span.name == "weavegraph.node"
    assert dict(span.attributes or {}) == {"weavegraph.node": "n", "weavegraph.step": 2}
    assert span.status.status_code == StatusCode.ERROR


async def test_a_run_emits_nested_run_step_node_and_checkpoint_spans(
    exporter: InMemorySpanExporter,
) -> None:
    async def node(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> None:
        return None

    builder = wg.GraphBuilder()
    for name in ("a", "b"):
        builder.add_node(name, node).add_edge(wg.START, name).add_edge(name, wg.END)
    await builder.compile().invoke(
        "go", session_id="traced", checkpointer=wg.InMemoryCheckpointer()
    )
    spans = exporter.get_finished_spans()
    (run,) = by_name(spans, tracing.RUN)
    steps = by_name(spans, tracing.STEP)
    nodes = by_name(spans, tracing.NODE)
    checkpoints = by_name(spans, tracing.CHECKPOINT)
    assert (run.attributes or {})["weavegraph.session_id"] == "traced"
    assert [(s.attributes or {})["weavegraph.step"] for s in steps] == [1]
    assert sorted(str((n.attributes or {})["weavegraph.node"]) for n in nodes) == ["a", "b"]
    assert len(checkpoints) == 2  # step 0 (the start) and step 1
    assert run.context is not None
    run_id = run.context.span_id
    assert all(s.parent is not None and s.parent.span_id == run_id for s in steps)
    assert steps[0].context is not None
    step_id = steps[0].context.span_id
    assert all(n.parent is not None and n.parent.span_id == step_id for n in nodes)
    assert {c.parent.span_id for c in checkpoints if c.parent} == {run_id, step_id}
