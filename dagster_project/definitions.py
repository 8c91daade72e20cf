"""The one Dagster entry point: `dagster_project.definitions:defs`.

Everything is built from the environment (.env.example lists it): the warehouse URL, the dbt
project beside this package, thresholds read at evaluation time. Loading parses the dbt project
when its manifest is missing or stale (lib/dbt_project.py), so a fresh clone loads as is.
"""

from __future__ import annotations

import dagster as dg

from dagster_project.defs import notifications, payments
from dagster_project.defs.alerts.sensors import run_failure_recorder
from dagster_project.defs.billing.assets import finalized_invoices
from dagster_project.defs.catalog.assets import catalog
from dagster_project.defs.dbt.assets import dbt_resource, valueverse_dbt_assets
from dagster_project.defs.quality.assets import data_quality
from dagster_project.defs.schedules import (
    finalization_daily,
    finalization_job,
    usage_refresh_job,
    usage_refresh_schedule,
)
from dagster_project.defs.usage_events.assets import landed_events
from dagster_project.defs.usage_events.checks import landed_events_fresh, share_checks
from dagster_project.defs.usage_events.sensors import (
    landed_events_freshness_sensor,
    landing_shares_sensor,
)
from dagster_project.lib.as_of import as_of_resource_from_env
from dagster_project.lib.warehouse import WarehouseResource

defs = dg.Definitions.merge(
    dg.Definitions(
        assets=[catalog, landed_events, valueverse_dbt_assets, data_quality, finalized_invoices],
        asset_checks=[landed_events_fresh, *share_checks],
        jobs=[usage_refresh_job, finalization_job],
        schedules=[usage_refresh_schedule, finalization_daily],
        sensors=[landed_events_freshness_sensor, landing_shares_sensor, run_failure_recorder],
        resources={
            "warehouse": WarehouseResource(),
            "dbt": dbt_resource(),
            "as_of": as_of_resource_from_env(),
        },
    ),
    payments.PAYMENTS_DEFS,
    notifications.NOTIFICATIONS_DEFS,
)
