"""Delivery health as asset checks on `notifications/outbox` (ingestion/notifications/health.py):

- `deliveries_succeeding`: no enabled endpoint's latest attempt failed or gave up;
- `outbox_not_backed_up`: nothing older than VALUEVERSE_NOTIFY_BACKLOG_MINUTES (30) is still
  undelivered to an enabled endpoint meant to get it.

Runnable by hand, and reported by `notifications_health_sensor` (every 5 min, on a change of
state only, as the landing checks are) so the asset turns red in the graph by itself. Severity
WARN: a receiver being down never stops billing.
"""

import dagster as dg

from dagster_project.defs.usage_events.checks import Verdict
from dagster_project.defs.usage_events.sensors import _report
from dagster_project.lib.warehouse import WAREHOUSE_POOL, WarehouseResource
from ingestion.warehouse import WarehouseConfig, WarehouseError

OUTBOX_KEY = dg.AssetKey(["notifications", "outbox"])
NOTIFICATION_OUTBOX = dg.AssetSpec(
    OUTBOX_KEY,
    description="billing.notifications: what billing's state changes recorded for delivery.",
    group_name="notifications",
)
FAILING_CHECK = "deliveries_succeeding"
BACKLOG_CHECK = "outbox_not_backed_up"


def verdicts(config: WarehouseConfig) -> list[Verdict]:
    from ingestion.notifications.endpoints import utc_now
    from ingestion.notifications.health import health
    from ingestion.notifications.settings import DeliverySettings

    minutes = DeliverySettings.from_env().backlog_minutes
    state = health(config, utc_now(), minutes)
    failing = ", ".join(state.failing)
    return [
        Verdict(OUTBOX_KEY, FAILING_CHECK, not state.failing,
                f"failing endpoints: {failing}" if failing else
                f"every one of {state.endpoints} enabled endpoints delivered its latest attempt",
                {"failing_endpoints": len(state.failing), "enabled_endpoints": state.endpoints}),
        Verdict(OUTBOX_KEY, BACKLOG_CHECK, state.backlog == 0,
                f"{state.backlog} deliveries older than {minutes} min are still pending",
                {"pending_older_than_limit": state.backlog, "limit_minutes": minutes}),
    ]  # fmt: skip


def _check(name: str, text: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(asset=OUTBOX_KEY, name=name, pool=WAREHOUSE_POOL, description=text)
    def _run(warehouse: WarehouseResource) -> dg.AssetCheckResult:
        return next(v for v in verdicts(warehouse.config()) if v.check_name == name).result()

    return _run


outbox_checks = [
    _check(FAILING_CHECK, "No enabled endpoint's latest delivery attempt failed."),
    _check(BACKLOG_CHECK, "No notification waits longer than VALUEVERSE_NOTIFY_BACKLOG_MINUTES."),
]


@dg.sensor(
    name="notifications_health_sensor",
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Reports failed deliveries_succeeding / outbox_not_backed_up checks on "
    "notifications/outbox.",
)
def notifications_health_sensor(
    context: dg.SensorEvaluationContext, warehouse: WarehouseResource
) -> dg.SensorResult | dg.SkipReason:
    try:
        judged = verdicts(warehouse.config())
    except WarehouseError as exc:
        return dg.SkipReason(f"delivery health not checked: {exc}")
    return _report(context, judged)
