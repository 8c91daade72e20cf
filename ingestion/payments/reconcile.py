"""Reconciliation: settle every attempt whose outcome the warehouse does not know yet.

Runs at the start of every collection, BEFORE any new charge, so a crash or a timeout between
"Stripe was asked" and "the answer was written" can never turn into a second charge:

- `pending`/`unknown` without a PaymentIntent id: the outcome was lost. Stripe is searched by
  metadata (invoice_id, attempt_no). Found: its state is recorded. Not found: Stripe never
  created it, and the SAME attempt is sent again with the SAME Idempotency-Key (so on Stripe,
  whose search index may lag behind, the original PaymentIntent comes back instead of a
  second one; localstripe lists exactly, so "not found" there means "never created").
- `pending`/`unknown`/`requires_action` with an id: polled (retrieved) until it is final; a
  customer who authenticated later turns a `requires_action` into `succeeded` this way.
- `requires_action` for longer than `VALUEVERSE_PAYMENTS_ACTION_TIMEOUT_HOURS` (by the run's
  clock): its PaymentIntent is cancelled and the attempt recorded `failed`, so dunning retries
  it (expiry.py).

If Stripe cannot be reached, reconciliation stops and the attempts stay open; the collector
then makes no new charge for those invoices (their status is still pending).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from ingestion.job_telemetry import job_run
from ingestion.payments.attempts import charge_attempt, open_attempts, record_state
from ingestion.payments.expiry import expire, is_expired
from ingestion.payments.gateway import (
    FAILED,
    REQUIRES_ACTION,
    SUCCEEDED,
    GatewayUnavailable,
    PaymentGateway,
    RequestRefused,
)
from ingestion.payments.settings import PaymentSettings
from ingestion.payments.store import PaymentsDb

log = logging.getLogger(__name__)
_PREFERENCE = {SUCCEEDED: 0, REQUIRES_ACTION: 1, FAILED: 3}


@dataclass
class ReconcileCounts:
    reconciled: int = 0  # open attempts whose state changed
    resent: int = 0  # pending attempts Stripe had never seen, sent again with their key
    still_open: int = 0
    expired: int = 0  # requires_action past the timeout, cancelled at Stripe and failed
    unreachable: bool = False
    duplicates: int = 0  # attempts Stripe holds more than one PaymentIntent for (alarm)


def reconcile(
    db: PaymentsDb,
    gateway: PaymentGateway,
    settings: PaymentSettings,
    now: datetime,
) -> ReconcileCounts:
    """Settle open attempts (see the module's docstring); one `payments reconcile` span
    (ingestion/job_telemetry.py) with the counts."""
    with job_run("payments reconcile", now=now.isoformat()) as run:
        counts = _reconcile(db, gateway, settings, now)
        run.record(reconciled=counts.reconciled, resent=counts.resent,
                   still_open=counts.still_open, expired=counts.expired,
                   duplicates=counts.duplicates, stripe_unreachable=counts.unreachable)  # fmt: skip
        if counts.unreachable:
            run.fail("stripe_unreachable", "Stripe could not be reached")
    return counts


def _reconcile(
    db: PaymentsDb, gateway: PaymentGateway, settings: PaymentSettings, now: datetime
) -> ReconcileCounts:
    counts = ReconcileCounts()
    hours = settings.action_timeout_hours
    for attempt, state_no, status, intent_id, waiting_since in open_attempts(db):
        source = "poll" if intent_id else "reconcile"
        try:
            if intent_id and status == REQUIRES_ACTION and is_expired(waiting_since, now, hours):
                source = "expiry"
                result = expire(gateway, attempt, intent_id, hours)
                counts.expired += result.status == FAILED
            elif intent_id:
                result = gateway.retrieve_charge(intent_id)
            else:
                found = gateway.find_charges(attempt.invoice_id, attempt.attempt_no)
                if len(found) > 1:
                    counts.duplicates += 1
                    log.error("attempt %s has %d PaymentIntents", attempt.attempt_id, len(found))
                if found:
                    result = min(found, key=lambda r: _PREFERENCE.get(r.status, 2))
                else:
                    result = charge_attempt(db, gateway, settings, attempt, now)
                    counts.resent += 1
        except GatewayUnavailable as exc:
            log.warning("reconciliation stopped, attempts stay pending: %s", exc)
            counts.unreachable = True
            counts.still_open += 1
            break
        except RequestRefused as exc:  # this attempt's lookup only: it stays open, others go on
            log.error("attempt %s not reconciled: %s", attempt.attempt_id, exc)
            counts.still_open += 1
            continue
        if result.status == status and result.intent_id == intent_id:
            counts.still_open += 1
            continue
        record_state(db, attempt, state_no + 1, result, source, now, settings.schedule_days)
        counts.reconciled += 1
    return counts
