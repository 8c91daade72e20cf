"""Payment collection against a real localstripe server, on DuckDB and PostgreSQL.

Finalized invoices are written straight into the store here (cheap); the whole CLI path is in
test_payments_e2e.py. Every test empties the server first and uses its own customer and
invoice ids, so nothing collides.
"""

from __future__ import annotations

import urllib.parse
import urllib.request
from datetime import datetime

import psycopg
import pytest

from ingestion.demo.localstripe import LocalStripe
from ingestion.payments.collection import collect
from ingestion.payments.settings import PaymentSettings
from ingestion.warehouse import WarehouseError, resolve
from tests.integration.payments_support import (
    add_finalized_invoice,
    gateway_for,
    intents_for,
    localstripe_server_fixture,  # noqa: F401 (fixture)
    rows,
    stripe_server_fixture,  # noqa: F401 (fixture)
    unique,
)

NOW = datetime(2026, 2, 5, 6, 0)


def _status(config, invoice_id: str) -> str:
    found = rows(config, "SELECT invoice_id, payment_status FROM billing.invoice_payment_status")
    return dict(found).get(invoice_id, "open")


def _attempts(config, invoice_id: str) -> list[tuple]:
    return [
        r[1:]
        for r in rows(
            config,
            "SELECT invoice_id, attempt_no, state_no, status, amount_minor, amount_received_minor,"
            " decline_code FROM billing.payment_attempts ORDER BY attempt_no, state_no",
        )
        if r[0] == invoice_id
    ]


def test_success_exact_minor_units_and_rerun_charges_nothing(
    warehouse_url: str, stripe_server: LocalStripe
) -> None:
    config = resolve(warehouse_url)
    customer = unique("cus")
    usd = add_finalized_invoice(config, customer, "49.5000", "USD", 2)
    jpy = add_finalized_invoice(config, customer, "12345", "JPY", 0)
    kwd = add_finalized_invoice(config, customer, "7.125", "KWD", 3)
    zero = add_finalized_invoice(config, customer, "0", "USD", 2)
    credit = add_finalized_invoice(config, customer, "-3.00", "USD", 2)
    gateway = gateway_for(stripe_server)

    first = collect(config, gateway, NOW, PaymentSettings())
    assert first.summary()["paid"] == 3
    assert first.charged == 3 and first.nothing_due == 2
    # what Stripe received, in minor units: JPY has 0 decimals, KWD 3
    expected = {usd: (4950, "usd"), jpy: (12345, "jpy"), kwd: (7125, "kwd")}
    for invoice_id, (amount, currency) in expected.items():
        [intent] = intents_for(stripe_server, invoice_id)
        assert (intent["amount"], intent["currency"], intent["status"]) == (
            amount, currency, "succeeded",
        )  # fmt: skip
        assert intent["metadata"]["attempt_no"] == "1"
        assert _attempts(config, invoice_id) == [
            (1, 1, "pending", amount, None, None),
            (1, 2, "succeeded", amount, amount, None),
        ]
        assert _status(config, invoice_id) == "paid"
    # zero and negative totals: nothing due, no attempt, nothing sent to Stripe
    for invoice_id in (zero, credit):
        assert intents_for(stripe_server, invoice_id) == []
        assert _attempts(config, invoice_id) == []

    again = collect(config, gateway, NOW, PaymentSettings())
    assert again.charged == 0
    for invoice_id in expected:
        assert len(intents_for(stripe_server, invoice_id)) == 1
    # one Stripe customer, reused for all three invoices
    assert len(rows(config, "SELECT * FROM billing.stripe_customers")) == 1


def test_decline_is_recorded_with_its_code(warehouse_url: str, stripe_server: LocalStripe) -> None:
    config = resolve(warehouse_url)
    customer = unique("cus")
    invoice_id = add_finalized_invoice(config, customer, "10.00")
    settings = PaymentSettings(overrides={customer: "card:4000000000000341"})
    result = collect(config, gateway_for(stripe_server), NOW, settings)
    assert result.summary()["failed"] == 1
    assert _attempts(config, invoice_id) == [
        (1, 1, "pending", 1000, None, None),
        (1, 2, "failed", 1000, None, "card_declined"),
    ]
    [intent] = intents_for(stripe_server, invoice_id)
    assert intent["status"] == "requires_payment_method"  # Stripe's state after a decline
    recorded = rows(config, "SELECT stripe_payment_intent_id FROM billing.payment_attempts"
                    " WHERE state_no = 2")  # fmt: skip
    assert recorded == [(intent["id"],)]
    events = rows(config, "SELECT event_type, attempt_no, due_at FROM billing.dunning_events"
                  " ORDER BY event_type")  # fmt: skip
    assert events == [
        ("payment_failed", 1, None),
        ("retry_scheduled", 2, datetime(2026, 2, 8, 6, 0)),  # 3 days after the first failure
    ]


def test_card_refused_at_attach_is_a_failed_attempt(
    duckdb_url: str, stripe_server: LocalStripe
) -> None:
    config = resolve(duckdb_url)
    customer = unique("cus")
    invoice_id = add_finalized_invoice(config, customer, "10.00")
    settings = PaymentSettings(overrides={customer: "card:4000000000000002"})
    collect(config, gateway_for(stripe_server), NOW, settings)
    assert _attempts(config, invoice_id)[-1] == (1, 2, "failed", 1000, None, "card_declined")
    assert intents_for(stripe_server, invoice_id) == []  # nothing was charged


