"""Notification delivery (webhooks, email), merged into `dagster_project/definitions.py`.

- jobs.py: `deliver_notifications_job` and `notifications_delivery_sensor`, which starts it
  whenever something in the outbox is due; a run of its own, never a step of billing's jobs,
  so a slow or failing receiver cannot hold up finalization or collection;
- checks.py: the `notifications/outbox` asset and its checks (deliveries failing, the outbox
  backing up), reported by `notifications_health_sensor` so they turn red without anyone
  running them.
"""

from __future__ import annotations

import dagster as dg

from dagster_project.defs.notifications.checks import (
    NOTIFICATION_OUTBOX,
    notifications_health_sensor,
    outbox_checks,
)
from dagster_project.defs.notifications.jobs import (
    deliver_notifications_job,
    notifications_delivery_sensor,
)

NOTIFICATIONS_DEFS = dg.Definitions(
    assets=[NOTIFICATION_OUTBOX],
    asset_checks=outbox_checks,
    jobs=[deliver_notifications_job],
    sensors=[notifications_delivery_sensor, notifications_health_sensor],
)
