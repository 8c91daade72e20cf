"""Payment notifications come from the attempt states themselves (collection, polling, dunning)
against a real localstripe server, on both backends: one per state and attempt, none twice,
none for a state change that was rolled back."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from ingestion.demo.localstripe import LocalStripe
from ingestion.payments import attempts, notices
from ingestion.payments.collection import collect
from ingestion.payments.gateway import SUCCEEDED, ChargeResult
from ingestion.payments.settings import PaymentSettings
from ingestion.payments.store import PaymentsDb
from ingestion.warehouse import resolve
from tests.conftest import query
from tests.integration.notifications_support import notifications, of_type
from tests.integration.payments_support import (
    add_finalized_invoice,
    gateway_for,
    localstripe_server_fixture,  # noqa: F401 (fixture)
    stripe_server_fixture,  # noqa: F401 (fixture)
    unique,
)

T0 = datetime(2026, 2, 5, 6, 0)
DECLINED, THREE_DS, VISA = "card:4000000000000341", "card:4000002500003155", "pm_card_visa"


def test_every_payment_state_notifies_once(warehouse_url: str, stripe_server: LocalStripe) -> None:
    config = resolve(warehouse_url)
    paying, failing, waiting = unique("cus"), unique("cus"), unique("cus")
    paid = add_finalized_invoice(config, paying, "12.50")
    written_off = add_finalized_invoice(config, failing, "7.00", "JPY", 0)
    held = add_finalized_invoice(config, waiting, "3.00", "EUR")
    settings = PaymentSettings(overrides={paying: VISA, failing: DECLINED, waiting: THREE_DS},
                               schedule_days=(1,))  # fmt: skip
    gateway = gateway_for(stripe_server)

    collect(config, gateway, T0, settings)
    collect(config, gateway, T0, settings)  # the same run again: nothing new
    first = notifications(warehouse_url)
    assert sorted(d["type"] for d in first) == [
        "dunning.retry_scheduled", "payment.failed", "payment.requires_action",
        "payment.succeeded"]  # fmt: skip
    [success] = of_type(first, "payment.succeeded")
    assert (success["invoice_id"], success["customer_id"], success["amount"],
            success["amount_received"], success["currency"], success["source"]) == (
        paid, paying, "12.50", "12.50", "USD", "collect")  # fmt: skip
    assert success["invoice_number"].startswith("VV-") and success["period_start"] == "2026-01-01"
    [failed] = of_type(first, "payment.failed")
    assert (failed["invoice_id"], failed["amount"], failed["attempt_no"]) == (written_off, "7", 1)
    assert failed["decline_code"]  # why, for the customer
    [retry] = of_type(first, "dunning.retry_scheduled")
    assert (retry["retry_attempt_no"], retry["due_at"]) == (2, "2026-02-06T06:00:00+00:00")
    assert of_type(first, "payment.requires_action")[0]["invoice_id"] == held
    assert {d["created_at"] for d in first} == {"2026-02-05T06:00:00.000000Z"}  # the run's clock

    # the retry fails too, the last one of the schedule: failed again, then uncollectible
    collect(config, gateway, T0 + timedelta(days=1), settings)
    collect(config, gateway, T0 + timedelta(days=2), settings)
    later = notifications(warehouse_url)[len(first) :]
    assert sorted(d["type"] for d in later) == ["invoice.uncollectible", "payment.failed"]
    [gone] = of_type(later, "invoice.uncollectible")
    assert (gone["invoice_id"], gone["attempts"], gone["total"]) == (
        written_off,
        2,
        "7",
    )  # JPY: no decimals

    # the same state recorded by a second path (a webhook racing the poll) notifies once
    count = len(notifications(warehouse_url))
    with PaymentsDb(config) as db:
        attempt = _attempt(db, paid)
        again = ChargeResult(SUCCEEDED, success["payment_intent_id"], 1250, 1250, "usd")
        attempts.record_state(db, attempt, 3, again, "webhook", T0, settings.schedule_days)
    assert len(notifications(warehouse_url)) == count
    assert query(warehouse_url, "SELECT count(*) FROM billing.payment_attempts"
                 f" WHERE invoice_id = '{paid}'") == [(3,)]  # fmt: skip


def test_a_state_change_that_fails_leaves_no_notification(
    warehouse_url: str, stripe_server: LocalStripe, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = resolve(warehouse_url)
    customer = unique("cus")
    invoice_id = add_finalized_invoice(config, customer, "5.00")
    settings = PaymentSettings(overrides={customer: DECLINED})

    def broken(*_args: object) -> None:
        raise RuntimeError("the dunning step could not be written")

    monkeypatch.setattr(notices, "dunning_step", broken)
    with pytest.raises(RuntimeError, match="dunning step"):
        collect(config, gateway_for(stripe_server), T0, settings)
    assert notifications(warehouse_url) == []
    states = query(warehouse_url, "SELECT status FROM billing.payment_attempts"
                   f" WHERE invoice_id = '{invoice_id}'")  # fmt: skip
    assert states == [("pending",)]  # the decline was not recorded either: reconciled next run


def _attempt(db: PaymentsDb, invoice_id: str) -> attempts.Attempt:
    row = db.rows(f"SELECT {attempts.ATTEMPT_COLUMNS} FROM billing.payment_attempts"
                  " WHERE invoice_id = %s AND state_no = 1", [invoice_id])  # fmt: skip
    return attempts.Attempt(*row[0])
