"""OpenTelemetry tracing, for the usage API and the ingest service alike.

On only when a collector is configured (OTEL_EXPORTER_OTLP_ENDPOINT, or
..._TRACES_ENDPOINT): spans go there over OTLP/HTTP. Otherwise nothing is recorded, and the
landing hot path does not even read message headers.

How a trace follows an event: the API puts the request's trace context in each message's
Kafka headers (W3C `traceparent`, `message_headers`); the consumer reads it from the messages
of a batch and records one `landing batch` span per batch with a link to each request's trace
(at most MAX_LINKS a batch: a batch holds up to 50,000 messages, usually from far fewer
requests, and a span with thousands of links would cost more than the batch).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping

from opentelemetry import propagate, trace
from opentelemetry.trace import Link

MAX_LINKS = 128


def enabled() -> bool:
    return bool(os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
                or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))  # fmt: skip


def configure(default_service: str) -> bool:
    """Export spans over OTLP/HTTP when a collector is configured; True when on."""
    if not enabled():
        return False
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    service = os.environ.get("OTEL_SERVICE_NAME") or default_service
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    return True


def message_headers() -> list[tuple[str, str | bytes | None]]:
    """The current trace context as Kafka headers (empty when no span is recording)."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return [(name, value.encode()) for name, value in carrier.items()]


def links(header_lists: Iterable[list[tuple[str, bytes]] | None]) -> list[Link]:
    """Links to the distinct traces named by messages' headers, at most MAX_LINKS."""
    found: dict[int, Link] = {}
    for headers in header_lists:
        for name, value in headers or ():
            if name != "traceparent" or not value:
                continue
            context = trace.get_current_span(
                propagate.extract({"traceparent": value.decode(errors="replace")})
            ).get_span_context()
            if context.is_valid and context.trace_id not in found:
                found[context.trace_id] = Link(context)
                if len(found) >= MAX_LINKS:
                    return list(found.values())
    return list(found.values())


def record_batch(batch_links: list[Link], started: float, attributes: Mapping[str, object]) -> None:
    """One `landing batch` span from `started` (time.monotonic) to now, linked to the
    requests whose events it landed."""
    tracer = trace.get_tracer("valueverse.ingest")
    start_ns = time.time_ns() - int((time.monotonic() - started) * 1e9)
    span = tracer.start_span("landing batch", links=batch_links, start_time=start_ns,
                             attributes={k: str(v) for k, v in attributes.items()})  # fmt: skip
    span.end()
