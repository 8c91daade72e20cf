"""The usage API's metrics (Prometheus, served on its own /metrics) and its tracer (spans go
out when a collector is configured: ingestion/landing/tracing.py)."""

from __future__ import annotations

from opentelemetry import trace
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
