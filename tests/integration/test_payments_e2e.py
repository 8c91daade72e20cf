"""The whole real path, through the CLI on both backends: catalog load, events load, build,
invoices finalize, payments collect (real localstripe), build again -> the finance marts show
what Stripe collected, what is still owed and how old it is; the dbt reconciliation test with
Stripe's amounts passes as part of the build."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from ingestion.demo.localstripe import LocalStripe
from tests.conftest import SCENARIOS, query, run_step
from tests.integration.payments_support import (
    TEST_KEY,
    intents_for,
    localstripe_server_fixture,  # noqa: F401 (fixture)
    stripe_server_fixture,  # noqa: F401 (fixture)
)

SCENARIO = SCENARIOS / "16_late_usage_adjustments"


def _ok(url: str, tmp: Path, *args: str):
    result = run_step(url, *args, cwd=tmp)
    assert result.returncode == 0, (args, result.stdout[-2000:], result.stderr[-3000:])
    return result


def test_collect_then_finance_marts(
    built_warehouse_url: str, tmp_path: Path, stripe_server: LocalStripe, monkeypatch
) -> None:
    url, tmp = built_warehouse_url, tmp_path
    methods = tmp / "payment_methods.yml"
    methods.write_text("cus_b: card:4000000000000341\n")  # cus_b's card is declined
    monkeypatch.setenv("STRIPE_API_KEY", TEST_KEY)
    monkeypatch.setenv("STRIPE_API_BASE", stripe_server.base)
    monkeypatch.setenv("VALUEVERSE_STRIPE_PAYMENT_METHODS_FILE", str(methods))

    _ok(url, tmp, "catalog", "load", str(SCENARIO / "catalog.yml"))
    _ok(url, tmp, "events", "load", str(SCENARIO / "events.jsonl"))
    _ok(url, tmp, "build", "--as-of", "2026-02-04")
    _ok(url, tmp, "invoices", "finalize", "--as-of", "2026-02-04")
    collected = _ok(url, tmp, "payments", "collect", "--now", "2026-02-05T06:00:00Z")
    assert collected.last_json["paid"] == 1 and collected.last_json["failed"] == 1
    [intent] = intents_for(stripe_server, "sub_a/2026-01-01")
    assert (intent["amount"], intent["currency"], intent["status"]) == (4950, "usd", "succeeded")
    assert intent["metadata"]["invoice_number"] == "VV-000001"

    _ok(url, tmp, "build", "--as-of", "2026-03-10")
    payments = query(
        url,
        "SELECT invoice_number, customer_id, currency, amount_due, amount_paid, payment_status,"
        " attempts FROM marts.payments ORDER BY invoice_number",
    )
    assert payments == [
        ("VV-000001", "cus_a", "USD", Decimal("49.5000"), Decimal("49.5000"), "paid", 1),
        ("VV-000002", "cus_b", "USD", Decimal("6.0000"), Decimal("0.0000"), "failed", 1),
    ]
    receivable = query(
        url,
        "SELECT invoice_number, open_balance, days_outstanding, aging_bucket"
        " FROM marts.accounts_receivable",
    )
    assert receivable == [("VV-000002", Decimal("6.0000"), 34, "31-60")]  # issued 2026-02-04
    by_customer = query(
        url,
        "SELECT customer_id, currency, open_balance, open_31_60"
        " FROM marts.accounts_receivable_by_customer",
    )
    assert by_customer == [("cus_b", "USD", Decimal("6.0000"), Decimal("6.0000"))]
    rate = query(
        url,
        "SELECT issue_month, currency, amount_due, amount_paid, amount_open, collection_rate"
        " FROM marts.collection_rate",
    )
    assert [tuple(str(v) for v in row) for row in rate] == [
        ("2026-02-01", "USD", "55.5000", "49.5000", "6.0000", "0.891891891892")
    ]
