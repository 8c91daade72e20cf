"""Reconciliation with Stripe itself: does what Stripe holds match what the warehouse says?

The dbt test `reconcile_payments_with_stripe` checks the marts against the amounts Stripe
reported when each attempt was recorded. This audit asks Stripe again, invoice by invoice
(PaymentIntents by metadata): the amount Stripe received on succeeded PaymentIntents must
equal the warehouse's amount paid, at most one PaymentIntent may have succeeded (no double
charge), and every PaymentIntent Stripe holds must be a recorded attempt. `valueverse payments
audit` prints the differences and exits 1 when there is any.
"""

from __future__ import annotations

from dataclasses import dataclass

from ingestion.billing.payments_store import ensure_payments_store
from ingestion.payments.gateway import SUCCEEDED, PaymentGateway
from ingestion.payments.store import PaymentsDb
from ingestion.warehouse import WarehouseConfig

_WAREHOUSE = """
SELECT invoice_id, amount_paid_minor FROM billing.invoice_payment_status ORDER BY invoice_id
"""


@dataclass(frozen=True)
class Mismatch:
    invoice_id: str
    problem: str


def audit_against_stripe(config: WarehouseConfig, gateway: PaymentGateway) -> list[Mismatch]:
    """Every difference between Stripe and the warehouse, for invoices with attempts."""
    ensure_payments_store(config)
    with PaymentsDb(config) as db:
        invoices = db.rows(_WAREHOUSE)
        known = {str(r[0]) for r in db.rows(
            "SELECT DISTINCT stripe_payment_intent_id FROM billing.payment_attempts"
            " WHERE stripe_payment_intent_id IS NOT NULL")}  # fmt: skip
    problems = []
    for invoice_id, paid_minor in invoices:
        charges = gateway.find_invoice_charges(str(invoice_id))
        succeeded = [c for c in charges if c.status == SUCCEEDED]
        received = sum(c.amount_received_minor or 0 for c in succeeded)
        if received != int(paid_minor or 0):
            problems.append(Mismatch(invoice_id, f"Stripe received {received} minor units,"
                                                 f" the warehouse says {paid_minor}"))  # fmt: skip
        if len(succeeded) > 1:
            problems.append(Mismatch(invoice_id, f"{len(succeeded)} PaymentIntents succeeded"))
        unknown = sorted(str(c.intent_id) for c in charges if c.intent_id not in known)
        if unknown:
            problems.append(Mismatch(invoice_id, f"PaymentIntents not recorded: {unknown}"))
    return problems
