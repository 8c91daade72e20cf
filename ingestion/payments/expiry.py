"""An attempt waiting for the customer's action ages out into dunning.

An off-session charge the customer must authenticate (3-D Secure) is `requires_action`: no new
charge is made for its invoice while it waits (dunning.py) and reconcile polls it every run.
Without an end, a customer who never authenticates would keep the invoice out of dunning for
good. So once an attempt has been `requires_action` for `VALUEVERSE_PAYMENTS_ACTION_TIMEOUT_HOURS`
(default 72), counted from its first `requires_action` state to the run's clock (the `now`
collection and dunning decide with), its PaymentIntent is cancelled at Stripe and the attempt
recorded `failed`, reason `requires_action expired after 72h`; dunning schedules the retry as
after any decline.

Why cancel first and record after: once cancelled, the customer can no longer complete a charge
the warehouse counts as failed (a paid invoice retried by dunning). A run killed in between
leaves the attempt `requires_action` and overdue; the next run cancels again, the gateway
answers with the PaymentIntent's state (canceled already) and that is recorded. A customer who
authenticated just before makes Stripe refuse the cancel; the gateway reads the PaymentIntent
again and the success is recorded, never a failure.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from ingestion.payments.attempts import Attempt
from ingestion.payments.gateway import FAILED, ChargeResult, PaymentGateway

EXPIRED_CODE = "action_expired"


def is_expired(waiting_since: datetime | None, now: datetime, hours: int) -> bool:
    """Has the customer had `hours` to act since the attempt became requires_action?"""
    return waiting_since is not None and now - waiting_since >= timedelta(hours=hours)


def expire(gateway: PaymentGateway, attempt: Attempt, intent_id: str, hours: int) -> ChargeResult:
    """Cancel the attempt's PaymentIntent; the state to record (failed with the expiry as its
    reason, or what Stripe holds when the charge went through meanwhile)."""
    result = gateway.cancel(intent_id, f"{attempt.idempotency_key}-cancel")
    if result.status != FAILED:
        return result
    return replace(result, decline_code=result.decline_code or EXPIRED_CODE,
                   decline_message=f"requires_action expired after {hours}h")  # fmt: skip
