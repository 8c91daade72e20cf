"""Payment collection and dunning jobs, and their daily schedules.

- `payment_collection_job` (07:00 UTC, after `finalization_daily` at 06:00): reconcile open
  attempts with Stripe, then charge every newly finalized invoice (and any retry that is due).
- `dunning_job` (12:00 UTC): reconcile, then only the retries that are due; a second pass a
  day so a retry falls due within hours, not a day, of its schedule.

Both call `ingestion.payments.collection.collect`, the code behind `valueverse payments
collect`, with the schedule's tick time as the clock (`now`), so a replayed tick makes the
same decisions. They run in the warehouse pool (one writer at a time). Schedules start
STOPPED, like every billing schedule: charging customers is switched on deliberately.
"""

from datetime import datetime

import dagster as dg

from dagster_project.defs.payments.resources import PaymentGatewayResource
from dagster_project.lib.warehouse import WAREHOUSE_POOL, WarehouseResource


class CollectionConfig(dg.Config):
    now: str = ""  # ISO 8601; empty: the moment the step runs (UTC)


def _run(
    context: dg.OpExecutionContext,
    config: CollectionConfig,
    warehouse: WarehouseResource,
    payments: PaymentGatewayResource,
    first_attempts: bool,
) -> dict[str, int]:
    from ingestion.payments.collection import collect

    now = datetime.fromisoformat(config.now.replace("Z", "+00:00")) if config.now else None
    result = collect(warehouse.config(), payments.gateway(), now=now,
                     first_attempts=first_attempts)  # fmt: skip
    summary = result.summary()
    context.log.info(f"payments: {summary}")
    if result.stopped_unreachable or (result.reconcile and result.reconcile.unreachable):
        # fail the run (red in the UI, recorded by run_failure_recorder); nothing is lost:
        # the open attempts are pending and the next run reconciles them first
        raise dg.Failure(
            "Stripe unreachable: open attempts stay pending until the next run",
            metadata={key: dg.MetadataValue.int(v) for key, v in summary.items()},
        )
    context.add_output_metadata({key: dg.MetadataValue.int(v) for key, v in summary.items()})
    return summary


@dg.op(pool=WAREHOUSE_POOL, description="Reconcile, then charge finalized invoices that are due.")
def collect_payments(
    context: dg.OpExecutionContext,
    config: CollectionConfig,
    warehouse: WarehouseResource,
    payments: PaymentGatewayResource,
) -> dict[str, int]:
    return _run(context, config, warehouse, payments, first_attempts=True)


@dg.op(pool=WAREHOUSE_POOL, description="Reconcile, then make the dunning retries that are due.")
def run_dunning(
    context: dg.OpExecutionContext,
    config: CollectionConfig,
    warehouse: WarehouseResource,
    payments: PaymentGatewayResource,
) -> dict[str, int]:
    return _run(context, config, warehouse, payments, first_attempts=False)


@dg.job(description="Collect finalized invoices through Stripe (reconciling first).")
def payment_collection_job() -> None:
    collect_payments()


@dg.job(description="Dunning: retry failed payments on schedule, then mark uncollectible.")
def dunning_job() -> None:
    run_dunning()


def _request(op_name: str, context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    tick = context.scheduled_execution_time
    return dg.RunRequest(
        run_key=f"{op_name}-{tick.isoformat()}",
        run_config={"ops": {op_name: {"config": {"now": tick.isoformat()}}}},
    )


@dg.schedule(name="payment_collection_daily", job=payment_collection_job,
             cron_schedule="0 7 * * *", execution_timezone="UTC",
             default_status=dg.DefaultScheduleStatus.STOPPED,
             description="07:00 UTC: collect what finalization issued at 06:00.")  # fmt: skip
def payment_collection_daily(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    return _request("collect_payments", context)


@dg.schedule(name="dunning_daily", job=dunning_job, cron_schedule="0 12 * * *",
             execution_timezone="UTC", default_status=dg.DefaultScheduleStatus.STOPPED,
             description="12:00 UTC: the dunning retries that are due.")  # fmt: skip
def dunning_daily(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    return _request("run_dunning", context)
