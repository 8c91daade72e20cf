"""Payment collection and dunning (Stripe), merged into `dagster_project/definitions.py`.

- resources.py: `PaymentGatewayResource`, the abstract resource in front of Stripe, and
  `StripeGatewayResource` on the official SDK, bound as `payments` from the environment;
- jobs.py: `payment_collection_job` / `payment_collection_daily` and `dunning_job` /
  `dunning_daily`, both on `ingestion.payments.collection.collect` (reconcile first, then
  charge; crash-safe and idempotent, see ingestion/payments/).
The `warehouse` resource is the project's own (bound in definitions.py).
"""

from __future__ import annotations

import dagster as dg

from dagster_project.defs.payments.jobs import (
    dunning_daily,
    dunning_job,
    payment_collection_daily,
    payment_collection_job,
)
from dagster_project.defs.payments.resources import StripeGatewayResource

PAYMENTS_DEFS = dg.Definitions(
    jobs=[payment_collection_job, dunning_job],
    schedules=[payment_collection_daily, dunning_daily],
    resources={"payments": StripeGatewayResource()},
)
