"""Is delivery keeping up? Two judgements, shared by the Dagster checks and the dashboards:

- failing: enabled endpoints whose latest attempt failed or gave up (a receiver is down, or
  refuses us);
- backlog: notifications older than VALUEVERSE_NOTIFY_BACKLOG_MINUTES not yet delivered to an
  enabled endpoint meant to get them (the delivery job is not running, or cannot keep up).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from ingestion.notifications.store import (
    has_notify_tables,
    latest_status,
    load_endpoints,
    undelivered_before,
)
from ingestion.warehouse import WarehouseConfig, connect

FAILED = ("failed", "gave_up")


@dataclass(frozen=True)
class Health:
    endpoints: int  # enabled
    failing: list[str]  # endpoint ids
    backlog: int  # (notification, endpoint) pairs older than the limit, undelivered
    backlog_minutes: int


def health(config: WarehouseConfig, now: datetime, backlog_minutes: int) -> Health:
    """Read-only (a DuckDB file held by a writer raises WarehouseBusy: callers skip)."""
    cutoff = now - timedelta(minutes=backlog_minutes)
    with connect(config, read_only=True) as db:
        if not has_notify_tables(db):
            return Health(0, [], 0, backlog_minutes)
        endpoints = load_endpoints(db, enabled_only=True)
        failing = [e.endpoint_id for e in endpoints if (latest_status(db, e) or ("",))[0] in FAILED]
        backlog = sum(undelivered_before(db, e, cutoff) for e in endpoints)
    return Health(len(endpoints), failing, backlog, backlog_minutes)
