"""`landed_events`: usage events in the warehouse (raw.events, raw.ingest_batches,
raw.rejected_events, raw.event_conflicts).

With KAFKA_BOOTSTRAP_SERVERS set, materializing it drains the usage topic: the ingestion
service's own loop (`ingestion.landing.consumer.run_service(..., until_idle=True)`, the code behind
`valueverse ingest run --until-idle`) with its validation, dedup, dead letters and
commit-after-write, so a run is as safe to kill or repeat as the service. Without Kafka, events
land through `valueverse events load` or the long-running service, and the asset records what
is in the raw tables (mode "observed"), so downstream dbt and the sensors see the same numbers.
"""

import os
from datetime import UTC

import dagster as dg

from dagster_project.lib.landing_stats import read_landing_counts
from dagster_project.lib.warehouse import WAREHOUSE_POOL, WarehouseResource


@dg.asset(
    group_name="landing",
    pool=WAREHOUSE_POOL,
    kinds={"python", "kafka"},
    description="Usage events landed from Kafka or files (raw.events and its side tables).",
)
def landed_events(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    config = warehouse.config()
    run: dict[str, int] = {}
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        from ingestion.landing.consumer import run_service
        from ingestion.landing.kafka_clients import KafkaSettings

        settings = KafkaSettings.from_env()
        context.log.info(f"draining {settings.topic} at {settings.bootstrap} until idle")
        run = run_service(settings, config, until_idle=True).as_dict()
        mode = f"ingested from kafka topic {settings.topic}"
    else:
        mode = "observed (KAFKA_BOOTSTRAP_SERVERS unset)"
    totals = read_landing_counts(config)
    context.log.info(f"landed_events {mode}: this run {run or '-'}; totals {totals}")
    newest = totals.newest_landed_at
    return dg.MaterializeResult(
        metadata={
            "mode": mode,
            **{f"run.{name}": count for name, count in run.items()},
            "total.accepted": totals.accepted,
            "total.duplicates": totals.duplicates,
            "total.conflicts": totals.conflicts,
            "total.rejected": totals.rejected,
            "total.batches": totals.batches,
            "newest_landed_at": dg.MetadataValue.timestamp(newest.replace(tzinfo=UTC).timestamp())
            if newest
            else "none",
        },
    )
