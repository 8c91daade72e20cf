"""The whole Dagster pipeline on an embedded DuckDB, from a small generated sample, with real
components: the local Kafka-protocol broker (Tansu) feeding `landed_events`, dbt through
dagster-dbt, Great Expectations for `data_quality`, and finalization.

One module-scoped run (~35-60 s on this machine: one dbt build of every model and test)
serves the assertions; a second test corrupts one invoice total and shows the blocking
quality check stopping finalization.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import dagster as dg
import pytest

from dagster_project.defs.billing.assets import finalized_invoices
from dagster_project.defs.catalog.assets import catalog
from dagster_project.defs.dbt.assets import dbt_resource, valueverse_dbt_assets
from dagster_project.defs.quality.assets import data_quality
from dagster_project.defs.usage_events.assets import landed_events
from dagster_project.lib.as_of import AsOfResource
from ingestion.demo.generator import sample_as_of
from tests.conftest import query, run_cli
from tests.integration.conftest import WarehouseAt

pytestmark = pytest.mark.usefixtures("dagster_dbt_target_dir")
EVENTS = 3000
FINAL_MONTH = "2026-10-01"  # periods ending in October (and earlier ones) are due


@dataclass
class Pipeline:
    url: str
    base: Path
    result: dg.ExecuteInProcessResult
    seconds: float
    produced: int


def _resources(url: str) -> dict[str, object]:
    return {
        "warehouse": WarehouseAt(url=url),
        "dbt": dbt_resource(),
        "as_of": AsOfResource(as_of=sample_as_of().isoformat()),
    }


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    from ingestion.demo.broker import start_broker
    from ingestion.landing.kafka_clients import KafkaSettings
    from ingestion.landing.producer import produce_file

    base = tmp_path_factory.mktemp("dagster_e2e")
    sample = base / "sample"
    generated = run_cli(
        "duckdb:///unused",
        "sample",
        "generate",
        "--out-dir",
        str(sample),
        "--events",
        str(EVENTS),
        cwd=base,
    )
    assert generated.returncode == 0, generated.stderr
    url = f"duckdb:///{base}/warehouse.duckdb"
    env = {
        "VALUEVERSE_CATALOG": str(sample / "catalog.yml"),
        "VALUEVERSE_QUALITY_DIR": str(base / "quality"),
        "VALUEVERSE_KAFKA_SESSION_TIMEOUT_MS": "2000",
        "VALUEVERSE_KAFKA_HEARTBEAT_INTERVAL_MS": "500",
        "VALUEVERSE_GROUP": f"dagster-e2e-{os.getpid()}",
        "VALUEVERSE_INGEST_WORKERS": "0",
    }
    saved = {name: os.environ.get(name) for name in [*env, "KAFKA_BOOTSTRAP_SERVERS"]}
    with start_broker() as broker:
        os.environ.update(env, KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap)
        try:
            produced = produce_file(KafkaSettings.from_env(), sample / "events.jsonl")
            started = time.perf_counter()
            result = dg.materialize(
                [catalog, landed_events, valueverse_dbt_assets, data_quality, finalized_invoices],
                resources=_resources(url),
                partition_key=FINAL_MONTH,
            )
            seconds = time.perf_counter() - started
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
    print(f"dg.materialize of the whole pipeline: {seconds:.1f} s")
    yield Pipeline(url, base, result, seconds, produced)


def _metadata(result: dg.ExecuteInProcessResult, key: str) -> dict[str, object]:
    events = result.asset_materializations_for_node(key)
    assert events, f"{key} was not materialized"
    return {name: value.value for name, value in events[-1].metadata.items()}


def test_pipeline_run_succeeds(pipeline: Pipeline) -> None:
    assert pipeline.result.success
    assert pipeline.produced == EVENTS


def test_catalog_and_landing_metadata(pipeline: Pipeline) -> None:
    loaded = _metadata(pipeline.result, "catalog")
    assert loaded["mode"] == "loaded" and loaded["catalog_version"] == 1
    assert loaded["rows.subscriptions"] == 166
    landed = _metadata(pipeline.result, "landed_events")
    assert str(landed["mode"]).startswith("ingested from kafka")
    run = {k: landed[f"run.{k}"] for k in ("accepted", "duplicates", "conflicts", "rejected")}
    assert sum(run.values()) == EVENTS and run["rejected"] > 0 and run["accepted"] > 2900
    assert landed["total.accepted"] == run["accepted"]


def test_dbt_marts_materialized_and_checks_passed(pipeline: Pipeline) -> None:
    keys = {
        m.asset_key.to_user_string()
        for m in pipeline.result.get_asset_materialization_events()
        if m.asset_key is not None
    }
    assert {"marts/invoices", "marts/invoice_lines", "marts/unbilled_usage"} <= keys
    evaluations = pipeline.result.get_asset_check_evaluations()
    dbt_checks = [e for e in evaluations if e.asset_key.path[0] in ("staging", "marts")]
    assert len(dbt_checks) > 50
    assert all(e.passed for e in dbt_checks), [e.check_name for e in dbt_checks if not e.passed]


def test_every_invoice_total_equals_the_sum_of_its_lines(pipeline: Pipeline) -> None:
    invoices = query(pipeline.url, "SELECT invoice_id, total FROM marts.invoices")
    assert len(invoices) > 100
    sums = dict(
        query(pipeline.url, "SELECT invoice_id, sum(amount) FROM marts.invoice_lines GROUP BY 1")
    )
    wrong = [(i, t, sums.get(i)) for i, t in invoices if Decimal(t) != Decimal(sums.get(i, 0))]
    assert wrong == []
    assert all(isinstance(t, Decimal) for _, t in invoices[:10])


def test_data_quality_passed_and_links_its_data_docs(pipeline: Pipeline) -> None:
    meta = _metadata(pipeline.result, "data_quality")
    assert meta["success"] is True and meta["critical_failures"] == 0
    docs = Path(str(meta["data_docs"]))
    assert docs.name == "index.html" and docs.is_file()
    assert docs.is_relative_to(pipeline.base / "quality")
    checks = {e.check_name: e for e in pipeline.result.get_asset_check_evaluations()}
    assert checks["critical_expectations_pass"].passed


def test_finalized_invoices_got_numbers(pipeline: Pipeline) -> None:
    meta = _metadata(pipeline.result, "finalized_invoices")
    numbers = meta["invoice_numbers"]
    assert isinstance(numbers, list) and meta["finalized"] == len(numbers) > 0
    assert meta["as_of"] == "2026-11-01" and meta["blocked"] == 0
    stored = query(
        pipeline.url, "SELECT invoice_number, period_end FROM billing.finalized_invoices"
    )
    assert sorted(n for n, _ in stored) == sorted(numbers)
    # grace 3 days before 2026-11-01: the October periods (ending 2026-11-01) are not due yet
    assert max(end for _, end in stored).isoformat() <= "2026-10-29"


def test_failed_critical_expectation_blocks_finalization(pipeline: Pipeline) -> None:
    """Corrupt one invoice total: the blocking check fails, finalization does not run."""
    import duckdb

    con = duckdb.connect(pipeline.url.removeprefix("duckdb://"))
    try:
        con.execute(
            "UPDATE marts.invoices SET total = total + 1 WHERE invoice_id = "
            "(SELECT min(invoice_id) FROM marts.invoices WHERE status <> 'finalized')"
        )
    finally:
        con.close()
    os.environ["VALUEVERSE_QUALITY_DIR"] = str(pipeline.base / "quality2")
    try:
        result = dg.materialize(
            [data_quality, finalized_invoices],
            resources=_resources(pipeline.url),
            partition_key="2026-11-01",
            raise_on_error=False,
        )
    finally:
        os.environ.pop("VALUEVERSE_QUALITY_DIR", None)
    check = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert check["critical_expectations_pass"].passed is False
    assert not result.asset_materializations_for_node("finalized_invoices")
    assert not result.success
