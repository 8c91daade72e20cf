"""The notifications outbox (ingestion/billing/outbox.py) on both backends: a change recorded
twice is one row under one id, the payload is exact text, and on PostgreSQL the row is as
immutable as the rest of the billing store."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal

import psycopg
import pytest

from ingestion.billing.invoice_store import ensure_store
from ingestion.billing.outbox import notification_id, record
from ingestion.warehouse import resolve, transaction
from tests.conftest import query


def test_a_change_recorded_twice_is_one_notification_with_exact_values(warehouse_url: str) -> None:
    config = resolve(warehouse_url)
    ensure_store(config)
    at = datetime(2026, 2, 4, 10, 30, tzinfo=UTC)
    data = {
        "invoice_number": "VV-000001",
        "total": Decimal("12.3400"),
        "period_start": date(2026, 1, 1),
    }
    for _ in range(2):
        with transaction(config) as db:
            ident = record(db, "invoice.finalized", "VV-000001", data, customer_id="c1",
                           subject="VV-000001", at=at)  # fmt: skip
    rows = query(
        warehouse_url, "SELECT notification_id, dedup_key, payload FROM billing.notifications"
    )
    assert len(rows) == 1
    assert rows[0][0] == ident == notification_id("invoice.finalized:VV-000001")
    document = json.loads(rows[0][2])
    assert document == {
        "id": ident,
        "type": "invoice.finalized",
        "version": 1,
        "created_at": "2026-02-04T10:30:00.000000Z",
        "data": {"invoice_number": "VV-000001", "total": "12.3400", "period_start": "2026-01-01"},
    }


def test_a_rolled_back_change_leaves_no_notification(warehouse_url: str) -> None:
    config = resolve(warehouse_url)
    ensure_store(config)
    with pytest.raises(RuntimeError), transaction(config) as db:
        record(db, "payment.failed", "inv#1/2", {"attempt_id": "inv#1"})
        raise RuntimeError("the state change failed after the notification was written")
    assert query(warehouse_url, "SELECT count(*) FROM billing.notifications") == [(0,)]


def test_unknown_types_and_floats_are_refused(duckdb_url: str) -> None:
    config = resolve(duckdb_url)
    ensure_store(config)
    with transaction(config) as db:
        with pytest.raises(ValueError, match="unknown notification type"):
            record(db, "invoice.paid", "x", {})
        with pytest.raises(TypeError, match="cannot carry float"):
            record(db, "invoice.finalized", "x", {"total": 1.5})


def test_notifications_cannot_be_rewritten_on_postgres(pg_url: str) -> None:
    config = resolve(pg_url)
    ensure_store(config)
    with transaction(config) as db:
        record(db, "invoice.finalized", "VV-000009", {"invoice_number": "VV-000009"})
    with psycopg.connect(pg_url, autocommit=True) as conn:
        for statement in ("UPDATE billing.notifications SET payload = '{}'",
                          "DELETE FROM billing.notifications",
                          "TRUNCATE billing.notifications"):  # fmt: skip
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
                conn.execute(statement)
