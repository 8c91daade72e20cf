"""The Dagster definitions load (parsing the dbt project when needed) and hold exactly the
assets, checks, jobs, schedules and sensors the orchestration design names."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from dagster_project.definitions import defs
from ingestion.billing.dbt_runner import code_version
from tests.conftest import ROOT

PYTHON_ASSETS = {"catalog", "landed_events", "data_quality", "finalized_invoices"}
OWN_CHECKS = {
    ("data_quality", "critical_expectations_pass"),
    ("landed_events", "landed_events_fresh"),
    ("landed_events", "reject_share_within_limit"),
    ("landed_events", "conflict_share_within_limit"),
    ("marts/unbilled_usage", "unbilled_share_within_limit"),
    ("notifications/outbox", "deliveries_succeeding"),
    ("notifications/outbox", "outbox_not_backed_up"),
}
NOTIFICATION_ASSETS = {"notifications/outbox"}  # defs/notifications: delivery health


def _repo() -> dg.RepositoryDefinition:
    return defs.get_repository_def()


def _dbt_model_keys() -> set[str]:
    """<layer>/<model> for every model file: the layer folder is the model's schema."""
    models = ROOT / "dbt" / "models"
    return {f"{p.relative_to(models).parts[0]}/{p.stem}" for p in models.rglob("*.sql")}


def test_every_asset_key() -> None:
    keys = {key.to_user_string() for key in _repo().asset_graph.get_all_asset_keys()}
    models = _dbt_model_keys()
    # every dbt model is an asset keyed <schema>/<model>, the name analysts query
    assert {"marts/invoices", "marts/invoice_lines", "marts/unbilled_usage"} <= models
    assert {k for k in keys if k.split("/")[0] in ("staging", "intermediate", "marts")} == models
    assert "reference/currencies" in keys  # the seed
    # the raw sources are the Python assets that write them: one lineage graph
    assert not any(key.startswith("raw/") for key in keys)
    others = keys - models - {"reference/currencies"} - PYTHON_ASSETS - NOTIFICATION_ASSETS
    assert PYTHON_ASSETS | NOTIFICATION_ASSETS <= keys
    # the Python-owned billing store (finalized invoices, payments) stays as dbt sources:
    # mapping billing.finalized_invoices onto finalized_invoices would be a cycle
    # (finalization reads marts.invoices, which reads the store)
    assert "billing/finalized_invoices" in others
    assert {key.split("/")[0] for key in others} == {"billing"}


def test_lineage_runs_from_landing_through_dbt_to_finalization() -> None:
    graph = _repo().asset_graph
    staging_events = graph.get(dg.AssetKey(["staging", "stg_raw__events"]))
    assert dg.AssetKey("landed_events") in staging_events.parent_keys
    staging_plans = graph.get(dg.AssetKey(["staging", "stg_raw__plans"]))
    assert dg.AssetKey("catalog") in staging_plans.parent_keys
    quality = graph.get(dg.AssetKey("data_quality"))
    assert dg.AssetKey(["marts", "invoices"]) in quality.parent_keys
    final = graph.get(dg.AssetKey("finalized_invoices"))
    assert dg.AssetKey("data_quality") in final.parent_keys
    assert final.partitions_def is not None


def test_asset_checks() -> None:
    checks = {(c.asset_key.to_user_string(), c.name) for c in _repo().asset_graph.asset_check_keys}
    assert OWN_CHECKS <= checks
    dbt_checks = checks - OWN_CHECKS
    assert len(dbt_checks) > 100  # the dbt tests, one check each
    assert ("marts/invoices", "unique_invoices_invoice_id") in checks
    # every other check is a dbt test on a dbt model or seed
    layers = {key.split("/")[0] for key, _ in dbt_checks}
    assert layers <= {"staging", "intermediate", "marts", "reference"}
    spec = _repo().asset_graph.get(dg.AssetKey("data_quality")).assets_def
    blocking = [s for s in spec.check_specs if s.name == "critical_expectations_pass"]
    assert blocking and blocking[0].blocking


