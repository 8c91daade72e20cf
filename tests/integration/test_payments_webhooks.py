"""Webhooks end to end: localstripe signs and delivers `payment_intent.*` events to a real HTTP
endpoint; the signature verifies with the shared secret, a forged copy does not, and applying
the event records the attempt's new state once (a replay changes nothing)."""

from __future__ import annotations

import http.server
import threading
import time
import urllib.parse
import urllib.request
from datetime import datetime

import pytest

from ingestion.demo.localstripe import LocalStripe
from ingestion.payments import webhooks
from ingestion.payments.collection import collect
from ingestion.payments.gateway import ChargeResult
from ingestion.payments.settings import PaymentSettings
from ingestion.payments.store import PaymentsDb
from ingestion.payments.webhooks import WebhookEvent, WebhookRejected, apply_event, verify_event
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

SECRET = "whsec_valueverse_test"


class _Receiver(http.server.BaseHTTPRequestHandler):
    received: list[tuple[bytes, str]] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((body, self.headers.get("Stripe-Signature", "")))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_localstripe_signed_event_verifies_and_applies_once(
    duckdb_url: str, stripe_server: LocalStripe
) -> None:
    receiver = http.server.HTTPServer(("127.0.0.1", 0), _Receiver)
    _Receiver.received = []
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    try:
        form = urllib.parse.urlencode({"url": f"http://127.0.0.1:{receiver.server_port}/hook",
                                       "secret": SECRET}).encode()  # fmt: skip
        hook_id = unique("hook")
        urllib.request.urlopen(f"{stripe_server.base}/_config/webhooks/{hook_id}", form).close()

        config, settings = resolve(duckdb_url), PaymentSettings()
        invoice_id, _ = _pending_attempt(duckdb_url, stripe_server)
        [intent] = intents_for(stripe_server, invoice_id)
        auth = urllib.parse.urlencode({"client_secret": intent["client_secret"],
                                       "success": "true", "key": "pk_test_x"}).encode()  # fmt: skip
        url = f"{stripe_server.base}/v1/payment_intents/{intent['id']}/_authenticate"
        urllib.request.urlopen(url, auth).close()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not any(
            b'"payment_intent.succeeded"' in body for body, _ in _Receiver.received
        ):
            time.sleep(0.2)
    finally:
        receiver.shutdown()
    [(body, signature)] = [
        (b, s) for b, s in _Receiver.received if b'"payment_intent.succeeded"' in b
    ]
    event = verify_event(body, signature, SECRET)
    assert event.charge is not None and event.charge.status == "succeeded"
    with pytest.raises(WebhookRejected):
        verify_event(body.replace(b"2000", b"1"), signature, SECRET)  # tampered amount
    with pytest.raises(WebhookRejected):
        verify_event(body, signature, "whsec_wrong")

    with PaymentsDb(config) as db:
        assert apply_event(db, event, datetime(2026, 2, 5, 1), settings)
        assert not apply_event(db, event, datetime(2026, 2, 5, 2), settings)  # replayed
    assert rows(
        config, "SELECT state_no, status, source FROM billing.payment_attempts ORDER BY state_no"
    ) == [  # fmt: skip
        (1, "pending", "collect"),
        (2, "requires_action", "collect"),
        (3, "succeeded", "webhook"),
    ]
    assert rows(config, "SELECT payment_status FROM billing.invoice_payment_status") == [("paid",)]


def _event(event_id: str, status: str, intent: str, created: int, invoice_id: str) -> WebhookEvent:
    """A verified event as verify_event gives it (the signature has its own tests)."""
    charge = ChargeResult(status, intent_id=intent, amount_minor=2000, amount_received_minor=(
        2000 if status == "succeeded" else None), currency="usd",
        metadata={"invoice_id": invoice_id, "attempt_no": "1"})  # fmt: skip
    when = datetime(2026, 2, 5, 6, 0, created)
    return WebhookEvent(event_id, f"payment_intent.{status}", charge, when)


def _pending_attempt(url: str, stripe_server: LocalStripe) -> tuple[str, str]:
    """An invoice whose first attempt waits for the customer (3-D Secure): (invoice, intent)."""
    config = resolve(url)
    customer = unique("cus")
    invoice_id = add_finalized_invoice(config, customer, "20.00")
    settings = PaymentSettings(overrides={customer: "card:4000002500003155"})
    collect(config, gateway_for(stripe_server), datetime(2026, 2, 5), settings)
    [intent] = intents_for(stripe_server, invoice_id)
    return invoice_id, intent["id"]


