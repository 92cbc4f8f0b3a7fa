"""Each model call is an OpenTelemetry span following the GenAI conventions, child of the node span."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fake_providers import FakeProvider, openai_error, openai_text
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import weavegraph as wg
from weavegraph import tracing


@pytest.fixture
def exporter(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: provider)
    yield exporter
    provider.shutdown()


async def run_once(url: str) -> wg.VersionedState:
    async with wg.llm.OpenAIChat("fake-gpt", base_url=url, api_key="sk-test") as model:

        async def ask(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
            return wg.NodePartial(messages=(await wg.llm.respond(ctx, model, snapshot.messages),))

        app = wg.GraphBuilder().add_node("ask", ask).add_edge(wg.START, "ask")
        return (
            await app.add_edge("ask", wg.END)
            .compile()
            .invoke(wg.VersionedState.new_with_user_message("hi"))
        )


async def test_a_model_call_span_with_genai_attributes_under_the_node_span(
    exporter: InMemorySpanExporter,
) -> None:
    with FakeProvider([openai_text("Hello there.", usage=(17, 4))]) as fake:
        await run_once(f"{fake.url}/v1")
    spans = exporter.get_finished_spans()
    (call,) = [s for s in spans if s.name == "chat fake-gpt"]
    (node,) = [s for s in spans if s.name == tracing.NODE]
    assert call.kind == SpanKind.CLIENT
    assert call.parent is not None
    assert node.context is not None
    assert call.parent.span_id == node.context.span_id
    attributes = dict(call.attributes or {})
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.system"] == "openai"
    assert attributes["gen_ai.request.model"] == "fake-gpt"
    assert attributes["gen_ai.response.model"] == "fake-gpt"
    assert attributes["gen_ai.usage.input_tokens"] == 17
    assert attributes["gen_ai.usage.output_tokens"] == 4
    assert tuple(attributes["gen_ai.response.finish_reasons"]) == ("stop",)  # type: ignore[arg-type]


async def test_a_failed_call_is_an_error_span_with_the_status(
    exporter: InMemorySpanExporter,
) -> None:
    reply = openai_error(429, "slow down", "rate_limit_exceeded")
    with FakeProvider([reply]) as fake, pytest.raises(wg.NodeRunError):
        await run_once(f"{fake.url}/v1")
    (call,) = [s for s in exporter.get_finished_spans() if s.name == "chat fake-gpt"]
    assert call.status.status_code == StatusCode.ERROR
    assert dict(call.attributes or {})["error.type"] == "429"


def test_without_tracing_the_call_span_is_a_no_op() -> None:
    assert not tracing.enabled()
    with tracing.client_span("chat m", {"gen_ai.system": "x"}) as span:
        assert span is None
