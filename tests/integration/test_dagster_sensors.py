"""Schedules and sensors of dagster_project, evaluated against a real DuckDB warehouse built
through the `valueverse` CLI (catalog load, events load, build), as an operator would have it.

Over-threshold data is made the way it happens in production: a file with many invalid lines
(rejects) and an event re-sent with different content (a conflict).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest

from dagster_project.defs.schedules import finalization_daily, usage_refresh_schedule
from dagster_project.defs.usage_events.sensors import (
    landed_events_freshness_sensor,
    landing_shares_sensor,
)
from tests.conftest import SCENARIOS, run_cli, scratch_pg
from tests.integration.conftest import WarehouseAt

pytestmark = pytest.mark.usefixtures("dagster_dbt_target_dir")
SCENARIO = SCENARIOS / "04_package_count"
AS_OF = "2026-02-01"
_ENV = (
    "VALUEVERSE_FRESHNESS_HOURS",
    "VALUEVERSE_MAX_REJECT_SHARE",
    "VALUEVERSE_MAX_CONFLICT_SHARE",
    "VALUEVERSE_MAX_UNBILLED_SHARE",
)


@pytest.fixture(autouse=True)
def _default_thresholds(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)


def _load_and_build(url: str, cwd: Path, *event_files: Path) -> None:
    loaded = run_cli(url, "catalog", "load", str(SCENARIO / "catalog.yml"), cwd=cwd)
    assert loaded.returncode == 0, loaded.stderr
    for events in event_files:
        landed = run_cli(url, "events", "load", str(events), cwd=cwd)
        assert landed.returncode == 0, landed.stderr
    built = run_cli(url, "build", "--as-of", AS_OF, cwd=cwd)
    assert built.returncode == 0, built.stderr[-3000:]


@pytest.fixture(scope="module")
def clean_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Scenario 04: 42 accepted events, no reject, no conflict."""
    base = tmp_path_factory.mktemp("clean")
    url = f"duckdb:///{base}/warehouse.duckdb"
    _load_and_build(url, base, SCENARIO / "events.jsonl")
    yield url


def _noise(base: Path) -> Path:
    """20 invalid lines, one event re-sent with another quantity (a conflict) and one event of
    a customer without a subscription (accepted, unbilled)."""
    first = json.loads((SCENARIO / "events.jsonl").read_text().splitlines()[0])
    conflict = {**first, "quantity": 987654}
    stranger = {**first, "event_id": "evt-no-subscription", "customer_id": "cus_nobody"}
    noise = base / "noise.jsonl"
    noise.write_text(
        "".join(f'{{"event_id": "bad-{i}", "not": "an event"}}\n' for i in range(20))
        + json.dumps(conflict)
        + "\n"
        + json.dumps(stranger)
        + "\n"
    )
    return noise