def _states(url: str, invoice_id: str) -> list[tuple]:
    return rows(resolve(url), "SELECT state_no, status, source FROM billing.payment_attempts"
                f" WHERE invoice_id = '{invoice_id}' ORDER BY state_no")  # fmt: skip


def test_late_or_foreign_webhooks_never_undo_a_payment(
    warehouse_url: str, stripe_server: LocalStripe
) -> None:
    """A stale payment_failed after succeeded used to move the invoice back to failed (and
    dunning planned a second charge); redeliveries and other intents were applied too."""
    invoice_id, intent = _pending_attempt(warehouse_url, stripe_server)
    config, settings = resolve(warehouse_url), PaymentSettings()
    at = datetime(2026, 2, 5, 7)
    with PaymentsDb(config) as db:
        assert apply_event(db, _event("evt_s", "succeeded", intent, 30, invoice_id), at, settings)
        for event in (
            _event("evt_s", "succeeded", intent, 30, invoice_id),  # redelivered
            _event("evt_f", "failed", intent, 10, invoice_id),  # older, arrives later
            _event("evt_f2", "failed", intent, 50, invoice_id),  # newer, but succeeded is final
            _event("evt_x", "failed", "pi_someone_else", 55, invoice_id),
        ):
            assert not apply_event(db, event, at, settings), event.event_id
    assert _states(warehouse_url, invoice_id) == [
        (1, "pending", "collect"),
        (2, "requires_action", "collect"),
        (3, "succeeded", "webhook"),
    ]
    outcomes = rows(config, "SELECT event_id, outcome FROM billing.webhook_events"
                    " ORDER BY event_id")  # fmt: skip
    assert outcomes == [("evt_f", "final"), ("evt_f2", "final"), ("evt_s", "applied"),
                        ("evt_x", "final")]  # fmt: skip
    status = rows(config, "SELECT payment_status FROM billing.invoice_payment_status"
                  f" WHERE invoice_id = '{invoice_id}'")  # fmt: skip
    assert status == [("paid",)]
    later = collect(config, gateway_for(stripe_server), datetime(2026, 2, 20), settings)
    assert later.charged == 0  # nothing to dun


def test_an_older_event_never_overwrites_a_newer_one(
    duckdb_url: str, stripe_server: LocalStripe
) -> None:
    invoice_id, intent = _pending_attempt(duckdb_url, stripe_server)
    config, settings = resolve(duckdb_url), PaymentSettings()
    at = datetime(2026, 2, 5, 7)
    with PaymentsDb(config) as db:
        assert apply_event(db, _event("evt_2", "failed", intent, 20, invoice_id), at, settings)
        stale = _event("evt_1", "requires_action", intent, 10, invoice_id)
        assert not apply_event(db, stale, at, settings)
        other = _event("evt_3", "succeeded", "pi_other", 30, invoice_id)
        assert not apply_event(db, other, at, settings)
    assert [s[1] for s in _states(duckdb_url, invoice_id)] == ["pending", "requires_action",
                                                                "failed"]  # fmt: skip
    outcomes = rows(config, "SELECT event_id, outcome FROM billing.webhook_events"
                    " ORDER BY event_id")  # fmt: skip
    assert outcomes == [("evt_1", "stale"), ("evt_2", "applied"), ("evt_3", "other_intent")]


def test_a_webhook_racing_collection_ends_in_one_state(
    warehouse_url: str, stripe_server: LocalStripe, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Collection (polling) appends the attempt's next state between the webhook's read and
    its write: that used to be a UniqueViolation traceback."""
    invoice_id, intent = _pending_attempt(warehouse_url, stripe_server)
    config, settings = resolve(warehouse_url), PaymentSettings()
    real = webhooks.record_state
    raced: list[int] = []

    def collection_gets_there_first(db, attempt, state_no, result, *args):  # type: ignore[no-untyped-def]
        if not raced:
            raced.append(state_no)
            real(db, attempt, state_no, result, "poll", *args[1:])
        real(db, attempt, state_no, result, *args)

    monkeypatch.setattr(webhooks, "record_state", collection_gets_there_first)
    with PaymentsDb(config) as db:
        event = _event("evt_race", "succeeded", intent, 40, invoice_id)
        assert not apply_event(db, event, datetime(2026, 2, 5, 7), settings)
    assert _states(warehouse_url, invoice_id) == [
        (1, "pending", "collect"),
        (2, "requires_action", "collect"),
        (3, "succeeded", "poll"),
    ]
    assert rows(config, "SELECT outcome FROM billing.webhook_events") == [("final",)]
