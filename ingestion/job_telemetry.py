"""Traces and metrics of the batch jobs: dbt builds, finalization, payment runs.

Why one helper beside the rooms: billing and payments report the same way (a span per run, its
counts, its outcome), and neither should know how spans or metrics leave the process.

Spans go through the tracer setup of the ingest service and the usage API
(ingestion/landing/tracing.py): exported over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set,
configured on a job's first run in a process that has no tracer provider yet (the CLI, a Dagster
run worker); otherwise nothing is recorded. Each span carries the run's inputs (as_of, ...),
its counts and `outcome`; an exception is recorded on it and its status set to error.

Metrics: a job ends long before Prometheus would scrape it, so each run pushes its figures to a
Pushgateway (VALUEVERSE_PUSHGATEWAY_URL; unset: nothing is pushed), the Prometheus way for batch
jobs. Group job="valueverse", task=<the job>; `pushadd`, so a failed run leaves the last
success's timestamp in place. A push that fails is logged and never fails the job.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode
from prometheus_client import CollectorRegistry, Gauge, pushadd_to_gateway

from ingestion.landing import tracing
from ingestion.warehouse import redact_url

PUSHGATEWAY_ENV = "VALUEVERSE_PUSHGATEWAY_URL"
DURATION = "valueverse_job_duration_seconds"
LAST_SUCCESS = "valueverse_job_last_success_timestamp_seconds"
LAST_FAILURE = "valueverse_job_last_failure_timestamp_seconds"
ITEMS = "valueverse_job_items"
OK, ERROR = "ok", "error"

log = logging.getLogger("valueverse.jobs")


@dataclass
class JobRun:
    """One run in progress: what it counted and how it ended."""

    task: str
    span: Span
    counts: dict[str, int] = field(default_factory=dict)
    outcome: str = OK
    failed: bool = False

    def record(self, **counts: int) -> None:
        """Counts of this run (invoices finalized, attempts, ...): span attributes and, pushed,
        `valueverse_job_items{task, item}`."""
        for name, value in counts.items():
            self.counts[name] = int(value)
            self.span.set_attribute(name, int(value))

    def fail(self, outcome: str, description: str | None = None) -> None:
        """The job ran but did not do its work (dbt failed, Stripe unreachable): an error
        status on the span and a failure timestamp, without an exception."""
        self.outcome, self.failed = outcome, True
        self.span.set_status(Status(StatusCode.ERROR, description or outcome))


_tracing_checked = False


def _ensure_tracing() -> None:
    """Configure OTLP export once per process, unless a provider is set already (the ingest
    service's, the API's, a test's)."""
    global _tracing_checked
    if not _tracing_checked:
        _tracing_checked = True
        if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
            tracing.configure("valueverse-jobs")


@contextmanager
def job_run(span_name: str, **attributes: object) -> Iterator[JobRun]:
    """A span around one run of a job; its outcome and counts pushed when it ends."""
    _ensure_tracing()
    task = span_name.replace(" ", "_")
    tracer = trace.get_tracer("valueverse.jobs")
    started = time.monotonic()
    attrs = {k: v if isinstance(v, bool | int | float) else str(v) for k, v in attributes.items()}
    with tracer.start_as_current_span(span_name, attributes=attrs) as span:
        run = JobRun(task, span)
        try:
            yield run
        except BaseException as exc:
            run.outcome, run.failed = ERROR, True
            span.set_attribute("outcome", ERROR)
            span.set_attribute("error.type", type(exc).__name__)
            push(run, time.monotonic() - started)
            raise  # the span records the exception and sets its status on the way out
        span.set_attribute("outcome", run.outcome)
        push(run, time.monotonic() - started)


def job_registry(run: JobRun, duration: float, now: float | None = None) -> CollectorRegistry:
    """The series one run pushes (a registry of its own: nothing else of the process)."""
    registry = CollectorRegistry()
    Gauge(DURATION, "Seconds the job's last run took", registry=registry).set(duration)
    stamp = LAST_FAILURE if run.failed else LAST_SUCCESS
    help_text = "Unix time the job last " + ("failed" if run.failed else "succeeded")
    Gauge(stamp, help_text, registry=registry).set(time.time() if now is None else now)
    items = Gauge(ITEMS, "Counts of the job's last run, by item", ["item"], registry=registry)
    for name, value in run.counts.items():
        items.labels(item=name).set(value)
    return registry


def push(run: JobRun, duration: float, environ: Mapping[str, str] | None = None) -> bool:
    """Push the run's series when a Pushgateway is configured; True when pushed."""
    url = ((os.environ if environ is None else environ).get(PUSHGATEWAY_ENV) or "").strip()
    if not url:
        return False
    try:
        pushadd_to_gateway(url, job="valueverse", grouping_key={"task": run.task},
                           registry=job_registry(run, duration), timeout=5)  # fmt: skip
    except Exception as exc:  # unreachable, refused, a malformed URL: the job's work stands
        log.warning("job metrics not pushed to %s: %s", redact_url(url), exc)
        return False
    return True