@pytest.fixture(scope="module")
def noisy_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Scenario 04 plus the noise above, on DuckDB."""
    base = tmp_path_factory.mktemp("noisy")
    url = f"duckdb:///{base}/warehouse.duckdb"
    _load_and_build(url, base, SCENARIO / "events.jsonl", _noise(base))
    yield url


def _context(url: str, cursor: str | None = None) -> dg.SensorEvaluationContext:
    return dg.build_sensor_context(cursor=cursor, resources={"warehouse": WarehouseAt(url=url)})


def _failed(result: object) -> dict[str, dg.AssetCheckEvaluation]:
    assert isinstance(result, dg.SensorResult), result
    return {
        e.check_name: e
        for e in result.asset_events
        if isinstance(e, dg.AssetCheckEvaluation) and not e.passed
    }


def _skip_text(result: object) -> str:
    if isinstance(result, dg.SkipReason):
        return result.skip_message or ""
    assert isinstance(result, dg.SensorResult), result
    assert result.skip_reason is not None, result
    return result.skip_reason.skip_message or ""


def test_freshness_sensor_skips_when_events_are_fresh(clean_warehouse: str) -> None:
    result = landed_events_freshness_sensor(_context(clean_warehouse))
    text = _skip_text(result)
    assert "freshness ok" in text and "within 2 h" in text
    assert not getattr(result, "asset_events", [])


def test_freshness_sensor_reports_stale_events_once(
    clean_warehouse: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the events landed moments ago: a zero-hour limit makes them stale
    monkeypatch.setenv("VALUEVERSE_FRESHNESS_HOURS", "0")
    result = landed_events_freshness_sensor(_context(clean_warehouse))
    failed = _failed(result)
    assert set(failed) == {"landed_events_fresh"}
    assert failed["landed_events_fresh"].asset_key == dg.AssetKey("landed_events")
    assert "stale" in (failed["landed_events_fresh"].description or "")
    # the next tick with the cursor does not report the same outage again
    assert isinstance(result, dg.SensorResult)
    again = landed_events_freshness_sensor(_context(clean_warehouse, cursor=result.cursor))
    assert "unchanged" in _skip_text(again) and not getattr(again, "asset_events", [])
    # and when events are fresh again, the check is reported as passed (the asset turns green)
    monkeypatch.delenv("VALUEVERSE_FRESHNESS_HOURS")
    recovered = landed_events_freshness_sensor(_context(clean_warehouse, cursor=result.cursor))
    assert isinstance(recovered, dg.SensorResult)
    assert [e.passed for e in recovered.asset_events] == [True]


def test_freshness_sensor_on_an_empty_warehouse_reports_stale(tmp_path: Path) -> None:
    url = f"duckdb:///{tmp_path}/empty.duckdb"
    loaded = run_cli(url, "catalog", "load", str(SCENARIO / "catalog.yml"), cwd=tmp_path)
    assert loaded.returncode == 0, loaded.stderr
    failed = _failed(landed_events_freshness_sensor(_context(url)))
    assert "never" in (failed["landed_events_fresh"].description or "")


def test_shares_sensor_skips_under_thresholds(clean_warehouse: str) -> None:
    result = landing_shares_sensor(_context(clean_warehouse))
    text = _skip_text(result)
    assert "reject_share 0.000000 (0/42)" in text
    assert "conflict_share 0.000000 (0/42)" in text
    assert "unbilled_share" in text
    assert not getattr(result, "asset_events", [])


def test_shares_sensor_reports_rejects_and_conflicts_over_thresholds(noisy_warehouse: str) -> None:
    failed = _failed(landing_shares_sensor(_context(noisy_warehouse)))
    assert set(failed) == {"reject_share_within_limit", "conflict_share_within_limit"}
    rejects = failed["reject_share_within_limit"]
    assert rejects.asset_key == dg.AssetKey("landed_events")
    # 43 accepted + 20 rejected + 1 conflict = 64 messages
    assert rejects.metadata["numerator"].value == 20
    assert rejects.metadata["denominator"].value == 64
    assert failed["conflict_share_within_limit"].metadata["numerator"].value == 1


def test_shares_sensor_reports_unbilled_share_over_its_limit(
    noisy_warehouse: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 1 unbilled of 43 rated events (2.3 %): under the default 5 %, over a 1 % limit
    assert "unbilled_share_within_limit" not in _failed(
        landing_shares_sensor(_context(noisy_warehouse))
    )
    monkeypatch.setenv("VALUEVERSE_MAX_UNBILLED_SHARE", "0.01")
    failed = _failed(landing_shares_sensor(_context(noisy_warehouse)))
    unbilled = failed["unbilled_share_within_limit"]
    assert unbilled.asset_key == dg.AssetKey(["marts", "unbilled_usage"])
    assert (unbilled.metadata["numerator"].value, unbilled.metadata["denominator"].value) == (1, 43)


def test_usage_refresh_schedule_is_hourly_and_stopped() -> None:
    assert usage_refresh_schedule.cron_schedule == "0 * * * *"
    assert usage_refresh_schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    assert usage_refresh_schedule.job_name == "usage_refresh_job"


def test_finalization_schedule_runs_the_current_month_partition_once_a_day() -> None:
    when = datetime(2026, 9, 4, 6, 0, tzinfo=UTC)
    request = finalization_daily(dg.build_schedule_context(scheduled_execution_time=when))
    assert isinstance(request, dg.RunRequest)
    assert request.partition_key == "2026-09-01"
    assert request.run_key == "finalize-2026-09-04"
    assert finalization_daily.cron_schedule == "0 6 * * *"
    assert finalization_daily.default_status == dg.DefaultScheduleStatus.STOPPED


def test_run_failure_sensor_records_the_failure_under_dagster_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dagster_project.defs.alerts.sensors import run_failure_recorder

    @dg.op
    def explode() -> None:
        raise RuntimeError("warehouse unreachable")

    @dg.job
    def doomed() -> None:
        explode()

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    instance = dg.DagsterInstance.ephemeral()
    result = doomed.execute_in_process(instance=instance, raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.RUN_FAILURE)
    context = dg.build_run_status_sensor_context(
        sensor_name="run_failure_recorder",
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        dagster_event=failure,
    ).for_run_failure()
    run_failure_recorder(context)
    rows = [json.loads(line) for line in (tmp_path / "alerts" / "run_failures.jsonl").open()]
    assert [(r["run_id"], r["job"]) for r in rows] == [(result.run_id, "doomed")]
    assert "explode" in rows[0]["error"]


@pytest.mark.postgres
def test_sensors_on_postgresql(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same readings through the PostgreSQL path of the query helpers."""
    with scratch_pg() as url:
        _load_and_build(url, tmp_path, SCENARIO / "events.jsonl", _noise(tmp_path))
        failed = _failed(landing_shares_sensor(_context(url)))
        assert set(failed) == {"reject_share_within_limit", "conflict_share_within_limit"}
        assert failed["reject_share_within_limit"].metadata["denominator"].value == 64
        assert "freshness ok" in _skip_text(landed_events_freshness_sensor(_context(url)))
        monkeypatch.setenv("VALUEVERSE_MAX_UNBILLED_SHARE", "0.01")
        failed = _failed(landing_shares_sensor(_context(url)))
        unbilled = failed["unbilled_share_within_limit"]
        assert (unbilled.metadata["numerator"].value, unbilled.metadata["denominator"].value) == (
            1,
            43,
        )


def test_sensors_skip_while_another_process_writes_duckdb(clean_warehouse: str) -> None:
    """DuckDB allows one writing process and no readers beside it: a sensor tick during a
    landing or a dbt build skips with the reason instead of failing."""
    import subprocess
    import sys

    path = clean_warehouse.removeprefix("duckdb://")
    holder = subprocess.Popen(
        [sys.executable, "-c",
         f"import duckdb, time; c = duckdb.connect({path!r}); print('held', flush=True); "
         "time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        fresh = landed_events_freshness_sensor(_context(clean_warehouse))
        shares = landing_shares_sensor(_context(clean_warehouse))
    finally:
        holder.kill()
        holder.wait()
    assert "freshness not checked" in _skip_text(fresh) and "busy" in _skip_text(fresh)
    assert "shares not checked" in _skip_text(shares)
