"""Tracked calls as OpenTelemetry spans, with the semantic conventions' ``code.*`` attributes.

Each call becomes a span named after the function, with ``code.function.name`` (its
module and name) and ``callmetrics.event_type``; a failed call adds ``error.type``
(the exception's qualified type name, as the metrics count it), the exception event
and an error status.
The span is a child of the current one, and current while the call runs, so spans
the function opens nest under it.  Each sampled span's trace and span ids are also
offered to the instance's exemplar store, which the Prometheus exporter shows on its
duration buckets (OpenMetrics).
"""

from __future__ import annotations

from contextvars import Token
from typing import TYPE_CHECKING, cast

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, Status, StatusCode, Tracer

from callmetrics._engine.errors import type_name
from callmetrics.exporters.exemplars import ExemplarStore

if TYPE_CHECKING:
    from callmetrics._engine.aggregate import FunctionStats

__all__ = ["SpanObserver"]


class SpanObserver:
    """A call observer that turns each tracked call into a span."""

    def __init__(self, tracer: Tracer, exemplars: ExemplarStore | None = None) -> None:
        """Make spans with ``tracer``; offer traced calls to ``exemplars``."""
        self._tracer = tracer
        self._exemplars = exemplars

    def on_start(self, stats: FunctionStats) -> tuple[Span, Token[Context] | None]:
        """Start the call's span (current while it runs, unless it is a generator)."""
        span = self._tracer.start_span(stats.name, attributes={
            "code.function.name": f"{stats.module}.{stats.name}",
            "callmetrics.event_type": stats.event_type,
        })
        if stats.kind in ("gen", "agen"):
            # A generator yields to its caller between steps (and an async one may be
            # resumed from another task): making its span current would leak it.
            return span, None
        return span, otel_context.attach(trace.set_span_in_context(span))

    def on_end(self, token: object, stats: FunctionStats, duration: float,
               error: BaseException | None) -> None:
        """End the call's span, marking a failure; keep it as an exemplar."""
        span, attached = cast("tuple[Span, Token[Context] | None]", token)
        if attached is not None:
            otel_context.detach(attached)
        if error is not None:
            span.set_attribute("error.type", type_name(type(error)))
            span.record_exception(error)
            span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
        span.end()
        if self._exemplars is not None:
            context = span.get_span_context()
            if context.is_valid and context.trace_flags.sampled:
                self._exemplars.offer((stats.name, stats.event_type), duration,
                                      context.trace_id, context.span_id)
