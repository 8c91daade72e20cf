"""Jobs (asset selections) and their schedules.

- `usage_refresh_job`, hourly: catalog (a no-op when unchanged), landing, every dbt model and
  test, data quality. The dbt build is incremental, so an hour's run rates only the new events.
- `finalization_job`, daily: data quality again (its blocking check gates the same run) and
  the current month's `finalized_invoices` partition (finalization is cumulative: periods that
  ended in earlier months and are still open are finalized too).
- Payment collection and dunning: their jobs and schedules live in defs/payments.

Schedules start STOPPED: turning on billing automation is a decision for whoever runs the
deployment (toggle them in the UI, or `dagster schedule start`).
"""

from datetime import date

import dagster as dg

from dagster_project.defs.billing.assets import FINALIZED_INVOICES_KEY
from dagster_project.defs.dbt.assets import valueverse_dbt_assets
from dagster_project.defs.quality.assets import DATA_QUALITY_KEY
from dagster_project.lib.instance import WAREHOUSE_RUN_TAG

# Both jobs run their steps in one process, one after the other: the steps are sequential
# anyway (one warehouse writer), and a process per step costs ~5-10 s of imports each on a
# small machine. Runs that write the warehouse carry this tag, which the generated dagster.yaml
# limits to one run at a time (lib/instance.py).
WAREHOUSE_RUN_TAGS = {WAREHOUSE_RUN_TAG: "write"}

usage_refresh_job = dg.define_asset_job(
    "usage_refresh_job",
    selection=dg.AssetSelection.assets("catalog", "landed_events")
    | dg.AssetSelection.assets(valueverse_dbt_assets)
    | dg.AssetSelection.assets(DATA_QUALITY_KEY),
    description="Land new usage, rate it with dbt (models + tests), run the data quality report.",
    executor_def=dg.in_process_executor,
    tags=WAREHOUSE_RUN_TAGS,
)

finalization_job = dg.define_asset_job(
    "finalization_job",
    selection=dg.AssetSelection.assets(DATA_QUALITY_KEY, FINALIZED_INVOICES_KEY),
    description="Gate on data quality, then finalize and number the invoices that are due.",
    executor_def=dg.in_process_executor,
    tags=WAREHOUSE_RUN_TAGS,
)

usage_refresh_schedule = dg.ScheduleDefinition(
    name="usage_refresh_hourly",
    job=usage_refresh_job,
    cron_schedule="0 * * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
)


def month_partition_key(day: date) -> str:
    """The billing_months key of the month holding `day`."""
    return date(day.year, day.month, 1).isoformat()


@dg.schedule(
    name="finalization_daily",
    job=finalization_job,
    cron_schedule="0 6 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="06:00 UTC: finalize what is due in the current month's partition.",
)
def finalization_daily(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    day = context.scheduled_execution_time.date()
    key = month_partition_key(day)
    return dg.RunRequest(run_key=f"finalize-{day.isoformat()}", partition_key=key)
