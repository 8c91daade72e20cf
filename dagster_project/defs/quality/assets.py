"""`data_quality`: the Great Expectations report on the marts, and the gate in front of billing.

The expectations live in `ingestion.quality` (written for this project's rules: every event
accounted for, totals equal their lines, currencies consistent...). Dagster runs them after the
dbt marts, links the Data Docs from the materialization, and turns "no critical expectation
failed" into the blocking asset check `critical_expectations_pass`: when it fails, the run stops
there and `finalized_invoices` is not materialized, and the asset graph shows why. Finalization
also reads the stored results itself (ingestion/billing/finalization.py), so a finalization started
outside Dagster is gated too.
"""

import dagster as dg

from dagster_project.lib.as_of import AsOfResource
from dagster_project.lib.settings import quality_docs_dir
from dagster_project.lib.warehouse import WAREHOUSE_POOL, WarehouseResource

DATA_QUALITY_KEY = dg.AssetKey("data_quality")
CRITICAL_CHECK = "critical_expectations_pass"
# the marts the expectations read; the lineage edge makes the hourly job run quality after dbt
QUALITY_INPUTS = [
    dg.AssetKey(["marts", name])
    for name in (
        "invoices",
        "invoice_lines",
        "invoice_line_events",
        "rated_usage",
        "unbilled_usage",
    )
]


@dg.asset(
    key=DATA_QUALITY_KEY,
    deps=QUALITY_INPUTS,
    group_name="quality",
    kinds={"python", "greatexpectations"},
    pool=WAREHOUSE_POOL,
    check_specs=[
        dg.AssetCheckSpec(
            CRITICAL_CHECK,
            asset=DATA_QUALITY_KEY,
            blocking=True,
            description="No critical expectation failed; blocks finalization when it fails.",
        )
    ],
    description="Great Expectations validation of the marts, with Data Docs.",
)
def data_quality(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, as_of: AsOfResource
) -> dg.MaterializeResult:
    from ingestion.quality import run_quality

    report = run_quality(warehouse.config(), as_of.date(), docs_dir=quality_docs_dir())
    for failure in report.critical_failures:
        context.log.error(f"critical expectation failed: {failure}")
    for warning in report.warnings:
        context.log.warning(f"expectation warning: {warning}")
    docs = report.docs_index
    return dg.MaterializeResult(
        metadata={
            "run_id": str(report.run_id),
            "success": report.success,
            "critical_failures": len(report.critical_failures),
            "warnings": len(report.warnings),
            "skipped": len(report.skipped),
            "data_docs": dg.MetadataValue.path(str(docs)),
            "data_docs_url": dg.MetadataValue.url(docs.resolve().as_uri()),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=CRITICAL_CHECK,
                passed=bool(report.success),
                severity=dg.AssetCheckSeverity.ERROR,
                metadata={
                    "critical_failures": dg.MetadataValue.json(list(report.critical_failures)),
                    "warnings": dg.MetadataValue.json(list(report.warnings)),
                    "skipped": dg.MetadataValue.json(list(report.skipped)),
                },
                description="; ".join(report.critical_failures) or "no critical failure",
            )
        ],
    )
