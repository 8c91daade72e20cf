"""The batch jobs' spans and pushed metrics (ingestion/job_telemetry.py), recorded by the
OpenTelemetry SDK's own in-memory exporter.

One DuckDB warehouse whose marts are written by hand (no dbt: the finalizer only reads them):
three invoices due, one whose lines do not add up. Finalization numbers two and blocks one; a
payment run against a real localstripe server charges both, one card paying and one declined.
Each job leaves one span with its inputs, counts and outcome; an exception is recorded on it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from ingestion import job_telemetry
from ingestion.billing import dbt_runner
from ingestion.billing.finalization import finalize
from ingestion.billing.invoice_store import ensure_store
from ingestion.demo.localstripe import LocalStripe
from ingestion.payments.collection import collect
from ingestion.payments.settings import PaymentSettings
from ingestion.warehouse import UsageError, WarehouseConfig, connect_duckdb, resolve
from tests.integration.payments_support import (
    gateway_for,
    localstripe_server_fixture,  # noqa: F401 (fixture)
    stripe_server_fixture,  # noqa: F401 (fixture)
)

AS_OF = date(2026, 2, 4)
NOW = datetime(2026, 2, 5, 6, 0)
DECLINED_CARD = "card:4000000000000341"  # attaches, then every charge is declined


@pytest.fixture(scope="module")
def exporter() -> InMemorySpanExporter:
    """The SDK's in-memory exporter on the process's tracer provider (set here unless a test
    before this one set it: OpenTelemetry allows one per process)."""
    memory = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    return memory


@pytest.fixture
def spans(exporter: InMemorySpanExporter) -> InMemorySpanExporter:
    exporter.clear()
    return exporter


def _only(exporter: InMemorySpanExporter, name: str) -> ReadableSpan:
    found = [s for s in exporter.get_finished_spans() if s.name == name]
    assert len(found) == 1, [s.name for s in exporter.get_finished_spans()]
    return found[0]


def _insert(con: Any, table: str, row: dict[str, Any]) -> None:
    marks = ", ".join("?" for _ in row)
    con.execute(f"INSERT INTO {table} ({', '.join(row)}) VALUES ({marks})", list(row.values()))


def _warehouse(tmp_path: Path) -> WarehouseConfig:
    """Marts as dbt leaves them, by hand: invoices (one with lines that do not add up to its
    total), their lines, the build's as_of and a catalog version."""
    config = resolve(f"duckdb:///{tmp_path / 'warehouse.duckdb'}")
    ensure_store(config)
    con: Any = connect_duckdb(config)
    try:
        con.execute("CREATE SCHEMA marts; CREATE SCHEMA IF NOT EXISTS raw")
        con.execute("CREATE TABLE raw.catalog_versions (catalog_version BIGINT)")
        con.execute("INSERT INTO raw.catalog_versions VALUES (1)")
        con.execute("CREATE TABLE marts.subscription_periods AS SELECT DATE '2026-02-04' AS as_of")
        con.execute(
            "CREATE TABLE marts.invoices AS SELECT * EXCLUDE (invoice_number, series,"
            " sequence_number, catalog_version, finalized_as_of, finalized_at),"
            " 'open' AS status FROM billing.finalized_invoices LIMIT 0"
        )
        con.execute(
            "CREATE TABLE marts.invoice_lines AS SELECT *, 'open' AS invoice_status"
            " FROM billing.finalized_invoice_lines LIMIT 0"
        )
        for sub, customer, total, lines_sum in [
            ("sub_pays", "cus_pays", "10.00", "10.00"),
            ("sub_declined", "cus_declined", "20.00", "20.00"),
            ("sub_off", "cus_off", "5.00", "4.00"),
        ]:
            invoice = {"invoice_id": f"{sub}/2026-01-01", "subscription_id": sub,
                       "customer_id": customer, "period_start": date(2026, 1, 1),
                       "period_end": date(2026, 2, 1), "currency": "USD",
                       "currency_exponent": 2}  # fmt: skip
            amounts = {"subtotal": Decimal(total), "discount_amount": Decimal(0),
                       "adjustment_amount": Decimal(0), "total": Decimal(total)}  # fmt: skip
            _insert(con, "marts.invoices", invoice | amounts | {"status": "open"})
            line = {"line_id": f"{sub}/fee", "line_order": 1, "line_type": "fixed_fee",
                    "amount": Decimal(lines_sum), "invoice_status": "open"}  # fmt: skip
            _insert(con, "marts.invoice_lines", {k: v for k, v in invoice.items()
                                                 if k != "invoice_id"} | line
                    | {"invoice_id": invoice["invoice_id"]})  # fmt: skip
        con.commit()
    finally:
        con.close()
    return config