def test_jobs_schedules_sensors() -> None:
    """Ours exactly, plus whatever the payments and notifications packages contribute
    (merged through PAYMENTS_DEFS and NOTIFICATIONS_DEFS: their own issues own those names)."""
    from dagster_project.defs.notifications import NOTIFICATIONS_DEFS
    from dagster_project.defs.payments import PAYMENTS_DEFS

    repo = _repo()
    payment_jobs = {job.name for job in PAYMENTS_DEFS.jobs or []}  # type: ignore[union-attr]
    payment_schedules = {s.name for s in PAYMENTS_DEFS.schedules or []}  # type: ignore[union-attr]
    payment_sensors = {s.name for s in PAYMENTS_DEFS.sensors or []}  # type: ignore[union-attr]
    payment_jobs |= {job.name for job in NOTIFICATIONS_DEFS.jobs or []}  # type: ignore[union-attr]
    payment_sensors |= {s.name for s in NOTIFICATIONS_DEFS.sensors or []}  # type: ignore[union-attr]
    assert {job.name for job in repo.get_all_jobs()} - {"__ASSET_JOB"} == {
        "usage_refresh_job",
        "finalization_job",
    } | payment_jobs
    schedules = {s.name: s.job_name for s in repo.schedule_defs}
    assert set(schedules) == {"usage_refresh_hourly", "finalization_daily"} | payment_schedules
    assert schedules["usage_refresh_hourly"] == "usage_refresh_job"
    assert schedules["finalization_daily"] == "finalization_job"
    assert {s.name for s in repo.sensor_defs} == {
        "landed_events_freshness_sensor",
        "landing_shares_sensor",
        "run_failure_recorder",
    } | payment_sensors
    refresh = repo.get_job("usage_refresh_job")
    selected = {k.to_user_string() for k in refresh.asset_layer.selected_asset_keys}
    assert {"catalog", "landed_events", "data_quality", "marts/invoices"} <= selected
    assert "finalized_invoices" not in selected
    finalization = repo.get_job("finalization_job")
    assert {k.to_user_string() for k in finalization.asset_layer.selected_asset_keys} == {
        "data_quality",
        "finalized_invoices",
    }


def test_resources_come_from_the_environment() -> None:
    from dagster_project.defs.payments import PAYMENTS_DEFS

    payment_resources = set(PAYMENTS_DEFS.resources or {})
    assert set(defs.resources or {}) == {"warehouse", "dbt", "as_of"} | payment_resources


def test_definitions_load_on_a_fresh_clone_and_parse_dbt_once(tmp_path: Path) -> None:
    """No dbt target folder yet (a fresh clone): loading parses the project; loading again
    reuses the manifest while the dbt project's code_version is unchanged."""
    env = {**os.environ, "VALUEVERSE_DBT_TARGET_DIR": str(tmp_path / "target")}
    env.pop("VALUEVERSE_WAREHOUSE", None)
    load = [
        sys.executable,
        "-c",
        "from dagster_project.definitions import defs; print(len(defs.assets))",
    ]
    first = subprocess.run(load, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr[-3000:]
    manifest = tmp_path / "target" / "dagster-manifest" / "manifest.json"
    assert manifest.is_file()
    assert (manifest.parent / "manifest.code_version").read_text() == code_version()
    # parsing touched no warehouse: no DuckDB file appeared in the working directory
    assert not list(tmp_path.glob("*.duckdb"))
    parsed_at = manifest.stat().st_mtime_ns
    second = subprocess.run(
        load, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert second.returncode == 0, second.stderr[-3000:]
    assert manifest.stat().st_mtime_ns == parsed_at
    assert first.stdout == second.stdout


@pytest.mark.parametrize(
    ("job", "resource", "field", "value"),
    [
        ("payment_collection_job", "payments", "api_base", "http://attacker.example"),
        ("payment_collection_job", "payments", "api_key", "sk_live_mine"),
        ("payment_collection_job", "warehouse", "url", "postgresql://me@attacker/db"),
    ],
)
def test_no_launch_can_move_the_secret_or_the_money_elsewhere(
    job: str, resource: str, field: str, value: str
) -> None:
    """A launch from the UI could set `payments.api_base` to its own host while the key still
    came from STRIPE_API_KEY (the key was sent there as the Bearer token), or point the
    warehouse elsewhere. The bound resources have no field a run config can set."""
    definition = _repo().get_job(job)
    run_config = {
        "ops": {"collect_payments": {"config": {"now": "2026-02-05T07:00:00Z"}}},
        "resources": {resource: {"config": {field: value}}},
    }
    with pytest.raises(dg.DagsterInvalidConfigError, match=field):
        definition.execute_in_process(run_config=run_config)
    assert not definition.resource_defs[resource].config_schema.as_field().config_type.fields
