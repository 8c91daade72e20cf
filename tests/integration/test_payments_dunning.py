"""The dunning schedule, walked with a controllable clock against a real localstripe server."""

from __future__ import annotations

from datetime import datetime, timedelta

from ingestion.demo.localstripe import LocalStripe
from ingestion.payments.collection import collect
from ingestion.payments.settings import PaymentSettings
from ingestion.warehouse import resolve
from tests.integration.payments_support import (
    add_finalized_invoice,
    gateway_for,
    intents_for,
    localstripe_server_fixture,  # noqa: F401 (fixture)
    rows,
    stripe_server_fixture,  # noqa: F401 (fixture)
    unique,
)

T0 = datetime(2026, 2, 5, 6, 0)


def _status(config, invoice_id: str) -> str:
    return dict(
        rows(config, "SELECT invoice_id, payment_status FROM billing.invoice_payment_status")
    )[invoice_id]


def _events(config, invoice_id: str) -> list[tuple]:
    found = rows(
        config,
        "SELECT invoice_id, recorded_at, event_type, attempt_no, due_at"
        " FROM billing.dunning_events ORDER BY recorded_at, attempt_no, event_type",
    )
    return [r[1:] for r in found if r[0] == invoice_id]


def test_schedule_walks_to_uncollectible(warehouse_url: str, stripe_server: LocalStripe) -> None:
    config = resolve(warehouse_url)
    customer = unique("cus")
    invoice_id = add_finalized_invoice(config, customer, "25.00")
    settings = PaymentSettings(overrides={customer: "card:4000000000000341"})
    gateway = gateway_for(stripe_server)

    def run(days: float) -> int:
        return collect(config, gateway, T0 + timedelta(days=days), settings).charged

    assert run(0) == 1  # first attempt fails
    assert run(1) == 0 and run(2.99) == 0  # retry 1 not due before day 3
    assert run(3) == 1  # retry 1 (attempt 2), a new PaymentIntent
    assert run(3.5) == 0
    assert run(5) == 1  # retry 2
    assert _status(config, invoice_id) == "failed"
    assert run(7) == 1  # retry 3, the last one: fails, then uncollectible
    assert _status(config, invoice_id) == "uncollectible"
    assert run(30) == 0  # nothing more, ever

    intents = intents_for(stripe_server, invoice_id)
    assert [i["metadata"]["attempt_no"] for i in intents] == ["1", "2", "3", "4"]
    assert len({i["id"] for i in intents}) == 4
    day = timedelta(days=1)
    assert _events(config, invoice_id) == [
        (T0, "payment_failed", 1, None),
        (T0, "retry_scheduled", 2, T0 + 3 * day),
        (T0 + 3 * day, "payment_failed", 2, None),
        (T0 + 3 * day, "retry_attempted", 2, None),
        (T0 + 3 * day, "retry_scheduled", 3, T0 + 5 * day),
        (T0 + 5 * day, "payment_failed", 3, None),
        (T0 + 5 * day, "retry_attempted", 3, None),
        (T0 + 5 * day, "retry_scheduled", 4, T0 + 7 * day),
        (T0 + 7 * day, "payment_failed", 4, None),
        (T0 + 7 * day, "retry_attempted", 4, None),
        (T0 + 7 * day, "uncollectible", 4, None),
    ]


def test_retry_stops_as_soon_as_paid(duckdb_url: str, stripe_server: LocalStripe) -> None:
    """The customer fixes their card between attempts: the retry succeeds, dunning stops."""
    config = resolve(duckdb_url)
    customer = unique("cus")
    invoice_id = add_finalized_invoice(config, customer, "8.00")
    gateway = gateway_for(stripe_server)
    failing = PaymentSettings(overrides={customer: "card:4000000000000341"}, schedule_days=(2, 4))
    collect(config, gateway, T0, failing)
    fixed = PaymentSettings(overrides={customer: "pm_card_visa"}, schedule_days=(2, 4))
    assert collect(config, gateway, T0 + timedelta(days=2), fixed).charged == 1
    assert _status(config, invoice_id) == "paid"
    assert collect(config, gateway, T0 + timedelta(days=4), fixed).charged == 0
    assert len(intents_for(stripe_server, invoice_id)) == 2
    steps = [(e[1], e[2]) for e in _events(config, invoice_id)]
    assert ("retry_attempted", 2) in steps and ("paid", 2) in steps
    assert ("uncollectible", 2) not in steps and ("retry_scheduled", 3) not in steps


def test_dunning_job_makes_retries_only(duckdb_url: str, stripe_server: LocalStripe) -> None:
    config = resolve(duckdb_url)
    failing_customer, new_customer = unique("cus"), unique("cus")
    failing = add_finalized_invoice(config, failing_customer, "9.00")
    settings = PaymentSettings(overrides={failing_customer: "card:4000000000000341"})
    gateway = gateway_for(stripe_server)
    collect(config, gateway, T0, settings)
    fresh = add_finalized_invoice(config, new_customer, "4.00")
    retried = collect(config, gateway, T0 + timedelta(days=3), settings, first_attempts=False)
    assert retried.charged == 1 and retried.retries == 1
    assert len(intents_for(stripe_server, failing)) == 2
    assert intents_for(stripe_server, fresh) == []  # left to the collection job
