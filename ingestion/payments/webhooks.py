"""Stripe webhook events: signature verification (pure) and recording what they say.

Payment status updates reach the warehouse by POLLING (reconcile.py, every collection run);
see the README's "Payments and dunning" for why. This module is the receiving side a deployment
can put behind an HTTP endpoint, and it is what makes that safe: an event counts only if
Stripe-Signature carries a valid HMAC-SHA256 of `<timestamp>.<payload>` under the endpoint's
secret (`STRIPE_WEBHOOK_SECRET`) and the timestamp is within the tolerance (5 minutes, against
replays). Verification is the SDK's own (`stripe.Webhook.construct_event`).

Applying an event is idempotent, append-only and monotonic. Stripe delivers at least once and
in no particular order, and polling records states too, so a `payment_intent.*` event about an
attempt (metadata invoice_id + attempt_no) appends the attempt's new state only when:

- its event id was never received before (`billing.webhook_events`, one row per event id, with
  the outcome below): a redelivery changes nothing;
- the attempt exists and has not `succeeded`: money received is final (`final`);
- it is about the attempt's PaymentIntent, when one is recorded (`other_intent`);
- it is not older than an event already applied to the attempt (`stale`);
- it reports something new (`unchanged` otherwise).

A collection run that appends a state at the same moment makes the insert collide on the
attempt's (attempt_id, state_no) key; the event is then decided again against the new state.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import stripe

from ingestion.payments.attempts import ATTEMPT_COLUMNS, Attempt, record_state
from ingestion.payments.gateway import SUCCEEDED, ChargeResult
from ingestion.payments.settings import PaymentSettings
from ingestion.payments.store import PaymentsDb
from ingestion.payments.stripe_gateway import intent_result
from ingestion.warehouse import driver_errors, is_duplicate_key

DEFAULT_TOLERANCE_SECONDS = 300


class WebhookRejected(ValueError):
    """Bad signature, stale timestamp or unreadable payload: answer HTTP 400, record nothing."""


@dataclass(frozen=True)
class WebhookEvent:
    event_id: str
    type: str
    charge: ChargeResult | None  # for payment_intent.* events
    created: datetime | None = None  # when Stripe created the event, naive UTC


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
    created = data.get("created")
    when = datetime.fromtimestamp(created, UTC).replace(tzinfo=None) if created else None
    return WebhookEvent(str(data.get("id")), str(data.get("type")), charge, when)


_LATEST = f"""
SELECT {ATTEMPT_COLUMNS}, state_no, status, stripe_payment_intent_id,
       (SELECT max(created_at) FROM billing.webhook_events
        WHERE attempt_id = %s AND outcome = 'applied')
FROM billing.payment_attempt_latest WHERE attempt_id = %s
"""
APPLIED = "applied"


def apply_event(
    db: PaymentsDb, event: WebhookEvent, now: datetime, settings: PaymentSettings
) -> bool:
    """Append the attempt state the event reports, if it may (see the module's rules); record
    the event with its outcome. True when a state was appended."""
    if db.value("SELECT count(*) FROM billing.webhook_events WHERE event_id = %s",
                [event.event_id]):  # fmt: skip
        return False  # a redelivery
    charge = event.charge
    attempt_id = None
    if charge is None or "invoice_id" not in charge.metadata:
        outcome = "not_a_payment"
    else:
        attempt_id = f"{charge.metadata['invoice_id']}#{charge.metadata.get('attempt_no', '')}"
        outcome = _apply(db, attempt_id, charge, event.created, now, settings)
    db.insert("webhook_events", {
        "event_id": event.event_id, "event_type": event.type, "attempt_id": attempt_id,
        "payment_intent_id": charge.intent_id if charge else None,
        "status": charge.status if charge else None, "created_at": event.created,
        "outcome": outcome, "received_at": now,
    }, ignore_conflict=True)  # fmt: skip
    return outcome == APPLIED


def _apply(
    db: PaymentsDb,
    attempt_id: str,
    charge: ChargeResult,
    created: datetime | None,
    now: datetime,
    settings: PaymentSettings,
) -> str:
    for _ in range(5):  # each collision means another writer appended a state: decide again
        found = db.rows(_LATEST, [attempt_id, attempt_id])
        if not found:
            return "unknown_attempt"
        attempt = Attempt(*found[0][:9])
        state_no, status, pi, last = found[0][9:]
        if status == SUCCEEDED:
            return "final"
        if pi is not None and charge.intent_id != pi:
            return "other_intent"
        if created is not None and last is not None and created < last:
            return "stale"
        if status == charge.status and pi == charge.intent_id:
            return "unchanged"
        try:
            record_state(db, attempt, int(state_no) + 1, charge, "webhook", now,
                         settings.schedule_days)  # fmt: skip
        except driver_errors() as exc:
            if not is_duplicate_key(exc):
                raise
            continue
        return APPLIED
    return "contended"
