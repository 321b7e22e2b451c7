"""Tracked calls as OpenTelemetry spans: code.* attributes, errors, nesting."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from callmetrics import Analytics
from callmetrics.exporters.otel import instrument
from conftest import make_calls


@pytest.fixture
def spans() -> tuple[TracerProvider, InMemorySpanExporter]:
    """A tracer provider exporting every finished span to memory at once."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def test_spans_carry_the_code_attributes_and_the_error_type(
        spans: tuple[TracerProvider, InMemorySpanExporter]) -> None:
    """With spans=True every call becomes a span: code.function.name, error.type on failure."""
    tracer_provider, exporter = spans
    analytics = Analytics()
    instrument(analytics, MeterProvider(), spans=True, tracer_provider=tracer_provider)
    make_calls(analytics, ok=3, failing=2)
    finished = exporter.get_finished_spans()
    assert len(finished) == 5
    assert {s.name for s in finished} == {"work"}
    errors = [(s.attributes or {}).get("error.type") for s in finished]
    assert errors == [None] * 3 + ["ValueError"] * 2
    failing = finished[-1]
    assert failing.attributes is not None
    assert failing.attributes["callmetrics.event_type"] == "unit"
    assert failing.attributes["code.function.name"] == "conftest.work"
    assert not any(key.startswith("callmetrics.function") for key in failing.attributes)
    assert failing.status.status_code is StatusCode.ERROR
    assert [e.name for e in failing.events] == ["exception"]
    assert finished[0].status.status_code is StatusCode.UNSET


def parent_of(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent else None


def test_spans_nest_under_the_current_span(
        spans: tuple[TracerProvider, InMemorySpanExporter]) -> None:
    """A tracked call's span is a child of the current span, and calls inside nest under it."""
    tracer_provider, exporter = spans
    analytics = Analytics()
    instrument(analytics, MeterProvider(), spans=True, tracer_provider=tracer_provider)

    @analytics.track("db")
    def inner() -> None:
        """Stand in for a query."""

    @analytics.track("api")
    async def outer() -> None:
        inner()
        await asyncio.sleep(0)

    tracer = tracer_provider.get_tracer("test")
    with tracer.start_as_current_span("request") as request:
        asyncio.run(outer())
        assert trace.get_current_span() is request  # the context was restored
    by_name = {s.name: s for s in exporter.get_finished_spans()}
    assert set(by_name) == {"request", "test_spans_nest_under_the_current_span.outer",
                            "test_spans_nest_under_the_current_span.inner"}
    outer_span = by_name["test_spans_nest_under_the_current_span.outer"]
    inner_span = by_name["test_spans_nest_under_the_current_span.inner"]
    assert parent_of(outer_span) == request.get_span_context().span_id
    assert parent_of(inner_span) == outer_span.context.span_id
    assert outer_span.context.trace_id == request.get_span_context().trace_id


def test_generator_spans_do_not_leak_into_the_caller(
        spans: tuple[TracerProvider, InMemorySpanExporter]) -> None:
    """A generator's span is not made current while the caller iterates it."""
    tracer_provider, exporter = spans
    analytics = Analytics()
    instrument(analytics, MeterProvider(), spans=True, tracer_provider=tracer_provider)

    @analytics.track("stream", name="rows")
    def rows() -> Iterator[int]:
        yield from range(3)

    seen = [(row, trace.get_current_span().get_span_context().is_valid) for row in rows()]
    assert seen == [(0, False), (1, False), (2, False)]
    assert [s.name for s in exporter.get_finished_spans()] == ["rows"]
