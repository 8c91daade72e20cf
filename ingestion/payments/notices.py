"""The payment notifications (ingestion/billing/outbox.py): an attempt's new state and the
dunning steps it triggers, recorded by the writes that record them, in their transaction.

Why these dedup keys: the same state of one attempt can be recorded by two paths (a webhook and
the poll that reconciles the attempt), and a repeated step must never notify twice. So
`payment.<status>` is keyed by the attempt id and its status, a scheduled retry by the invoice
and the attempt it schedules, and `invoice.uncollectible` by the invoice alone (it happens
once). Every payload names the issued invoice (number, id, subscription, period) so a
receiver can find it in the marts.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from ingestion.billing.export import format_amount
from ingestion.billing.outbox import record
from ingestion.payments.gateway import FAILED, REQUIRES_ACTION, SUCCEEDED, ChargeResult
from ingestion.warehouse import Session

_STATE_TYPES = {
    SUCCEEDED: "payment.succeeded",
    FAILED: "payment.failed",
    REQUIRES_ACTION: "payment.requires_action",
}
_INVOICE = """
SELECT invoice_number, customer_id, subscription_id, period_start, period_end, total, currency,
       currency_exponent
FROM billing.finalized_invoices WHERE invoice_id = %s
"""


def invoice_link(db: Session, invoice_id: str) -> dict[str, Any]:
    """The issued invoice's ids and amount, as every payment notification carries them."""
    found = db.one(_INVOICE, [invoice_id])
    if found is None:  # an attempt always belongs to an issued invoice; say so if not
        raise LookupError(f"invoice {invoice_id!r} is not in billing.finalized_invoices")
    number, customer, subscription, start, end, total, currency, exponent = found
    return {
        "invoice_number": number, "invoice_id": invoice_id, "customer_id": customer,
        "subscription_id": subscription, "period_start": start, "period_end": end,
        "total": format_amount(Decimal(total), int(exponent)), "currency": currency,
        "currency_exponent": int(exponent),
    }  # fmt: skip


def attempt_state(
    db: Session,
    attempt_id: str,
    attempt_no: int,
    invoice: dict[str, Any],
    result: ChargeResult,
    amount_minor: int,
    source: str,
    now: datetime,
) -> None:
    """`payment.succeeded|failed|requires_action` for a state just recorded (pending and
    unknown tell nobody anything yet)."""
    event_type = _STATE_TYPES.get(result.status)
    if event_type is None:
        return
    exponent = invoice["currency_exponent"]
    received = result.amount_received_minor
    data = {
        **invoice,
        "attempt_id": attempt_id,
        "attempt_no": attempt_no,
        "status": result.status,
        "amount": Decimal(amount_minor).scaleb(-exponent),
        "amount_received": None if received is None else Decimal(received).scaleb(-exponent),
        "payment_intent_id": result.intent_id,
        "decline_code": result.decline_code,
        "decline_message": result.decline_message,
        "source": source,
    }
    _record(db, event_type, f"{attempt_id}:{result.status}", data, now)


def dunning_step(db: Session, invoice: dict[str, Any], event: dict[str, Any]) -> None:
    """`dunning.retry_scheduled` or `invoice.uncollectible` for a dunning_events row just
    written (the other steps are told by the attempt's own notification)."""
    kind, attempt_no, now = event["event_type"], int(event["attempt_no"]), event["recorded_at"]
    if kind == "retry_scheduled":
        data = {**invoice, "retry_attempt_no": attempt_no, "failed_attempt_no": attempt_no - 1,
                "due_at": event["due_at"].replace(tzinfo=UTC)}  # fmt: skip
        change = f"{invoice['invoice_id']}#{attempt_no}"
        _record(db, "dunning.retry_scheduled", change, data, now)
    elif kind == "uncollectible":
        data = {**invoice, "attempts": attempt_no, "reason": event["detail"]}
        _record(db, "invoice.uncollectible", invoice["invoice_id"], data, now)


def _record(db: Session, event_type: str, change: str, data: dict[str, Any], at: datetime) -> None:
    """The customer's notification about their issued invoice, at the run's clock (naive UTC,
    as the payments tables hold it)."""
    record(db, event_type, change, data, customer_id=data["customer_id"],
           subject=data["invoice_number"], at=at.replace(tzinfo=UTC))  # fmt: skip
