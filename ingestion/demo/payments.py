"""`make demo`'s payment step: collect every finalized invoice against a local localstripe.

The demo must run offline and without a Stripe account, so it starts its own localstripe on a
free port (from scratch), points the real Stripe gateway at it, runs one collection and stops
the server. localstripe accepts any `sk_test_...` key; a real key is never needed or read here.
Payment methods come from the usual settings (default `pm_card_visa`: every charge succeeds;
`VALUEVERSE_STRIPE_PAYMENT_METHODS_FILE` can make some customers decline).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from ingestion.demo.localstripe import start_localstripe
from ingestion.payments.collection import collect
from ingestion.payments.stripe_gateway import StripeGateway
from ingestion.warehouse import WarehouseConfig

DEMO_KEY = "sk_test_valueverse_demo"  # not a secret: localstripe accepts any test key


def collect_for_demo(
    config: WarehouseConfig, now: datetime | None = None, log: Path | None = None
) -> dict[str, int]:
    """Counts of finalized invoices by payment status after one collection:
    {paid, failed, pending, requires_action} (plus uncollectible, charged, nothing_due)."""
    server = start_localstripe(log=log)
    try:
        result = collect(config, StripeGateway(DEMO_KEY, server.base, timeout=30), now=now)
    finally:
        server.stop()
    return result.summary()
