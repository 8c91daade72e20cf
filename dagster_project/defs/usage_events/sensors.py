"""Sensors that watch landing and report through the asset checks of `checks.py`.

Why asset-check evaluations: a failing check marks `landed_events` (or `marts/unbilled_usage`)
red in the asset graph and in the asset's Checks tab, with the numbers in its metadata, which
is where someone looking at the pipeline looks; a sensor tick log is not. The sensors emit an
evaluation only when a check changes state (the cursor remembers the last reported state), so
a long outage is one red mark, not one per tick; otherwise they skip with a reason that says
what they saw. Thresholds are read at every tick (settings.py), so a changed `.env` applies
without a reload.
"""

import json

import dagster as dg

from dagster_project.defs.usage_events.checks import Verdict, freshness_verdict, share_verdicts
from dagster_project.lib.settings import Thresholds
from dagster_project.lib.warehouse import WarehouseResource
from ingestion.warehouse import WarehouseError

_INTERVAL_SECONDS = 300


def _report(context: dg.SensorEvaluationContext, verdicts: list[Verdict]) -> dg.SensorResult:
    """Emit the verdicts whose state differs from the cursor's; skip with a summary otherwise."""
    previous: dict[str, bool] = json.loads(context.cursor) if context.cursor else {}
    state = {v.check_name: v.passed for v in verdicts}
    # nothing reported yet counts as passing: only a failure (or a recovery) is news
    changed = [v for v in verdicts if previous.get(v.check_name, True) != v.passed]
    summary = "; ".join(v.description for v in verdicts)
    cursor = json.dumps(state, sort_keys=True)
    failing = [v for v in changed if not v.passed]
    for verdict in failing:
        context.log.warning(verdict.description)
    if not changed:
        return dg.SensorResult(skip_reason=f"unchanged: {summary}", cursor=cursor)
    # a check that recovered is reported as passed (the asset turns green again)
    skip = None if failing else f"recovered: {summary}"
    return dg.SensorResult(
        asset_events=[v.evaluation() for v in changed], skip_reason=skip, cursor=cursor
    )


@dg.sensor(
    name="landed_events_freshness_sensor",
    minimum_interval_seconds=_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Newest landed event older than VALUEVERSE_FRESHNESS_HOURS (default 2): "
    "reports a failed landed_events_fresh check.",
)
def landed_events_freshness_sensor(
    context: dg.SensorEvaluationContext, warehouse: WarehouseResource
) -> dg.SensorResult | dg.SkipReason:
    try:
        verdict = freshness_verdict(warehouse.config(), Thresholds.from_env())
    except WarehouseError as exc:  # DuckDB busy with a build, or no warehouse yet
        return dg.SkipReason(f"freshness not checked: {exc}")
    return _report(context, [verdict])


@dg.sensor(
    name="landing_shares_sensor",
    minimum_interval_seconds=_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Reject, conflict and unbilled shares of the last 24 h over "
    "VALUEVERSE_MAX_REJECT_SHARE / _CONFLICT_SHARE / _UNBILLED_SHARE: reports failed checks.",
)
def landing_shares_sensor(
    context: dg.SensorEvaluationContext, warehouse: WarehouseResource
) -> dg.SensorResult | dg.SkipReason:
    try:
        verdicts = share_verdicts(warehouse.config(), Thresholds.from_env())
    except WarehouseError as exc:
        return dg.SkipReason(f"shares not checked: {exc}")
    return _report(context, verdicts)
