"""The dashboards' test warehouse, built once per test run by the CLI's commands (run_step).

Scenario data (tests/scenarios/16_late_usage_adjustments: finalized January, late usage billed
as adjustments; tests/scenarios/02_graduated_tiers: tier math) merged into one catalog, plus a
yearly EUR plan (a second currency, MRR spread over twelve months):

    catalog load; events load (both scenarios); build --as-of 2026-02-04;
    invoices finalize --as-of 2026-02-04; events load events_late.jsonl; build --as-of 2026-11-04;
    one data-quality run written through the quality module's own writer.

`without_optional_tables` copies it and drops what other components create (payments marts,
dunning, quality results, the build log), for the pages' "missing table" messages.
"""

from __future__ import annotations

import os
import shutil
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import yaml

from tests.conftest import SCENARIOS, once_per_run, run_step

LATE = SCENARIOS / "16_late_usage_adjustments"
TIERS = SCENARIOS / "02_graduated_tiers"
AS_OF = "2026-11-04"
DOCS_INDEX = "/tmp/valueverse-quality-test/data_docs/local_site/index.html"

EUR_PLAN = {
    "code": "eu_year",
    "currency": "EUR",
    "interval": "year",
    "fixed_fee": "120.00",
    "charges": [{"metric": "api", "model": "per_unit", "unit_price": "0.01"}],
}


def _ok(url: str, cwd: Path, *args: str) -> str:
    result = run_step(url, *args, cwd=cwd)
    assert result.returncode == 0, (args, result.stderr[-3000:])
    return result.stdout


def merged_catalog(out: Path) -> Path:
    late, tiers = (yaml.safe_load((d / "catalog.yml").read_text()) for d in (LATE, TIERS))
    catalog = {key: late.get(key, []) + tiers.get(key, []) for key in late.keys() | tiers.keys()}
    catalog["plans"].append(EUR_PLAN)
    catalog["customers"].append({"id": "cus_eu", "currency": "EUR"})
    catalog["subscriptions"].append(
        {"id": "sub_eu", "customer": "cus_eu", "plan": "eu_year", "start": "2025-01-01"}
    )
    path = out / "catalog.yml"
    path.write_text(yaml.safe_dump(catalog, sort_keys=False))
    return path


def _quality_run(url: str) -> None:
    from ingestion.quality.checks import ResultRow
    from ingestion.quality.results import write_results
    from ingestion.warehouse import resolve

    rows = [
        ResultRow("landing", "event ids are unique", "event_id", critical=True, success=True,
                  observed="0 duplicates"),
        ResultRow("billing", "invoice total equals the sum of its lines", "total",
                  critical=True, success=True, observed=None),
        ResultRow("landing", "reject rate below threshold", None, critical=False,
                  success=False, observed="0.2 > 0.05"),
    ]  # fmt: skip
    write_results(
        resolve(url), "dash-run-1", datetime.now(UTC).replace(tzinfo=None),
        date(2026, 11, 4), rows, 0, Path(DOCS_INDEX),
    )  # fmt: skip


def build_warehouse(base: Path, url: str) -> str:
    """Build the dashboards' data into the warehouse at `url` (a copy of the session's built,
    empty warehouse), working in `base`; returns `url`."""
    base.mkdir(parents=True, exist_ok=True)
    _ok(url, base, "catalog", "load", str(merged_catalog(base)))
    _ok(url, base, "events", "load", str(LATE / "events.jsonl"), str(TIERS / "events.jsonl"))
    _ok(url, base, "build", "--as-of", "2026-02-04")
    _ok(url, base, "invoices", "finalize", "--as-of", "2026-02-04")
    _ok(url, base, "events", "load", str(LATE / "events_late.jsonl"))
    _ok(url, base, "build", "--as-of", AS_OF)
    _quality_run(url)
    return url


OPTIONAL = [
    "marts.accounts_receivable_by_customer",
    "marts.accounts_receivable",
    "marts.collection_rate",
    "marts.payments",
    "billing.dunning_events",
    "quality.expectation_results",
    "quality.runs",
    "analytics.valueverse_build_log",
]


def without_optional_tables(url: str, out: Path) -> str:
    """A copy of the warehouse without the tables other components create."""
    source = Path(url[len("duckdb://") :])
    path = out / "bare.duckdb"
    shutil.copy(source, path)
    con = duckdb.connect(str(path))
    try:
        for name in OPTIONAL:
            kind = con.execute(
                "select table_type from information_schema.tables"
                " where table_schema || '.' || table_name = ?",
                [name],
            ).fetchone()
            if kind:
                con.execute(f"drop {'view' if kind[0] == 'VIEW' else 'table'} {name} cascade")
    finally:
        con.close()
    return f"duckdb://{path}"


def session_warehouse(run_folder: Path, template: Path) -> str:
    """The built DuckDB warehouse's URL, built once per test run from a copy of `template` (the
    test modules' fixtures call this; the first to ask builds it, conftest.once_per_run).

    VALUEVERSE_DASHBOARD_TEST_DIR keeps it in that folder across sessions (page development:
    delete the folder after changing the models)."""
    kept = os.environ.get("VALUEVERSE_DASHBOARD_TEST_DIR")

    def make(folder: Path) -> None:
        shutil.copy(template, folder / "warehouse.duckdb")
        build_warehouse(folder, f"duckdb://{folder / 'warehouse.duckdb'}")

    folder = once_per_run(Path(kept).parent, Path(kept).name, make) if kept else None
    folder = folder or once_per_run(run_folder, "dashboards-warehouse", make)
    return f"duckdb://{folder / 'warehouse.duckdb'}"
