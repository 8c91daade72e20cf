"""The dunning policy, pure: given an invoice's attempts and a clock, what happens next.

Rules (dbt/DECISIONLOG.md, "Payments and dunning"):
- the first attempt is made as soon as a finalized invoice with an amount due is collected;
- after the first failure, retry k (k = 1..n) is due `schedule[k-1]` days after that first
  failure (default 3, 5 and 7 days), each retry a NEW PaymentIntent (attempt k+1);
- one retry per run at most, and only once it is due, so a late run never fires a burst;
- paid stops everything; after the last retry fails the invoice is `uncollectible`;
- an attempt that is pending (outcome unknown) or requires the customer's action blocks any
  new charge: the former is reconciled first, the latter is polled until it resolves.

No I/O here: the collector (ingestion/payments/collection.py) feeds it rows and writes what it
returns, and unit tests walk the schedule with any clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ingestion.payments.gateway import FAILED, REQUIRES_ACTION, SUCCEEDED

CHARGE = "charge"
WAIT = "wait"
UNCOLLECTIBLE = "uncollectible"
NOTHING = "nothing"


@dataclass(frozen=True)
class Step:
    kind: str  # CHARGE | WAIT | UNCOLLECTIBLE | NOTHING
    attempt_no: int = 0  # CHARGE: the attempt to make; UNCOLLECTIBLE: the last one made
    due_at: datetime | None = None  # WAIT: when the next retry is due


def retry_due_at(
    first_failed_at: datetime, failed_attempt_no: int, schedule: tuple[int, ...]
) -> datetime | None:
    """When the retry after attempt `failed_attempt_no` is due; None after the last retry."""
    if failed_attempt_no - 1 >= len(schedule):
        return None
    return first_failed_at + timedelta(days=schedule[failed_attempt_no - 1])


def plan(
    payment_status: str | None,
    last_attempt_no: int,
    first_failed_at: datetime | None,
    schedule: tuple[int, ...],
    now: datetime,
) -> Step:
    """The next step for one invoice with an amount due.

    `payment_status` is billing.invoice_payment_status's (None: never attempted)."""
    if payment_status is None:
        return Step(CHARGE, 1)
    if payment_status != FAILED:  # paid, uncollectible, pending, requires_action
        return Step(NOTHING)
    if first_failed_at is None:  # a failed status always has a first failure; be safe
        return Step(NOTHING)
    due = retry_due_at(first_failed_at, last_attempt_no, schedule)
    if due is None:
        return Step(UNCOLLECTIBLE, last_attempt_no)
    if now >= due:
        return Step(CHARGE, last_attempt_no + 1)
    return Step(WAIT, last_attempt_no + 1, due)


def events_after(
    invoice_id: str,
    attempt_no: int,
    status: str,
    detail: str | None,
    first_failed_at: datetime | None,
    schedule: tuple[int, ...],
    now: datetime,
) -> list[dict[str, Any]]:
    """The dunning_events rows that an attempt's resolution to `status` produces."""

    def event(kind: str, number: int, due: datetime | None = None, text: str | None = None):
        return {"invoice_id": invoice_id, "event_type": kind, "attempt_no": number,
                "due_at": due, "detail": text, "recorded_at": now}  # fmt: skip

    if status == SUCCEEDED:
        return [event("paid", attempt_no)]
    if status == REQUIRES_ACTION:
        return [event("requires_action", attempt_no, text=detail)]
    if status != FAILED:
        return []
    due = retry_due_at(first_failed_at or now, attempt_no, schedule)
    follow = (
        event("retry_scheduled", attempt_no + 1, due)
        if due is not None
        else event("uncollectible", attempt_no, text=f"no retry left after {attempt_no} attempts")
    )
    return [event("payment_failed", attempt_no, text=detail), follow]
