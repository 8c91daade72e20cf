"""Data-quality suites (ingestion/quality) on a real DuckDB file and the real PostgreSQL.

One warehouse per backend is built the real way (catalog load, events load,
build) from a public scenario and shared by the module; tests that corrupt data
work on a copy (a copied DuckDB file, a PostgreSQL database cloned by TEMPLATE).
"""

from __future__ import annotations

import re
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import psycopg
import pytest
import yaml

from ingestion.quality import QualityReport, run_quality
from ingestion.warehouse import resolve
from tests.conftest import PG_SERVER, SCENARIOS, query, run_cli, run_step, scratch_pg

SCENARIO = SCENARIOS / "01_per_unit_fixed_fee"
AS_OF = str(yaml.safe_load((SCENARIO / "scenario.yml").read_text())["as_of"])
SUITES = {"landed_events", "rated_usage", "invoice_lines", "payments"}


def _build(url: str, cwd: Path) -> None:
    for args in (
        ("catalog", "load", str(SCENARIO / "catalog.yml")),
        ("events", "load", str(SCENARIO / "events.jsonl")),
        ("build", "--as-of", AS_OF),
    ):
        result = run_step(url, *args, cwd=cwd)
        assert result.returncode == 0, result.stderr[-3000:]


@pytest.fixture(scope="module", params=["duckdb", "postgres"])
def built(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """URL of a warehouse built from the scenario on a copy of the session's built, empty
    warehouse, shared by the module (read-only use)."""
    tmp = tmp_path_factory.mktemp(f"quality-{request.param}")
    if request.param == "duckdb":
        url = f"duckdb://{tmp / 'warehouse.duckdb'}"
        shutil.copy(request.getfixturevalue("duckdb_template"), tmp / "warehouse.duckdb")
        _build(url, tmp)
        yield url
        return
    with scratch_pg(template=request.getfixturevalue("pg_template")) as url:
        _build(url, tmp)
        yield url


@contextmanager
def copy_of(url: str, tmp_path: Path) -> Iterator[str]:
    """A private copy of the built warehouse, to corrupt."""
    if url.startswith("duckdb://"):
        target = tmp_path / "copy.duckdb"
        shutil.copy(url[len("duckdb://") :], target)
        yield f"duckdb://{target}"
        return
    source = url.rsplit("/", 1)[1]
    name = "vvtest_" + uuid.uuid4().hex[:12]
    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{source}"')
    try:
        yield f"{PG_SERVER}/{name}"
    finally:
        with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def execute(url: str, *statements: str) -> None:
    if url.startswith("duckdb://"):
        import duckdb

        con = duckdb.connect(url[len("duckdb://") :])
        try:
            for sql in statements:
                con.execute(sql)
        finally:
            con.close()
        return
    with psycopg.connect(url, autocommit=True) as conn:
        for sql in statements:
            conn.execute(sql)


def _run(url: str, tmp_path: Path) -> QualityReport:
    return run_quality(resolve(url), date.fromisoformat(AS_OF), tmp_path / "docs")


def _failed_critical(url: str, run_id: str) -> list[tuple]:
    return query(
        url,
        "SELECT suite, expectation, column_name, scope_start, scope_end, observed "
        f"FROM quality.expectation_results WHERE run_id = '{run_id}' "
        "AND critical AND NOT success ORDER BY 1, 2",
    )


def test_clean_warehouse_passes_every_critical_expectation(built: str, tmp_path: Path) -> None:
    with copy_of(built, tmp_path) as url:
        first = _run(url, tmp_path)
        cli = run_cli(url, "quality", "run", "--as-of", AS_OF, "--docs-dir", str(tmp_path / "docs"))

        assert first.success, first.critical_failures
        assert first.critical_failures == []
        suites = {
            r[0] for r in query(url, "SELECT DISTINCT suite FROM quality.expectation_results")
        }
        assert suites == SUITES
        rows = query(
            url,
            "SELECT count(*), count(*) FILTER (WHERE critical), count(*) FILTER (WHERE NOT success "
            f"AND critical) FROM quality.expectation_results WHERE run_id = '{first.run_id}'",
        )
        total, critical, failed_critical = rows[0]
        assert total > 40 and critical > 30 and failed_critical == 0
        # The CLI prints per-suite counts and the docs path; a second run only adds a run.
        assert cli.returncode == 0, cli.stdout + cli.stderr
        for suite in ("landed_events", "rated_usage", "invoice_lines"):
            assert re.search(rf"^  {suite}: [1-9][0-9]* passed, 0 failed", cli.stdout, re.M)
        assert f"Data Docs: {first.docs_index}" in cli.stdout
        runs = query(url, "SELECT run_id, success, critical_failures, as_of FROM quality.runs")
        assert (
            len(runs) == 2 and len({r[0] for r in runs}) == 2 and first.run_id in runs[0] + runs[1]
        )
        assert {r[1:] for r in runs} == {(True, 0, date.fromisoformat(AS_OF))}

    index = first.docs_index
    assert index.name == "index.html" and index.is_file()
    assert index.is_relative_to(tmp_path / "docs" / "gx")
    html = index.read_text(encoding="utf-8")
    for name in ("landed_events.events_vs_batches", "rated_usage.marts_rated_usage",
                 "invoice_lines.invoice_totals"):  # fmt: skip
        assert name in html


def test_changed_invoice_line_fails_reconciliation_scoped_to_its_period(
    built: str, tmp_path: Path
) -> None:
    with copy_of(built, tmp_path) as url:
        line_id, invoice_id, start, end = query(
            url,
            "SELECT line_id, invoice_id, period_start, period_end FROM marts.invoice_lines "
            "ORDER BY line_id LIMIT 1",
        )[0]
        execute(
            url, f"UPDATE marts.invoice_lines SET amount = amount + 1 WHERE line_id = '{line_id}'"
        )

        result = run_cli(url, "quality", "run", "--as-of", AS_OF, "--docs-dir", str(tmp_path / "d"))

        assert result.returncode == 1, result.stdout + result.stderr
        assert "Traceback" not in result.stderr
        assert "invoice_totals" in result.stderr and invoice_id in result.stderr
        assert "CRITICAL invoice_lines: invoice_totals" in result.stdout
        run_id = query(url, "SELECT run_id FROM quality.runs")[0][0]
        failed = _failed_critical(url, run_id)
        assert [(r[0], r[1], r[3], r[4]) for r in failed] == [
            ("invoice_lines", "invoice_totals expect_column_pair_values_to_be_equal", start, end)
        ]
        assert invoice_id in failed[0][5]
        assert query(url, "SELECT success, critical_failures FROM quality.runs") == [(False, 1)]


def test_deleted_event_fails_events_reconciliation_for_the_whole_warehouse(
    built: str, tmp_path: Path
) -> None:
    with copy_of(built, tmp_path) as url:
        execute(
            url, "DELETE FROM raw.events WHERE event_id = (SELECT min(event_id) FROM raw.events)"
        )
        report = _run(url, tmp_path)

        assert not report.success
        assert len(report.critical_failures) == 1
        assert report.critical_failures[0].startswith(
            "landed_events: events_vs_batches expect_column_pair_values_to_be_equal "
            "(accepted, stored): 1 of 1 rows unexpected"
        )
        failed = _failed_critical(url, report.run_id)
        assert [(r[0], r[3], r[4]) for r in failed] == [("landed_events", None, None)]


def test_threshold_breach_is_a_warning_that_does_not_fail_the_run(
    built: str, tmp_path: Path
) -> None:
    with copy_of(built, tmp_path) as url:
        execute(url, "UPDATE raw.ingest_batches SET rejected = rejected + 100")
        report = _run(url, tmp_path)

        assert report.success and report.critical_failures == []
        assert len(report.warnings) == 1
        assert (
            "landing_rates expect_column_values_to_be_between (reject_rate)" in report.warnings[0]
        )
        assert "allowed 0.0..0.01" in report.warnings[0]
        rows = query(
            url,
            "SELECT critical, success FROM quality.expectation_results "
            f"WHERE run_id = '{report.run_id}' AND column_name = 'reject_rate'",
        )
        assert rows == [(False, False)]


def drop_payments(url: str) -> None:
    """Drop marts.payments (built by dbt once the payments models exist), table or view."""
    kind = query(
        url,
        "SELECT table_type FROM information_schema.tables "
        "WHERE table_schema = 'marts' AND table_name = 'payments'",
    )
    if kind:
        what = "VIEW" if kind[0][0] == "VIEW" else "TABLE"
        cascade = "" if url.startswith("duckdb://") else " CASCADE"
        execute(url, f"DROP {what} marts.payments{cascade}")


def test_payments_suite_is_skipped_when_the_table_is_absent(built: str, tmp_path: Path) -> None:
    with copy_of(built, tmp_path) as url:
        drop_payments(url)
        report = _run(url, tmp_path)

        assert report.success
        assert report.skipped == ["payments: skipped: table absent (marts.payments)"]
        rows = query(
            url,
            "SELECT critical, success, observed FROM quality.expectation_results "
            f"WHERE run_id = '{report.run_id}' AND suite = 'payments'",
        )
        assert rows == [(False, True, "skipped: table absent (marts.payments does not exist)")]


def test_payments_suite_runs_when_the_table_exists(built: str, tmp_path: Path) -> None:
    with copy_of(built, tmp_path) as url:
        drop_payments(url)
        invoice_id, start, end = query(
            url, "SELECT invoice_id, period_start, period_end FROM marts.invoices LIMIT 1"
        )[0]
        execute(
            url,
            "CREATE TABLE marts.payments (invoice_id VARCHAR, amount_due DECIMAL(38, 4), "
            "amount_paid DECIMAL(38, 4))",
            f"INSERT INTO marts.payments VALUES ('{invoice_id}', 10.0000, 10.0000)",
        )
        paid_in_full = _run(url, tmp_path)
        assert paid_in_full.success and paid_in_full.skipped == []

        # One ten-thousandth too much is caught: compared exactly, never as float.
        execute(
            url,
            f"UPDATE marts.payments SET amount_paid = 10.0001 WHERE invoice_id = '{invoice_id}'",
        )
        overpaid = _run(url, tmp_path)

        assert not overpaid.success
        failed = _failed_critical(url, overpaid.run_id)
        assert [(r[0], r[2], r[3], r[4]) for r in failed] == [
            ("payments", "amount_due, amount_paid", start, end)
        ]
        assert invoice_id in failed[0][5] and "10.0001" in failed[0][5]


def test_no_marts_yet_is_a_clear_error(tmp_path: Path) -> None:
    url = f"duckdb://{tmp_path / 'w.duckdb'}"
    assert (
        run_cli(url, "catalog", "load", str(SCENARIO / "catalog.yml"), cwd=tmp_path).returncode == 0
    )

    result = run_cli(url, "quality", "run", "--as-of", AS_OF, cwd=tmp_path)

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "marts.rated_usage" in result.stderr and "valueverse build" in result.stderr
    assert not (tmp_path / "valueverse-quality").exists()
