"""Pure parts of dagster_project: partitions, thresholds, landing judgements, the instance
file, failure records, the source mapping."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import dagster as dg
import pytest

from dagster_project.defs.alerts.sensors import record_failure
from dagster_project.defs.schedules import month_partition_key
from dagster_project.lib.instance import instance_yaml, psycopg2_url, write_instance
from dagster_project.lib.landing_stats import LandingCounts, judge_shares, staleness
from dagster_project.lib.partitions import as_of_for_partition, billing_months, month_end_exclusive
from dagster_project.lib.settings import Thresholds, grace_days, parse_as_of
from dagster_project.lib.translator import source_asset_key
from ingestion.warehouse import ConfigError


def test_month_end_and_partition_as_of() -> None:
    assert month_end_exclusive("2026-12-01") == date(2027, 1, 1)
    assert month_end_exclusive("2026-02-01") == date(2026, 3, 1)
    # a past month finalizes up to its end; the running month up to today
    assert as_of_for_partition("2026-08-01", date(2026, 11, 30)) == date(2026, 9, 1)
    assert as_of_for_partition("2026-11-01", date(2026, 11, 30)) == date(2026, 11, 30)
    assert month_partition_key(date(2026, 9, 4)) == "2026-09-01"
    keys = billing_months.get_partition_keys(current_time=datetime(2026, 9, 4))
    assert keys[0] == "2026-01-01" and keys[-1] == "2026-09-01"  # end_offset=1: the running month


def test_staleness() -> None:
    now = datetime(2026, 11, 30, 12, 0)
    assert staleness(now - timedelta(minutes=90), now, 2) is None
    assert staleness(now - timedelta(hours=3), now, 2) == timedelta(hours=1)
    assert staleness(None, now, 2) == timedelta(hours=2)


def _thresholds(**overrides: str) -> Thresholds:
    values = {
        "freshness_hours": 2,
        "max_reject_share": Decimal("0.01"),
        "max_conflict_share": Decimal("0.001"),
        "max_unbilled_share": Decimal("0.05"),
    }
    values.update({k: Decimal(v) for k, v in overrides.items()})
    return Thresholds(**values)  # type: ignore[arg-type]


def test_shares_are_exact_and_judged_against_limits() -> None:
    counts = LandingCounts(
        batches=3,
        accepted=980,
        duplicates=9,
        conflicts=1,
        rejected=10,
        newest_landed_at=None,
        events_rated=980,
        unbilled=49,
    )
    findings = {f.name: f for f in judge_shares(counts, _thresholds())}
    assert findings["reject_share"].share == Decimal("0.01")  # exactly at the limit: ok
    assert findings["reject_share"].ok
    assert findings["conflict_share"].share == Decimal("0.001") and findings["conflict_share"].ok
    assert findings["unbilled_share"].ok  # 49/980 = 0.05
    over = {f.name: f.ok for f in judge_shares(counts, _thresholds(max_reject_share="0.0099"))}
    assert over == {"reject_share": False, "conflict_share": True, "unbilled_share": True}
    empty = LandingCounts(0, 0, 0, 0, 0, None)
    assert all(f.ok and f.share == 0 for f in judge_shares(empty, _thresholds()))


def test_thresholds_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "VALUEVERSE_FRESHNESS_HOURS",
        "VALUEVERSE_MAX_REJECT_SHARE",
        "VALUEVERSE_MAX_CONFLICT_SHARE",
        "VALUEVERSE_MAX_UNBILLED_SHARE",
    ):
        monkeypatch.delenv(name, raising=False)
    assert Thresholds.from_env() == _thresholds()
    monkeypatch.setenv("VALUEVERSE_MAX_REJECT_SHARE", "1.5")
    with pytest.raises(ConfigError, match="between 0 and 1"):
        Thresholds.from_env()
    monkeypatch.setenv("VALUEVERSE_MAX_REJECT_SHARE", "a lot")
    with pytest.raises(ConfigError, match="VALUEVERSE_MAX_REJECT_SHARE"):
        Thresholds.from_env()
    monkeypatch.setenv("VALUEVERSE_FINALIZE_GRACE_DAYS", "5")
    assert grace_days() == 5
    monkeypatch.setenv("VALUEVERSE_FINALIZE_GRACE_DAYS", "-1")
    with pytest.raises(ConfigError, match="between 0 and 366"):
        grace_days()
    assert parse_as_of("2026-11-01") == date(2026, 11, 1)
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        parse_as_of("11/01/2026")


def test_instance_file_keeps_the_storage_url_out_of_the_file(tmp_path: Path) -> None:
    secret = "postgresql://dagster:s3cret@db:5432/dagster"
    env = write_instance(tmp_path, {"DAGSTER_PG_URL": secret})
    text = (tmp_path / "dagster.yaml").read_text()
    assert "s3cret" not in text and "env: DAGSTER_PG_STORAGE_URL" in text
    assert env["DAGSTER_PG_STORAGE_URL"] == "postgresql+psycopg2://dagster:s3cret@db:5432/dagster"
    assert env["DAGSTER_HOME"] == str(tmp_path.resolve())
    sqlite = instance_yaml(False, tmp_path)
    assert f"base_dir: {tmp_path.resolve() / 'storage'}" in sqlite
    assert "default_limit: 1" in sqlite
    assert psycopg2_url("postgres://u@h/d") == "postgresql+psycopg2://u@h/d"
    with pytest.raises(ValueError):
        psycopg2_url("mysql://u@h/d")


def test_run_failure_record(tmp_path: Path) -> None:
    path = tmp_path / "alerts" / "run_failures.jsonl"
    record_failure("run-1", "usage_refresh_job", "dbt build failed", path)
    record_failure("run-2", "finalization_job", "blocked", path)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(r["run_id"], r["job"], r["error"]) for r in rows] == [
        ("run-1", "usage_refresh_job", "dbt build failed"),
        ("run-2", "finalization_job", "blocked"),
    ]


def test_raw_sources_map_onto_the_assets_that_write_them() -> None:
    assert source_asset_key("catalog_plans") == dg.AssetKey("catalog")
    assert source_asset_key("catalog_versions") == dg.AssetKey("catalog")
    assert source_asset_key("events") == dg.AssetKey("landed_events")
    assert source_asset_key("rejected_events") == dg.AssetKey("landed_events")