def test_one_customers_refused_request_does_not_stop_the_others(
    warehouse_url: str, stripe_server: LocalStripe
) -> None:
    """An invalid request for one customer (here a payment method Stripe does not know) used to
    escape after the attempt was committed pending: no one was charged, in that run or any
    later one (each reconcile hit the same error first)."""
    config = resolve(warehouse_url)
    broken, fine = unique("cus"), unique("cus")
    broken_invoice = add_finalized_invoice(config, broken, "10.00")  # charged first
    fine_invoice = add_finalized_invoice(config, fine, "20.00")
    settings = PaymentSettings(overrides={broken: "pm_does_not_exist"})
    first = collect(config, gateway_for(stripe_server), NOW, settings)
    assert (first.summary()["paid"], first.summary()["failed"]) == (1, 1)
    assert _status(config, fine_invoice) == "paid"
    failed = _attempts(config, broken_invoice)
    assert [row[:3] for row in failed] == [(1, 1, "pending"), (1, 2, "failed")]
    # Stripe's code when it gives one (localstripe does not), kept with its message
    assert failed[-1][-1] in ("resource_missing", "request_refused")
    reason = rows(config, "SELECT decline_message FROM billing.payment_attempts"
                  " WHERE status = 'failed'")  # fmt: skip
    assert reason == [("Stripe refused the request: Not Found",)]  # localstripe's words
    # the dunning schedule retries it like a decline, and nothing else moves
    later = collect(config, gateway_for(stripe_server), datetime(2026, 2, 8, 7, 0), settings)
    assert later.charged == 1 and later.reconcile and later.reconcile.still_open == 0
    assert [row[:3] for row in _attempts(config, broken_invoice)][-1] == (2, 2, "failed")
    assert len(intents_for(stripe_server, fine_invoice)) == 1


def test_requires_action_is_recorded_then_polled_until_paid(
    warehouse_url: str, stripe_server: LocalStripe
) -> None:
    """localstripe answers a 3-D Secure card (4000002500003155) confirmed off session with a
    PaymentIntent in `requires_action` (Stripe itself would decline with
    authentication_required; both are recorded as requires_action). No retry is made while the
    customer has to act; once they authenticate, within the action timeout (72 h by default,
    test_payments_action_timeout.py), the next run's poll records the success."""
    config = resolve(warehouse_url)
    customer = unique("cus")
    invoice_id = add_finalized_invoice(config, customer, "20.00", "EUR", 2)
    settings = PaymentSettings(overrides={customer: "card:4000002500003155"})
    gateway = gateway_for(stripe_server)
    assert collect(config, gateway, NOW, settings).summary()["requires_action"] == 1
    [intent] = intents_for(stripe_server, invoice_id)
    assert intent["status"] == "requires_action"
    assert _status(config, invoice_id) == "requires_action"

    # two days later, still waiting: no new PaymentIntent, no new state row
    collect(config, gateway, datetime(2026, 2, 7, 6), settings)
    assert len(intents_for(stripe_server, invoice_id)) == 1
    assert len(_attempts(config, invoice_id)) == 2

    # the customer authenticates (localstripe's stand-in for the 3-D Secure page)
    form = urllib.parse.urlencode({"client_secret": intent["client_secret"], "success": "true",
                                   "key": "pk_test_valueverse"}).encode()  # fmt: skip
    urllib.request.urlopen(
        f"{stripe_server.base}/v1/payment_intents/{intent['id']}/_authenticate", form, timeout=10
    ).close()
    result = collect(config, gateway, datetime(2026, 2, 8, 5), settings)  # 71 h after NOW
    assert result.summary()["paid"] == 1 and result.charged == 0
    assert _attempts(config, invoice_id)[-1] == (1, 3, "succeeded", 2000, 2000, None)
    assert len(intents_for(stripe_server, invoice_id)) == 1


@pytest.mark.postgres
def test_postgres_refuses_changes_to_payment_rows(pg_url: str, stripe_server: LocalStripe) -> None:
    config = resolve(pg_url)
    add_finalized_invoice(config, unique("cus"), "5.00")
    collect(config, gateway_for(stripe_server), NOW, PaymentSettings())
    for table in ("payment_attempts", "dunning_events", "stripe_customers"):
        for statement in (f"UPDATE billing.{table} SET recorded_at = recorded_at",
                          f"DELETE FROM billing.{table}", f"TRUNCATE billing.{table}"):  # fmt: skip
            with psycopg.connect(pg_url, autocommit=True) as conn:
                with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
                    conn.execute(statement)
    assert len(rows(config, "SELECT * FROM billing.payment_attempts")) == 2


@pytest.mark.postgres
def test_one_collector_at_a_time(pg_url: str, stripe_server: LocalStripe) -> None:
    config = resolve(pg_url)
    add_finalized_invoice(config, unique("cus"), "5.00")
    with psycopg.connect(pg_url, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(hashtext('valueverse.payments'))")
        with pytest.raises(WarehouseError, match="another payment collection"):
            collect(config, gateway_for(stripe_server), NOW, PaymentSettings())
    assert collect(config, gateway_for(stripe_server), NOW, PaymentSettings()).charged == 1


def test_demo_collection_starts_and_stops_its_own_server(duckdb_url: str, tmp_path) -> None:
    from ingestion.demo.payments import collect_for_demo

    config = resolve(duckdb_url)
    add_finalized_invoice(config, unique("cus"), "3.00", "USD", 2)
    add_finalized_invoice(config, unique("cus"), "300", "JPY", 0)
    counts = collect_for_demo(config, NOW, log=tmp_path / "localstripe.log")
    assert {k: counts[k] for k in ("paid", "failed", "pending", "requires_action")} == {
        "paid": 2, "failed": 0, "pending": 0, "requires_action": 0,
    }  # fmt: skip
    assert collect_for_demo(config, NOW)["charged"] == 0  # a new server, nothing to charge
