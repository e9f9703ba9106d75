"""Traces with OpenTelemetry, on when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (OTLP over HTTP,
protobuf; the exporter reads the other `OTEL_*` variables itself).

One webhook is one trace: the gateway's request span, the gRPC calls (the context travels in
their metadata, by the gRPC instrumentation), the service's unit of work, and from there the
event: its `meta.traceparent` is the context the change was made in, which the outbox relay
(a span per published event) and every consumer (a span around its handler) continue.
Every JSON log line written inside a span carries its `trace_id` and `span_id`.

Off, nothing is patched or installed, and what the hot paths ask (`TRACING.on`) is one
attribute read.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Link, Span, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from structlog.typing import EventDict, Processor, WrappedLogger

from wee5_kit.logging import get_logger

log = get_logger("wee5.tracing")

_PROPAGATOR = TraceContextTextMapPropagator()
_TRACER_NAME = "wee5"


class _Tracing:
    """Whether this process traces: set once by `start_tracing`."""

    on = False


TRACING = _Tracing()


def tracing_configured() -> bool:
    """True when an OTLP endpoint is set (for traces, or for every signal)."""
    return bool(
        os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
        or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    )


def start_tracing(service: str, environment: str = "development") -> bool:
    """Installs the tracer provider exporting to the OTLP endpoint and instruments gRPC
    (servers and channels made after this call), when an endpoint is set. Call it before
    building servers and channels."""
    if not tracing_configured():
        log.info("tracing is off: OTEL_EXPORTER_OTLP_ENDPOINT is not set")
        return False
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.grpc import (
        GrpcAioInstrumentorClient,
        GrpcAioInstrumentorServer,
        filters,
    )
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create(
        {
            "service.name": f"wee5-{service}",
            "service.namespace": "wee5",
            "deployment.environment.name": environment,
        }
    )
    provider = TracerProvider(resource=resource)  # flushes at exit (shutdown_on_exit)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    # Health checks (probes, the readiness watch) every few seconds are not worth a trace.
    not_health = filters.negate(filters.health_check())
    GrpcAioInstrumentorServer(filter_=not_health).instrument()  # type: ignore[no-untyped-call]
    GrpcAioInstrumentorClient(filter_=not_health).instrument()  # type: ignore[no-untyped-call]
    TRACING.on = True
    log.info("tracing is on", service_name=f"wee5-{service}")
    return True


def log_processors() -> list[Processor]:
    """The structlog processor that puts the trace id on every line written inside a span
    (none when tracing is not configured)."""
    return [add_trace_ids] if tracing_configured() else []


def add_trace_ids(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    span_context = trace.get_current_span().get_span_context()
    if span_context.is_valid:
        event_dict["trace_id"] = format(span_context.trace_id, "032x")
        event_dict["span_id"] = format(span_context.span_id, "016x")
    return event_dict


def current_traceparent() -> str:
    """The W3C `traceparent` of the current span ("" outside one or when tracing is off)."""
    if not TRACING.on:
        return ""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier.get("traceparent", "")


@contextmanager
def span(
    name: str,
    *,
    traceparent: str = "",
    linked: Iterable[str] = (),
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: dict[str, Any] | None = None,
) -> Iterator[Span | None]:
    """The current span `name` (a child of `traceparent` when given, else of the current
    span; linked to the `linked` traceparents); nothing at all when tracing is off."""
    if not TRACING.on:
        yield None
        return
    with trace.get_tracer(_TRACER_NAME).start_as_current_span(
        name,
        context=_context(traceparent),
        kind=kind,
        attributes=attributes,
        links=_links(linked),
    ) as current:
        yield current


def start_span(
    name: str,
    *,
    traceparent: str = "",
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: dict[str, Any] | None = None,
) -> Span:
    """A started span (the caller ends it), a child of `traceparent` when given; without
    making it current. Only call it when `TRACING.on`."""
    return trace.get_tracer(_TRACER_NAME).start_span(
        name, context=_context(traceparent), kind=kind, attributes=attributes
    )


def _context(traceparent: str) -> otel_context.Context | None:
    return _PROPAGATOR.extract({"traceparent": traceparent}) if traceparent else None


def _links(traceparents: Iterable[str]) -> list[Link]:
    links = []
    for traceparent in traceparents:
        span_context = trace.get_current_span(_context(traceparent)).get_span_context()
        if span_context.is_valid:
            links.append(Link(span_context))
    return links
