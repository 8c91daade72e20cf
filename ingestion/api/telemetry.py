"""The usage API's metrics (Prometheus, served on its own /metrics) and tracing (OpenTelemetry).

Tracing is on when OTEL_EXPORTER_OTLP_ENDPOINT (or ..._TRACES_ENDPOINT) is set: spans go to
that collector over OTLP/HTTP. Each produced event carries the request's trace context in
its Kafka headers (W3C `traceparent`), so a trace can follow an event from the request to the
landing batch that stored it. Without a collector nothing is recorded and nothing is sent.
"""

from __future__ import annotations

import os

from opentelemetry import propagate, trace
from prometheus_client import CollectorRegistry, Counter, Histogram

REGISTRY = CollectorRegistry()  # the API's own: never mixed with the ingest service's
REQUESTS = Counter(
    "valueverse_api_requests", "HTTP requests answered", ["route", "method", "status"],
    registry=REGISTRY,
)  # fmt: skip
LATENCY = Histogram(
    "valueverse_api_request_seconds", "Time to answer a request", ["route"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)  # fmt: skip
EVENTS = Counter("valueverse_api_events", "Events received, by outcome and rule",
                 ["outcome", "rule"], registry=REGISTRY)  # fmt: skip
PRODUCE = Histogram(
    "valueverse_api_produce_seconds", "From producing a request's messages to their last ack",
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
    registry=REGISTRY,
)  # fmt: skip
RATE_LIMITED = Counter("valueverse_api_rate_limited", "Requests refused by a rate limit",
                       ["what"], registry=REGISTRY)  # fmt: skip

tracer = trace.get_tracer("valueverse.api")


def configure_tracing() -> bool:
    """Export spans over OTLP/HTTP when an endpoint is configured; True when on."""
    if not (os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
            or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")):  # fmt: skip
        return False
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    service = os.environ.get("OTEL_SERVICE_NAME") or "valueverse-api"
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    return True


def trace_headers() -> list[tuple[str, str | bytes | None]]:
    """The current trace context as Kafka headers (empty when no span is recording)."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return [(name, value.encode()) for name, value in carrier.items()]
