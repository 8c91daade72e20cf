"""Payment collection and dunning: `valueverse payments collect`, and Dagster's jobs.

One run, with one clock (`now`, controllable for tests and replays):
1. reconcile every open attempt with Stripe first (reconcile.py): nothing new is charged for
   an invoice whose last attempt's outcome is unknown;
2. for every finalized invoice with a total above zero that is not paid, not uncollectible,
   not pending and not waiting for the customer's action, ask the dunning policy
   (dunning.py): first attempt, a retry that is due, or uncollectible;
3. each charge: the attempt is written `pending` (committed), the Stripe customer ensured, an
   off-session PaymentIntent created and confirmed for the total in minor units, then the
   answer is appended. A crash between 2 and 3 is settled by step 1 of the next run.

Invoices with a total of zero or less are excluded: nothing is due, no attempt is recorded,
and the finance marts show them as `nothing_due`. Stripe unreachable: the run stops charging
at the first failure to connect, attempts stay pending, and the next run reconciles them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from ingestion.billing.payments_store import ensure_payments_store
from ingestion.job_telemetry import job_run
from ingestion.payments import dunning, notices
from ingestion.payments.attempts import Attempt, charge_attempt, record_pending, record_state
from ingestion.payments.gateway import (
    FAILED,
    REQUIRES_ACTION,
    SUCCEEDED,
    GatewayUnavailable,
    PaymentGateway,
)
from ingestion.payments.reconcile import ReconcileCounts, reconcile
from ingestion.payments.settings import PaymentSettings, SettingsError, minor_units
from ingestion.payments.store import PaymentsDb
from ingestion.warehouse import WarehouseBusy, WarehouseConfig, refuse_future

log = logging.getLogger(__name__)

_CANDIDATES = """
SELECT f.invoice_id, f.invoice_number, f.customer_id, f.total, f.currency, f.currency_exponent,
       s.payment_status, coalesce(s.last_attempt_no, 0), s.first_failed_at
FROM billing.finalized_invoices AS f
LEFT JOIN billing.invoice_payment_status AS s ON s.invoice_id = f.invoice_id
WHERE f.total > 0 AND (s.payment_status IS NULL OR s.payment_status = 'failed')
ORDER BY f.series, f.sequence_number
"""
_STATUS_COUNTS = """
SELECT coalesce(s.payment_status, 'open'), count(*)
FROM billing.finalized_invoices AS f
LEFT JOIN billing.invoice_payment_status AS s ON s.invoice_id = f.invoice_id
WHERE f.total > 0 GROUP BY 1
"""


@dataclass
class CollectResult:
    charged: int = 0  # PaymentIntents created by this run (first attempts and retries)
    retries: int = 0
    newly_uncollectible: int = 0
    nothing_due: int = 0  # finalized invoices with total <= 0, excluded
    refused: int = 0  # totals with more decimals than their currency: not charged, logged
    succeeded: int = 0  # of this run's charges: paid at once
    failed: int = 0  # declined, or refused by the processor for this invoice
    requires_action: int = 0  # waiting for the customer to authenticate
    reconcile: ReconcileCounts | None = None
    stopped_unreachable: bool = False
    statuses: dict[str, int] | None = None  # invoices by payment status after the run

    def summary(self) -> dict[str, int]:
        """The counts `payments collect` prints and the demo reports."""
        statuses = self.statuses or {}
        return {
            "paid": statuses.get("paid", 0),
            "failed": statuses.get("failed", 0),
            "pending": statuses.get("pending", 0) + statuses.get("open", 0),
            "requires_action": statuses.get("requires_action", 0),
            "uncollectible": statuses.get("uncollectible", 0),
            "charged": self.charged,
            "reconciled": self.reconcile.reconciled if self.reconcile else 0,
            "expired": self.reconcile.expired if self.reconcile else 0,
            "nothing_due": self.nothing_due,
            "refused": self.refused,
        }


def utc_naive(moment: datetime | None) -> datetime:
    """The run's clock as naive UTC (how the warehouse stores timestamps)."""
    moment = moment or datetime.now(UTC)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def collect(
    config: WarehouseConfig,
    gateway: PaymentGateway,
    now: datetime | None = None,
    settings: PaymentSettings | None = None,
    *,
    first_attempts: bool = True,
    retries: bool = True,
) -> CollectResult:
    """Reconcile, then charge what is due; `first_attempts`/`retries` let Dagster run the
    collection and the dunning job separately (both always reconcile first). One
    `payments collect` span (ingestion/job_telemetry.py) with this run's counts."""
    clock = utc_naive(now)
    with job_run("payments collect", as_of=clock.date().isoformat(), now=clock.isoformat(),
                 first_attempts=first_attempts, retries=retries) as run:  # fmt: skip
        result = _collect(config, gateway, clock, settings, first_attempts, retries)
        unreachable = result.stopped_unreachable or bool(result.reconcile and
                                                         result.reconcile.unreachable)  # fmt: skip
        run.record(charged=result.charged, retries=result.retries, succeeded=result.succeeded,
                   failed=result.failed, requires_action=result.requires_action,
                   newly_uncollectible=result.newly_uncollectible, refused=result.refused,
                   stripe_unreachable=unreachable)  # fmt: skip
        if unreachable:
            run.fail("stripe_unreachable", "Stripe could not be reached: attempts stay pending")
    return result


