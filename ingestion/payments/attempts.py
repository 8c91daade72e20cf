"""Recording payment attempts and Stripe customers (append-only rows, see store.py).

An attempt is identified by invoice and number (`<invoice_id>#<n>`), and so is everything
derived from it: the Idempotency-Key sent to Stripe and the PaymentIntent's metadata
(`invoice_id`, `attempt_no`), which is how a crashed or timed-out attempt is found again.
Each state is a new row with the next `state_no`; the primary key (attempt_id, state_no) makes
two writers that race on one attempt fail loudly instead of recording it twice.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from datetime import datetime

from ingestion.payments import dunning, notices
from ingestion.payments.gateway import (
    FAILED,
    PENDING,
    ChargeRequest,
    ChargeResult,
    PaymentGateway,
    PaymentMethodDeclined,
    RequestRefused,
)
from ingestion.payments.settings import PaymentSettings
from ingestion.payments.store import PaymentsDb


def idempotency_key(invoice_id: str, attempt_no: int) -> str:
    """Stable per invoice and attempt; hashed so any invoice id fits Stripe's header rules."""
    digest = hashlib.sha256(invoice_id.encode()).hexdigest()[:24]
    return f"valueverse-{digest}-attempt-{attempt_no}"


@dataclass(frozen=True)
class Attempt:
    """What stays the same across an attempt's states."""

    attempt_id: str
    invoice_id: str
    invoice_number: str
    customer_id: str
    attempt_no: int
    idempotency_key: str
    amount_minor: int
    currency: str
    currency_exponent: int

    @classmethod
    def new(cls, invoice_id: str, invoice_number: str, customer_id: str, attempt_no: int,
            amount_minor: int, currency: str, exponent: int) -> Attempt:  # fmt: skip
        return cls(f"{invoice_id}#{attempt_no}", invoice_id, invoice_number, customer_id,
                   attempt_no, idempotency_key(invoice_id, attempt_no), amount_minor,
                   currency, exponent)  # fmt: skip

    def request(self, customer_ref: str, payment_method_ref: str) -> ChargeRequest:
        return ChargeRequest(self.invoice_id, self.invoice_number, self.attempt_no,
                             self.amount_minor, self.currency, customer_ref,
                             payment_method_ref, self.idempotency_key)  # fmt: skip


ATTEMPT_COLUMNS = ", ".join(Attempt.__dataclass_fields__)


def record_pending(db: PaymentsDb, attempt: Attempt, now: datetime) -> None:
    """State 1, committed before Stripe is called: a crash from here on leaves a trace."""
    db.insert("payment_attempts", {**asdict(attempt), "state_no": 1, "status": PENDING,
                                   "source": "collect", "recorded_at": now})  # fmt: skip


def record_state(
    db: PaymentsDb,
    attempt: Attempt,
    state_no: int,
    result: ChargeResult,
    source: str,
    now: datetime,
    schedule: tuple[int, ...],
) -> None:
    """Append what Stripe said about the attempt, the dunning steps it triggers and their
    notifications, in one transaction: a state is never recorded without them."""
    with db.atomic():
        db.insert("payment_attempts", {
            **asdict(attempt), "state_no": state_no, "status": result.status,
            "stripe_payment_intent_id": result.intent_id,
            "amount_received_minor": result.amount_received_minor,
            "decline_code": result.decline_code, "decline_message": result.decline_message,
            "source": source, "recorded_at": now,
        })  # fmt: skip
        first = db.rows(
            "SELECT min(recorded_at) FROM billing.payment_attempts"
            " WHERE invoice_id = %s AND status = %s",
            [attempt.invoice_id, FAILED],
        )
        detail = " ".join(filter(None, [result.decline_code, result.decline_message])) or None
        first_failed_at = first[0][0] if first else None
        events = dunning.events_after(
            attempt.invoice_id, attempt.attempt_no, result.status, detail, first_failed_at,
            schedule, now,
        )  # fmt: skip
        invoice = notices.invoice_link(db, attempt.invoice_id)
        notices.attempt_state(db, attempt.attempt_id, attempt.attempt_no, invoice, result,
                              attempt.amount_minor, source, now)  # fmt: skip
        for event in events:
            db.insert("dunning_events", event, ignore_conflict=True)
            notices.dunning_step(db, invoice, event)


def open_attempts(
    db: PaymentsDb,
) -> list[tuple[Attempt, int, str, str | None, datetime | None]]:
    """Attempts whose newest state is not final: (attempt, its state_no, status, intent id,
    when it first became requires_action, if it did: the customer's wait starts there)."""
    rows = db.rows(
        f"SELECT {ATTEMPT_COLUMNS}, state_no, status, stripe_payment_intent_id,"
        " (SELECT min(a.recorded_at) FROM billing.payment_attempts AS a"
        "  WHERE a.attempt_id = l.attempt_id AND a.status = 'requires_action')"
        " FROM billing.payment_attempt_latest AS l"
        " WHERE l.status IN ('pending', 'unknown', 'requires_action')"
        " ORDER BY invoice_id, attempt_no"
    )
    return [(Attempt(*row[:9]), int(row[9]), str(row[10]), row[11], row[12]) for row in rows]


def ensure_customer(
    db: PaymentsDb, gateway: PaymentGateway, customer_id: str, spec: str, now: datetime
) -> tuple[str, str]:
    """The Stripe customer and attached payment method for `customer_id` and `spec`.

    The mapping is looked up in the warehouse, then in Stripe by metadata (a crash after
    creating the customer but before storing it must not create a second one), and only then
    created. Raises PaymentMethodDeclined when the card is refused at attach time."""
    stored = db.rows(
        "SELECT stripe_customer_id, payment_method_id, payment_method_spec"
        " FROM billing.stripe_customers WHERE customer_id = %s ORDER BY recorded_at",
        [customer_id],
    )
    for customer_ref, method_ref, stored_spec in stored:
        if stored_spec == spec:
            return str(customer_ref), str(method_ref)
    customer_ref = str(stored[0][0]) if stored else gateway.find_customer(customer_id)
    if customer_ref is None:
        customer_ref = gateway.create_customer(customer_id, f"valueverse-customer-{customer_id}")
    method_ref = gateway.attach_payment_method(customer_ref, spec)
    db.insert("stripe_customers", {"customer_id": customer_id, "payment_method_spec": spec,
                                   "stripe_customer_id": customer_ref,
                                   "payment_method_id": method_ref, "recorded_at": now},
              ignore_conflict=True)  # fmt: skip
    return customer_ref, method_ref


def charge_attempt(
    db: PaymentsDb,
    gateway: PaymentGateway,
    settings: PaymentSettings,
    attempt: Attempt,
    now: datetime,
) -> ChargeResult:
    """Ensure the customer and charge `attempt` (collection and reconciliation alike).

    What is wrong with this customer or invoice only (a card refused at attach time, a request
    the processor refuses as invalid) comes back as a failed result with its reason, recorded
    on the attempt like a decline: it never stops the collection of other invoices. Only
    GatewayUnavailable (outcome unknown) and a refused API key propagate."""
    spec = settings.payment_method_for(attempt.customer_id)
    try:
        customer_ref, method_ref = ensure_customer(db, gateway, attempt.customer_id, spec, now)
        return gateway.charge(attempt.request(customer_ref, method_ref))
    except PaymentMethodDeclined as exc:
        return ChargeResult(FAILED, decline_code=exc.code, decline_message=exc.message)
    except RequestRefused as exc:
        return ChargeResult(FAILED, decline_code=exc.code or "request_refused",
                            decline_message=str(exc))  # fmt: skip
