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
from ingestion.payments.collection import collect
from ingestion.payments.settings import PaymentSettings
from ingestion.payments.store import PaymentsDb
from ingestion.payments.webhooks import WebhookRejected, apply_event, verify_event
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

        config = resolve(duckdb_url)
        customer = unique("cus")
        invoice_id = add_finalized_invoice(config, customer, "20.00")
        settings = PaymentSettings(overrides={customer: "card:4000002500003155"})
        collect(config, gateway_for(stripe_server), datetime(2026, 2, 5), settings)
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