def _collect(
    config: WarehouseConfig,
    gateway: PaymentGateway,
    clock: datetime,
    settings: PaymentSettings | None,
    first_attempts: bool,
    retries: bool,
) -> CollectResult:
    refuse_future(clock, "a payment run's clock")
    settings = settings or PaymentSettings.from_env()
    ensure_payments_store(config)
    result = CollectResult()
    with PaymentsDb(config) as db:
        if not db.try_lock():
            raise WarehouseBusy("another payment collection is running on this warehouse")
        result.reconcile = reconcile(db, gateway, settings, clock)
        result.nothing_due = int(
            db.value("SELECT count(*) FROM billing.finalized_invoices WHERE total <= 0")
        )
        if not result.reconcile.unreachable:
            _charge_due(db, gateway, settings, clock, result, first_attempts, retries)
        result.statuses = {str(k): int(v) for k, v in db.rows(_STATUS_COUNTS)}
    return result


def _charge_due(
    db: PaymentsDb,
    gateway: PaymentGateway,
    settings: PaymentSettings,
    now: datetime,
    result: CollectResult,
    first_attempts: bool,
    retries: bool,
) -> None:
    for row in db.rows(_CANDIDATES):
        invoice_id, number, customer_id, total, currency, exponent, status, last, first = row
        step = dunning.plan(status, int(last), first, settings.schedule_days, now)
        if step.kind == dunning.UNCOLLECTIBLE:
            event = {
                "invoice_id": invoice_id,
                "event_type": "uncollectible",
                "attempt_no": step.attempt_no,
                "due_at": None,
                "detail": "no retry left in the schedule",
                "recorded_at": now,
            }
            with db.atomic():
                db.insert("dunning_events", event, ignore_conflict=True)
                notices.dunning_step(db, notices.invoice_link(db, invoice_id), event)
            result.newly_uncollectible += 1
            continue
        if step.kind != dunning.CHARGE or not (first_attempts if step.attempt_no == 1 else retries):
            continue
        try:
            amount = minor_units(Decimal(total), int(exponent))
        except SettingsError as exc:  # a total finer than its currency: never charge a guess
            log.error("invoice %s not charged: %s", invoice_id, exc)
            result.refused += 1
            continue
        attempt = Attempt.new(invoice_id, number, customer_id, step.attempt_no, amount,
                              currency, int(exponent))  # fmt: skip
        try:
            status = _charge(db, gateway, settings, attempt, now)
        except GatewayUnavailable as exc:
            log.warning("Stripe unreachable, collection stopped (attempt stays pending): %s", exc)
            result.stopped_unreachable = True
            return
        result.charged += 1
        result.retries += step.attempt_no > 1
        result.succeeded += status == SUCCEEDED
        result.failed += status == FAILED
        result.requires_action += status == REQUIRES_ACTION


def _charge(
    db: PaymentsDb,
    gateway: PaymentGateway,
    settings: PaymentSettings,
    attempt: Attempt,
    now: datetime,
) -> str:
    """Charge one attempt and record the answer; returns the charge's status."""
    record_pending(db, attempt, now)
    if attempt.attempt_no > 1:
        db.insert("dunning_events", {"invoice_id": attempt.invoice_id,
                                     "event_type": "retry_attempted",
                                     "attempt_no": attempt.attempt_no, "due_at": None,
                                     "detail": None, "recorded_at": now},
                  ignore_conflict=True)  # fmt: skip
    charged = charge_attempt(db, gateway, settings, attempt, now)
    record_state(db, attempt, 2, charged, "collect", now, settings.schedule_days)
    return charged.status