def test_finalize_and_collect_each_leave_a_span_with_their_counts(
    tmp_path: Path, spans: InMemorySpanExporter, stripe_server: LocalStripe
) -> None:
    config = _warehouse(tmp_path)

    result = finalize(config, AS_OF, grace_days=3)
    assert len(result.finalized) == 2 and len(result.blocked) == 1
    span = _only(spans, "finalize invoices")
    assert dict(span.attributes or {}) == {
        "as_of": "2026-02-04", "grace_days": 3, "finalized": 2, "blocked": 1,
        "already_finalized": 0, "outcome": "blocked",
    }  # fmt: skip
    assert span.status.status_code is StatusCode.UNSET  # a gate that held, not an error

    settings = PaymentSettings(overrides={"cus_declined": DECLINED_CARD})
    collected = collect(config, gateway_for(stripe_server), NOW, settings)
    assert (collected.charged, collected.succeeded, collected.failed) == (2, 1, 1)
    run = _only(spans, "payments collect")
    attributes = dict(run.attributes or {})
    assert {k: attributes[k] for k in ("as_of", "charged", "succeeded", "failed", "outcome")} == {
        "as_of": "2026-02-05",
        "charged": 2,
        "succeeded": 1,
        "failed": 1,
        "outcome": "ok",
    }
    assert attributes["stripe_unreachable"] == 0 and attributes["first_attempts"] is True
    reconcile = _only(spans, "payments reconcile")
    assert reconcile.parent is not None and reconcile.parent.span_id == run.context.span_id
    assert reconcile.attributes and reconcile.attributes["reconciled"] == 0


def test_a_failing_run_records_its_error_on_the_span(
    tmp_path: Path, spans: InMemorySpanExporter
) -> None:
    config = resolve(f"duckdb:///{tmp_path / 'empty.duckdb'}")
    with pytest.raises(UsageError, match="run `valueverse build` first"):
        finalize(config, AS_OF)
    span = _only(spans, "finalize invoices")
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes and span.attributes["outcome"] == "error"
    assert span.attributes["error.type"] == "UsageError"
    assert [e.name for e in span.events] == ["exception"]


class _Pushgateway(BaseHTTPRequestHandler):
    received: list[tuple[str, str, str]] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        self.received.append((self.command, self.path, body))
        self.send_response(202)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def pushgateway(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, str, str]]]:
    """A Pushgateway-shaped HTTP endpoint on loopback that keeps what it is sent."""
    server = HTTPServer(("127.0.0.1", 0), _Pushgateway)
    _Pushgateway.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv(job_telemetry.PUSHGATEWAY_ENV, f"http://127.0.0.1:{server.server_port}")
    try:
        yield _Pushgateway.received
    finally:
        server.shutdown()
        server.server_close()


def test_each_run_pushes_its_figures_when_a_pushgateway_is_set(
    tmp_path: Path, spans: InMemorySpanExporter, pushgateway: list[tuple[str, str, str]]
) -> None:
    finalize(_warehouse(tmp_path), AS_OF, grace_days=3)
    [(method, path, body)] = pushgateway
    assert (method, path) == ("POST", "/metrics/job/valueverse/task/finalize_invoices")
    assert 'valueverse_job_items{item="finalized"} 2.0' in body
    assert 'valueverse_job_items{item="blocked"} 1.0' in body
    assert "valueverse_job_last_success_timestamp_seconds " in body
    assert "valueverse_job_last_failure_timestamp_seconds" not in body

    with pytest.raises(UsageError):
        finalize(resolve(f"duckdb:///{tmp_path / 'empty.duckdb'}"), AS_OF)
    assert "valueverse_job_last_failure_timestamp_seconds " in pushgateway[-1][2]
    assert "valueverse_job_last_success_timestamp_seconds" not in pushgateway[-1][2]


def test_an_unreachable_pushgateway_never_fails_the_job(
    tmp_path: Path, spans: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(job_telemetry.PUSHGATEWAY_ENV, "http://user:secret@127.0.0.1:9")
    result = finalize(_warehouse(tmp_path), AS_OF, grace_days=3)
    assert len(result.finalized) == 2
    assert _only(spans, "finalize invoices").attributes["outcome"] == "blocked"  # type: ignore[index]


def test_a_failed_dbt_build_is_an_error_span_with_its_node_counts(
    spans: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """dbt itself is not run here (the scenario tests do, many times): the build's result is
    what dbt returns for one failing test and the model it stopped."""
    statuses = ["success", "pass", "fail", "skipped"]
    dbt_result = SimpleNamespace(results=[SimpleNamespace(status=s) for s in statuses])
    counts = dbt_runner._node_counts(dbt_result)
    assert counts == {"nodes": 4, "nodes_failed": 1, "nodes_skipped": 1}
    monkeypatch.setattr(dbt_runner, "_build", lambda config, as_of, full: (1, counts))

    config = resolve(f"duckdb:///{tmp_path / 'w.duckdb'}")
    assert dbt_runner.build(config, AS_OF) == 1
    span = _only(spans, "dbt build")
    assert span.status.status_code is StatusCode.ERROR
    assert dict(span.attributes or {}) == {
        "as_of": "2026-02-04", "full": False, "nodes": 4, "nodes_failed": 1, "nodes_skipped": 1,
        "outcome": "failed",
    }  # fmt: skip
