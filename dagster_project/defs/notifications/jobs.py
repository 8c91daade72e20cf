"""The delivery job and the sensor that starts it.

The job runs `ingestion.notifications.deliver.deliver` (the code behind `valueverse webhooks
deliver`) in the warehouse pool, one step at a time like every writer. The sensor looks every
30 s whether anything is due (read-only) and requests a run keyed by the minute, so a tick that
finds the previous run still queued does not pile up more. It starts STOPPED, like every
sensor and schedule here: sending to customers' systems is switched on deliberately.
"""

import dagster as dg

from dagster_project.lib.warehouse import WAREHOUSE_POOL, WarehouseResource
from ingestion.warehouse import WarehouseError


@dg.op(pool=WAREHOUSE_POOL, description="Send what is due in the outbox; log every attempt.")
def deliver_notifications(
    context: dg.OpExecutionContext, warehouse: WarehouseResource
) -> dict[str, int]:
    from ingestion.notifications.deliver import deliver

    run = deliver(warehouse.config())
    summary = run.summary()
    context.log.info(f"notifications: {summary}")
    for endpoint_id in run.disabled:
        context.log.error(f"endpoint {endpoint_id} disabled after failing too long")
    context.add_output_metadata({key: dg.MetadataValue.int(v) for key, v in summary.items()})
    return summary


@dg.job(description="Deliver the notifications outbox to webhooks and email recipients.")
def deliver_notifications_job() -> None:
    deliver_notifications()


@dg.sensor(
    name="notifications_delivery_sensor",
    job=deliver_notifications_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Starts deliver_notifications_job when a notification is due for an endpoint.",
)
def notifications_delivery_sensor(
    context: dg.SensorEvaluationContext, warehouse: WarehouseResource
) -> dg.RunRequest | dg.SkipReason:
    from ingestion.notifications.deliver import anything_due
    from ingestion.notifications.endpoints import utc_now

    now = utc_now()
    try:
        due = anything_due(warehouse.config(), now)
    except WarehouseError as exc:  # DuckDB busy with a writer, or no warehouse yet
        return dg.SkipReason(f"outbox not read: {exc}")
    if not due:
        return dg.SkipReason("nothing due")
    return dg.RunRequest(run_key=f"deliver-{now:%Y%m%dT%H%M}")
