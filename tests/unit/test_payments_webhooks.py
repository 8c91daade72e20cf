"""Stripe webhook signature verification: a valid signed payload passes; a wrong signature,
a wrong secret, a stale timestamp or a tampered body is rejected."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest

from ingestion.payments.webhooks import WebhookRejected, verify_event

SECRET = "whsec_test_valueverse"


def _payload(status: str = "succeeded") -> bytes:
    event = {
        "id": "evt_1",
        "object": "event",
        "type": f"payment_intent.{status}",
        "data": {
            "object": {
                "id": "pi_1",
                "object": "payment_intent",
                "status": status,
                "amount": 4950,
                "amount_received": 4950,
                "currency": "usd",
                "metadata": {"invoice_id": "sub_a/2026-01-01", "attempt_no": "1"},
            }
        },
    }
    return json.dumps(event).encode()


def _sign(payload: bytes, secret: str = SECRET, at: int | None = None) -> str:
    at = int(time.time()) if at is None else at
    mac = hmac.new(secret.encode(), f"{at}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={at},v1={mac}"


def test_valid_signature_gives_the_event() -> None:
    payload = _payload()
    event = verify_event(payload, _sign(payload), SECRET)
    assert (event.event_id, event.type) == ("evt_1", "payment_intent.succeeded")
    assert event.charge is not None
    assert (event.charge.status, event.charge.intent_id, event.charge.amount_received_minor) == (
        "succeeded",
        "pi_1",
        4950,
    )
    assert event.charge.metadata["attempt_no"] == "1"


@pytest.mark.parametrize(
    "header",
    [
        pytest.param(lambda p: _sign(p, secret="whsec_someone_else"), id="wrong-secret"),
        pytest.param(lambda p: _sign(p).replace("v1=", "v1=00"), id="forged-signature"),
        pytest.param(lambda p: _sign(p, at=int(time.time()) - 3600), id="stale-timestamp"),
        pytest.param(lambda p: _sign(_payload("requires_action")), id="tampered-body"),
        pytest.param(lambda p: "", id="no-signature"),
    ],
)
def test_forged_requests_are_rejected(header) -> None:
    payload = _payload()
    with pytest.raises(WebhookRejected):
        verify_event(payload, header(payload), SECRET)


def test_no_secret_configured_rejects_everything() -> None:
    payload = _payload()
    with pytest.raises(WebhookRejected, match="STRIPE_WEBHOOK_SECRET"):
        verify_event(payload, _sign(payload), "")
