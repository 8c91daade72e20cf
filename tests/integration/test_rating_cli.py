"""`valueverse build` / `invoices export` beyond the scenarios, on both warehouses: incremental
rating over landed batches, re-rating on a new catalog, unbilled usage, and clear errors for
user mistakes (exit 1, a message, no traceback)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from tests.conftest import SCENARIOS, CliResult, run_cli

AGGREGATIONS = SCENARIOS / "06_aggregations_filters"
INGESTION = SCENARIOS / "07_ingestion_rules"
AS_OF = "2026-11-01"
HEADER = (
    "subscription_id,customer_id,period_start,period_end,"
    "line_type,metric,quantity,amount,currency\n"
)


def ok(result: CliResult) -> CliResult:
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def query(url: str, sql: str) -> list[tuple[Any, ...]]:
    """Read the marts the way an analyst would."""
    if url.startswith("duckdb://"):
        import duckdb

        con = duckdb.connect(url[len("duckdb://") :], read_only=True)
        try:
            return con.execute(sql).fetchall()
        finally:
            con.close()
    import psycopg

    with psycopg.connect(url) as conn:
        return conn.execute(sql).fetchall()


def export(url: str, tmp_path: Path, as_of: str = AS_OF) -> str:
    out = tmp_path / "got.csv"
    ok(run_cli(url, "invoices", "export", "--as-of", as_of, "--out", str(out), cwd=tmp_path))
    return out.read_text()


def test_usage_is_rated_incrementally_across_batches(
    built_warehouse_url: str, tmp_path: Path
) -> None:
    """Events landed after a build are rated by the next build: same result as one load."""
    lines = (AGGREGATIONS / "events.jsonl").read_text().splitlines(keepends=True)
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    first.write_text("".join(lines[:6]))
    second.write_text("".join(lines[6:]))

    ok(
        run_cli(
            built_warehouse_url, "catalog", "load", str(AGGREGATIONS / "catalog.yml"), cwd=tmp_path
        )
    )
    ok(run_cli(built_warehouse_url, "events", "load", str(first), cwd=tmp_path))
    ok(run_cli(built_warehouse_url, "build", "--as-of", AS_OF, cwd=tmp_path))
    partial = export(built_warehouse_url, tmp_path)
    assert "usage,active_users,3,7.50,USD" in partial
    assert "usage,storage_gb,0,0.00,USD" in partial  # nothing landed yet for it

    ok(run_cli(built_warehouse_url, "events", "load", str(second), cwd=tmp_path))
    ok(run_cli(built_warehouse_url, "build", "--as-of", AS_OF, cwd=tmp_path))
    assert (
        export(built_warehouse_url, tmp_path)
        == (AGGREGATIONS / "expected_invoice_lines.csv").read_text()
    )
    matched = query(built_warehouse_url, "SELECT count(*) FROM intermediate.int_usage_events_rated")
    assert matched == [(16,)]  # 15 (event, charge) pairs and one event (region ap) unbilled


def test_new_catalog_version_rerates_every_event(built_warehouse_url: str, tmp_path: Path) -> None:
    ok(
        run_cli(
            built_warehouse_url, "catalog", "load", str(AGGREGATIONS / "catalog.yml"), cwd=tmp_path
        )
    )
    ok(
        run_cli(
            built_warehouse_url, "events", "load", str(AGGREGATIONS / "events.jsonl"), cwd=tmp_path
        )
    )
    ok(run_cli(built_warehouse_url, "build", "--as-of", AS_OF, cwd=tmp_path))

    changed = tmp_path / "catalog.yml"
    changed.write_text(
        (AGGREGATIONS / "catalog.yml").read_text().replace("region: eu", "region: ap")
    )
    ok(run_cli(built_warehouse_url, "catalog", "load", str(changed), cwd=tmp_path))
    ok(run_cli(built_warehouse_url, "build", "--as-of", AS_OF, cwd=tmp_path))
    got = export(built_warehouse_url, tmp_path)
    # charge 4 now bills region ap (5000 s at 0.0001); the eu events become unbilled
    assert "usage,compute_seconds,5000,0.50,USD\n" in got
    assert "usage,compute_seconds,72000,5.76,USD\n" in got
    reasons = query(
        built_warehouse_url,
        "SELECT event_id, reason FROM marts.unbilled_usage ORDER BY event_id",
    )
    assert reasons == [("evt_00013", "no_filter_matches"), ("evt_00015", "no_filter_matches")]


def test_unbilled_usage_keeps_every_event_no_charge_bills(
    built_warehouse_url: str, tmp_path: Path
) -> None:
    ok(
        run_cli(
            built_warehouse_url, "catalog", "load", str(INGESTION / "catalog.yml"), cwd=tmp_path
        )
    )
    ok(
        run_cli(
            built_warehouse_url, "events", "load", str(INGESTION / "events.jsonl"), cwd=tmp_path
        )
    )
    ok(run_cli(built_warehouse_url, "build", "--as-of", AS_OF, cwd=tmp_path))
    assert query(
        built_warehouse_url, "SELECT event_id, reason FROM marts.unbilled_usage ORDER BY event_id"
    ) == [("evt_00003", "no_active_subscription"), ("evt_00004", "metric_not_in_plan")]
    # the November period is open on as_of: rated (usage to date), not invoiced
    assert query(
        built_warehouse_url,
        "SELECT period_start, period_status, invoice_status FROM marts.subscription_periods"
        " ORDER BY period_start",
    ) == [
        (date(2026, 10, 1), "ended", "draft"),
        (date(2026, 11, 1), "open", None),
    ]
    assert query(built_warehouse_url, "SELECT count(*), min(status) FROM marts.invoices") == [
        (1, "draft")
    ]
    ok(
        run_cli(built_warehouse_url, "build", "--as-of", "2026-11-04", cwd=tmp_path)
    )  # grace is over
    assert query(built_warehouse_url, "SELECT count(*), min(status) FROM marts.invoices") == [
        (1, "closed")
    ]


def test_build_on_an_empty_warehouse_gives_empty_invoices(
    warehouse_url: str, tmp_path: Path
) -> None:
    ok(run_cli(warehouse_url, "build", "--as-of", AS_OF, cwd=tmp_path))
    assert export(warehouse_url, tmp_path) == HEADER


def test_user_mistakes_exit_1_with_a_message(warehouse_url: str, tmp_path: Path) -> None:
    out = str(tmp_path / "got.csv")
    before = run_cli(
        warehouse_url, "invoices", "export", "--as-of", AS_OF, "--out", out, cwd=tmp_path
    )
    assert before.returncode == 1
    assert "valueverse build" in before.stderr and "Traceback" not in before.stderr

    ok(run_cli(warehouse_url, "catalog", "load", str(INGESTION / "catalog.yml"), cwd=tmp_path))
    ok(run_cli(warehouse_url, "build", "--as-of", AS_OF, cwd=tmp_path))
    later = run_cli(
        warehouse_url, "invoices", "export", "--as-of", "2026-12-01", "--out", out, cwd=tmp_path
    )
    assert later.returncode == 1
    assert "built as of 2026-11-01" in later.stderr and "Traceback" not in later.stderr
    bad_date = run_cli(warehouse_url, "build", "--as-of", "2026-13-01", cwd=tmp_path)
    assert bad_date.returncode == 2 and "Traceback" not in bad_date.stderr
