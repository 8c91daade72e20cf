"""Stripe webhook events: signature verification (pure) and recording what they say.

Payment status updates reach the warehouse by POLLING (reconcile.py, every collection run);
see the README's "Payments and dunning" for why. This module is the receiving side a deployment
can put behind an HTTP endpoint, and it is what makes that safe: an event counts only if
Stripe-Signature carries a valid HMAC-SHA256 of `<timestamp>.<payload>` under the endpoint's
secret (`STRIPE_WEBHOOK_SECRET`) and the timestamp is within the tolerance (5 minutes, against
replays). Verification is the SDK's own (`stripe.Webhook.construct_event`).

Applying an event is idempotent and append-only: a `payment_intent.*` event about an attempt
(metadata invoice_id + attempt_no) appends the attempt's new state only if it differs from the
newest one recorded; a replayed or duplicated delivery changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import stripe

from ingestion.payments.attempts import Attempt, record_state
from ingestion.payments.gateway import ChargeResult
from ingestion.payments.settings import PaymentSettings
from ingestion.payments.store import PaymentsDb
from ingestion.payments.stripe_gateway import intent_result

DEFAULT_TOLERANCE_SECONDS = 300


class WebhookRejected(ValueError):
    """Bad signature, stale timestamp or unreadable payload: answer HTTP 400, record nothing."""


@dataclass(frozen=True)
class WebhookEvent:
    event_id: str
    type: str
    charge: ChargeResult | None  # for payment_intent.* events


def verify_event(
    payload: bytes | str,
    signature_header: str,
    secret: str,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
) -> WebhookEvent:
    """The event in `payload` if Stripe signed it with `secret` recently; else WebhookRejected."""
    if not secret:
        raise WebhookRejected("STRIPE_WEBHOOK_SECRET is not set")
    try:
        event = stripe.Webhook.construct_event(payload, signature_header, secret, tolerance)
    except stripe.SignatureVerificationError as exc:
        raise WebhookRejected(f"signature rejected: {exc.user_message or exc}") from None
    except ValueError as exc:  # not JSON
        raise WebhookRejected(f"unreadable payload: {exc}") from None
    data: dict[str, Any] = event.to_dict()
    obj = (data.get("data") or {}).get("object") or {}
    charge = intent_result(obj) if obj.get("object") == "payment_intent" else None
    return WebhookEvent(str(data.get("id")), str(data.get("type")), charge)


def apply_event(
    db: PaymentsDb, event: WebhookEvent, now: datetime, settings: PaymentSettings
) -> bool:
    """Append the attempt state the event reports; False when it changes nothing (unknown
    attempt, same state as recorded, not a PaymentIntent event)."""
    charge = event.charge
    if charge is None or "invoice_id" not in charge.metadata:
        return False
    attempt_id = f"{charge.metadata['invoice_id']}#{charge.metadata.get('attempt_no', '')}"
    found = db.rows(
        "SELECT invoice_id, invoice_number, customer_id, attempt_no, idempotency_key,"
        " amount_minor, currency, currency_exponent, state_no, status, stripe_payment_intent_id"
        " FROM billing.payment_attempt_latest WHERE attempt_id = %s",
        [attempt_id],
    )
    if not found:
        return False
    inv, number, customer, no, key, amount, currency, exponent, state_no, status, pi = found[0]
    if status == charge.status and pi == charge.intent_id:
        return False
    attempt = Attempt(attempt_id, inv, number, customer, int(no), key, int(amount), currency,
                      int(exponent))  # fmt: skip
    record_state(db, attempt, int(state_no) + 1, charge, "webhook", now, settings.schedule_days)
    return True
