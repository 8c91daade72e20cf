"""`finalized_invoices`: invoices frozen with their numbers, one billing month per partition.

`ingestion.billing.finalization.finalize` does the work (numbers gapless per series, one
transaction, idempotent). A partition is the month in which periods end (lib/partitions.py): its run
finalizes every period that ended by then, past the grace days, and not blocked by data
quality. It runs after `data_quality` and its blocking check, so a failed critical expectation
stops it in the same run.
"""

import dagster as dg

from dagster_project.defs.quality.assets import DATA_QUALITY_KEY
from dagster_project.lib.as_of import AsOfResource
from dagster_project.lib.partitions import as_of_for_partition, billing_months
from dagster_project.lib.settings import grace_days
from dagster_project.lib.warehouse import WAREHOUSE_POOL, WarehouseResource

FINALIZED_INVOICES_KEY = dg.AssetKey("finalized_invoices")


@dg.asset(
    key=FINALIZED_INVOICES_KEY,
    deps=[
        DATA_QUALITY_KEY,
        dg.AssetKey(["marts", "invoices"]),
        dg.AssetKey(["marts", "invoice_lines"]),
    ],
    partitions_def=billing_months,
    group_name="billing",
    kinds={"python"},
    pool=WAREHOUSE_POOL,
    description="Invoices finalized and numbered for periods ending in the partition's month.",
)
def finalized_invoices(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, as_of: AsOfResource
) -> dg.MaterializeResult:
    from ingestion.billing.finalization import finalize

    # the as_of resource is "today" (UTC) unless a replay pins it
    day = as_of_for_partition(context.partition_key, as_of.date())
    grace = grace_days()
    result = finalize(warehouse.config(), day, grace_days=grace)
    for item in result.blocked:
        context.log.warning(
            f"blocked {item.subscription_id} {item.period_start}..{item.period_end}: "
            + "; ".join(item.reasons)
        )
    numbers = [invoice.number for invoice in result.finalized]
    context.log.info(
        f"finalized {len(numbers)} invoices as of {day} (grace {grace} d), "
        f"{len(result.blocked)} blocked, {result.already_finalized} already final"
    )
    return dg.MaterializeResult(
        metadata={
            "as_of": day.isoformat(),
            "grace_days": grace,
            "finalized": len(numbers),
            "blocked": len(result.blocked),
            "already_finalized": result.already_finalized,
            "invoice_numbers": dg.MetadataValue.json(numbers),
            "blocked_invoices": dg.MetadataValue.json(
                [
                    {
                        "subscription_id": b.subscription_id,
                        "period_start": b.period_start.isoformat(),
                        "period_end": b.period_end.isoformat(),
                        "reasons": list(b.reasons),
                    }
                    for b in result.blocked
                ]
            ),
            "finalized_totals": dg.MetadataValue.md(_totals_table(result.finalized)),
        }
    )


def _totals_table(finalized: list) -> str:
    """A markdown table of what was finalized; amounts printed from their Decimals."""
    if not finalized:
        return "nothing finalized"
    rows = [
        f"| {i.number} | {i.subscription_id} | {i.period_start} | {i.period_end} | "
        f"{i.total} {i.currency} |"
        for i in finalized[:200]
    ]
    more = [f"\n... and {len(finalized) - 200} more"] if len(finalized) > 200 else []
    return "\n".join(
        ["| number | subscription | start | end | total |", "|---|---|---|---|---|"] + rows
    ) + "".join(more)
