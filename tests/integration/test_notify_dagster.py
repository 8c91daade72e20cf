"""Delivery in Dagster: the job and sensors are registered, the sensor starts the job only when
something is due, the job delivers to a real receiver, and the health checks turn red when an
endpoint fails or the outbox backs up (and green again)."""

from __future__ import annotations

from datetime import timedelta

import dagster as dg
import pytest

from dagster_project.defs.notifications.checks import (
    BACKLOG_CHECK,
    FAILING_CHECK,
    notifications_health_sensor,
    verdicts,
)
from dagster_project.defs.notifications.jobs import (
    deliver_notifications_job,
    notifications_delivery_sensor,
)
from ingestion.billing.outbox import record
from ingestion.notifications.endpoints import add_endpoint, utc_now
from ingestion.notifications.store import ensure_notify_store
from ingestion.warehouse import resolve, transaction
from tests.integration.conftest import WarehouseAt
from tests.integration.notify_support import SIGNING_KEY, receiver


@pytest.fixture(autouse=True)
def _signing_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VALUEVERSE_WEBHOOK_SIGNING_KEY", SIGNING_KEY)
    monkeypatch.setenv("VALUEVERSE_WEBHOOK_TIMEOUT_SECONDS", "5")


def test_the_job_and_sensors_are_registered() -> None:
    from dagster_project.definitions import defs

    repo = defs.get_repository_def()
    assert "deliver_notifications_job" in {job.name for job in repo.get_all_jobs()}
    sensors = {s.name for s in repo.sensor_defs}
    assert {"notifications_delivery_sensor", "notifications_health_sensor"} <= sensors
    checks = {key.name for key in defs.resolve_asset_graph().asset_check_keys}
    assert {FAILING_CHECK, BACKLOG_CHECK} <= checks


def _state(url: str) -> dict[str, bool]:
    return {v.check_name: v.passed for v in verdicts(resolve(url))}


def test_the_sensor_starts_the_job_which_delivers_and_checks_follow(duckdb_url: str) -> None:
    config = resolve(duckdb_url)
    ensure_notify_store(config)
    warehouse = WarehouseAt(url=duckdb_url)
    context = dg.build_sensor_context(resources={"warehouse": warehouse})
    with receiver(statuses=[500]) as hook:
        add_endpoint(config, hook.url, "*", None)
        assert isinstance(notifications_delivery_sensor(context), dg.SkipReason)
        old = utc_now() - timedelta(hours=1)
        with transaction(config) as db:
            ident = record(db, "invoice.finalized", "VV-1", {"invoice_number": "VV-1"})
            record(db, "invoice.finalized", "VV-0", {"invoice_number": "VV-0"})
            # VV-0 as if written an hour ago, before the endpoint existed (DuckDB: no guards)
            db.execute("UPDATE billing.notifications SET recorded_at = %s"
                       " WHERE dedup_key = 'invoice.finalized:VV-0'", [old])  # fmt: skip
        request = notifications_delivery_sensor(context)
        assert isinstance(request, dg.RunRequest) and request.run_key.startswith("deliver-")
        result = deliver_notifications_job.execute_in_process(resources={"warehouse": warehouse})
        assert result.success
        assert result.output_for_node("deliver_notifications")["failed"] == 1
        assert _state(duckdb_url) == {FAILING_CHECK: False, BACKLOG_CHECK: True}
        reported = notifications_health_sensor(context)
        assert isinstance(reported, dg.SensorResult)
        assert [(e.check_name, e.passed) for e in reported.asset_events] == [(FAILING_CHECK, False)]
        # backing off until the retry is due: nothing for the sensor to start
        assert isinstance(notifications_delivery_sensor(context), dg.SkipReason)
    assert hook.ids() == [ident]
    # VV-0 predates the endpoint, so it is not owed to it; dated before VV-0, the endpoint
    # is owed an hour-old notification: the outbox is backed up
    with transaction(config) as db:
        db.execute("UPDATE notify.endpoints SET created_at = %s", [old - timedelta(minutes=1)])
    assert _state(duckdb_url) == {FAILING_CHECK: False, BACKLOG_CHECK: False}
