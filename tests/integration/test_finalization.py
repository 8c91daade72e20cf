"""Finalization and late usage (dbt/docs/contract.md section 8) through the CLI, on both backends.

One story per backend, on the catalog of tests/scenarios/16_late_usage_adjustments (expected
figures computed by hand from the spec, see that scenario.yml):

1. January is finalized (numbers VV-000001, VV-000002); finalizing again changes nothing.
2. Late January usage lands: January stays as issued, February carries the adjustments.
3. A failing critical data-quality expectation scoped to February blocks February's
   finalization (exit 1, reason named); once quality passes, February is finalized as
   VV-000003, VV-000004: gapless, in period-end then subscription order.
4. More late January usage: its adjustments wait in pending_adjustments while March is open,
   and only the new difference (net of what February's finalized invoice already billed) moves
   onto March once it ends.
Through all of it, the finalized invoices and their lines never change.
"""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from tests.conftest import CLI, SCENARIOS, query, run_cli, run_step

SCENARIO = SCENARIOS / "16_late_usage_adjustments"


def _ok(url: str, tmp: Path, *args: str):
    result = run_step(url, *args, cwd=tmp)
    assert result.returncode == 0, (args, result.stderr[-3000:])
    return result


def _late(tmp: Path, name: str, *events: tuple[str, str, str, int]) -> Path:
    path = tmp / name
    path.write_text(
        "".join(
            json.dumps(
                {"event_id": e, "customer_id": c, "metric": "api", "timestamp": t, "quantity": q}
            )
            + "\n"
            for e, c, t, q in events
        )
    )
    return path


def _finalized(url: str) -> list[tuple]:
    invoices = query(
        url,
        "SELECT invoice_number, invoice_id, total, status FROM marts.invoices"
        " WHERE status = 'finalized' ORDER BY invoice_number",
    )
    lines = query(
        url,
        "SELECT line_id, amount, quantity FROM marts.invoice_lines"
        " WHERE invoice_status = 'finalized' ORDER BY line_id",
    )
    return [tuple(map(str, row)) for row in invoices + lines]


def _adjustments(url: str, invoice_id: str) -> list[tuple]:
    return query(
        url,
        "SELECT adjusted_line_type, corrected_period_start, quantity, amount"
        " FROM marts.invoice_lines WHERE line_type = 'adjustment'"
        f" AND invoice_id = '{invoice_id}' ORDER BY adjusted_line_order",
    )


def _quality_run(url: str, failing_scope: tuple[date, date] | None, ok: bool) -> None:
    """Record a data-quality run through the quality module's own results writer."""
    from ingestion.quality.checks import ResultRow
    from ingestion.quality.results import write_results
    from ingestion.warehouse import resolve

    start, end = failing_scope or (None, None)
    row = ResultRow("invoice_lines", "invoice total equals the sum of its lines", "total",
                    critical=True, success=ok, observed=None if ok else "1 invoice off",
                    scope_start=start, scope_end=end)  # fmt: skip
    write_results(
        resolve(url),
        f"run-{datetime.now(UTC).timestamp()}",
        datetime.now(UTC).replace(tzinfo=None),
        date(2026, 3, 4),
        [row],
        0 if ok else 1,
        Path("/nonexistent/index.html"),
    )


def test_finalize_late_usage_story(built_warehouse_url: str, tmp_path: Path) -> None:
    url, tmp = built_warehouse_url, tmp_path
    _ok(url, tmp, "catalog", "load", str(SCENARIO / "catalog.yml"))
    _ok(url, tmp, "events", "load", str(SCENARIO / "events.jsonl"))

    # 1. January finalized, numbered in period-end then subscription order; a rerun is a no-op
    _ok(url, tmp, "build", "--as-of", "2026-02-04")
    first = _ok(url, tmp, "invoices", "finalize", "--as-of", "2026-02-04")
    assert first.last_json == {"finalized": 2, "blocked": 0, "already_finalized": 0}
    assert "VV-000001: sub_a/2026-01-01" in first.stdout
    assert "VV-000002: sub_b1/2026-01-01" in first.stdout
    again = _ok(url, tmp, "invoices", "finalize", "--as-of", "2026-02-04")
    assert again.last_json == {"finalized": 0, "blocked": 0, "already_finalized": 2}
    _ok(url, tmp, "build", "--as-of", "2026-02-04")
    issued = _finalized(url)
    assert ("VV-000001", "sub_a/2026-01-01", "49.5000", "finalized") in issued

    # 2. late January usage: January unchanged, February adjusted line by line
    _ok(url, tmp, "events", "load", str(SCENARIO / "events_late.jsonl"))
    _ok(url, tmp, "build", "--as-of", "2026-03-04")
    assert _finalized(url) == issued
    feb = date(2026, 2, 1)
    jan = date(2026, 1, 1)
    assert _adjustments(url, "sub_a/2026-02-01") == [
        ("usage", jan, Decimal(2500), Decimal("25.00")),
        ("minimum_commitment", jan, None, Decimal("-20.00")),
        ("discount", jan, None, Decimal("-0.50")),
        ("tax", jan, None, Decimal("0.45")),
    ]
    feb_a = query(url, "SELECT adjustment_amount, total FROM marts.invoices"
                  " WHERE invoice_id = 'sub_a/2026-02-01'")  # fmt: skip
    assert feb_a == [(Decimal("4.95"), Decimal("54.45"))]

    # 3. a failing critical expectation scoped to February blocks February only
    _quality_run(url, (feb, date(2026, 3, 1)), ok=False)
    blocked = run_cli(url, "invoices", "finalize", "--as-of", "2026-03-04", cwd=tmp)
    assert blocked.returncode == 1
    assert blocked.last_json == {"finalized": 0, "blocked": 2, "already_finalized": 2}
    assert "not finalized sub_a/2026-02-01: data quality: invoice_lines:" in blocked.stderr
    _quality_run(url, None, ok=True)
    done = _ok(url, tmp, "invoices", "finalize", "--as-of", "2026-03-04")
    assert done.last_json == {"finalized": 2, "blocked": 0, "already_finalized": 2}
    assert "VV-000003: sub_a/2026-02-01" in done.stdout
    assert "VV-000004: sub_b2/2026-02-01" in done.stdout
    numbers = query(url, "SELECT sequence_number FROM billing.finalized_invoices ORDER BY 1")
    assert [n for (n,) in numbers] == [1, 2, 3, 4]  # gapless, also after a blocked run

    # 4. more late January usage: pending while March is open, then only the new difference
    late = _late(tmp, "later.jsonl", ("a-jan-later", "cus_a", "2026-01-30T10:00:00Z", 1000))
    _ok(url, tmp, "events", "load", str(late))
    _ok(url, tmp, "build", "--as-of", "2026-03-20")
    pending = query(url, "SELECT adjusted_line_type, amount FROM marts.pending_adjustments"
                    " ORDER BY adjusted_line_order")  # fmt: skip
    assert pending == [
        ("usage", Decimal("10.00")),
        ("discount", Decimal("-1.00")),
        ("tax", Decimal("0.90")),
    ]
    assert query(url, "SELECT count(*) FROM marts.invoice_lines WHERE line_type = 'adjustment'"
                 " AND invoice_status <> 'finalized'") == [(0,)]  # fmt: skip
    _ok(url, tmp, "build", "--as-of", "2026-04-04")
    assert _adjustments(url, "sub_a/2026-03-01") == [
        ("usage", jan, Decimal(1000), Decimal("10.00")),
        ("discount", jan, None, Decimal("-1.00")),
        ("tax", jan, None, Decimal("0.90")),
    ]
    assert query(url, "SELECT count(*) FROM marts.pending_adjustments") == [(0,)]
    # the finalized February invoice still shows the adjustments it was issued with
    assert len(_adjustments(url, "sub_a/2026-02-01")) == 4
    frozen_now = _finalized(url)
    assert [row for row in frozen_now if row in issued] == issued


@pytest.mark.postgres
def test_postgres_refuses_changes_to_finalized_invoices(built_pg_url: str, tmp_path: Path) -> None:
    _ok(built_pg_url, tmp_path, "catalog", "load", str(SCENARIO / "catalog.yml"))
    _ok(built_pg_url, tmp_path, "events", "load", str(SCENARIO / "events.jsonl"))
    _ok(built_pg_url, tmp_path, "build", "--as-of", "2026-02-04")
    _ok(built_pg_url, tmp_path, "invoices", "finalize", "--as-of", "2026-02-04")
    before = query(built_pg_url, "SELECT * FROM billing.finalized_invoice_lines ORDER BY line_id")
    assert len(before) == 7
    for statement in (
        "UPDATE billing.finalized_invoice_lines SET amount = 0",
        "DELETE FROM billing.finalized_invoice_lines",
        "TRUNCATE billing.finalized_invoice_lines",
        "UPDATE billing.finalized_invoices SET total = 0",
        "DELETE FROM billing.finalized_invoices",
        "TRUNCATE billing.finalized_invoices CASCADE",
    ):
        with psycopg.connect(built_pg_url, autocommit=True) as conn:
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
                conn.execute(statement)
    assert (
        query(built_pg_url, "SELECT * FROM billing.finalized_invoice_lines ORDER BY line_id")
        == before
    )
    # a full rebuild of every model cannot touch the store either
    _ok(built_pg_url, tmp_path, "build", "--as-of", "2026-02-04")
    assert (
        query(built_pg_url, "SELECT * FROM billing.finalized_invoice_lines ORDER BY line_id")
        == before
    )


@pytest.mark.postgres
def test_concurrent_finalizers_take_each_number_once(built_pg_url: str, tmp_path: Path) -> None:
    _ok(built_pg_url, tmp_path, "catalog", "load", str(SCENARIO / "catalog.yml"))
    _ok(built_pg_url, tmp_path, "events", "load", str(SCENARIO / "events.jsonl"))
    _ok(built_pg_url, tmp_path, "build", "--as-of", "2026-03-04")
    env = {"VALUEVERSE_WAREHOUSE": built_pg_url, "PATH": str(Path(CLI).parent)}
    procs = [
        subprocess.Popen(
            [CLI, "invoices", "finalize", "--as-of", "2026-03-04"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [proc.communicate(timeout=120) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0, 0], outputs
    counts = [json.loads(out.strip().splitlines()[-1])["finalized"] for out, _ in outputs]
    assert sorted(counts) == [0, 0, 4]  # one finalizer did the work, the others found it done
    rows = query(built_pg_url, "SELECT invoice_number, invoice_id FROM billing.finalized_invoices"
                 " ORDER BY sequence_number")  # fmt: skip
    assert rows == [
        ("VV-000001", "sub_a/2026-01-01"),
        ("VV-000002", "sub_b1/2026-01-01"),
        ("VV-000003", "sub_a/2026-02-01"),
        ("VV-000004", "sub_b2/2026-02-01"),
    ]


def test_finalize_refuses_unbuilt_or_stale_marts(duckdb_url: str, tmp_path: Path) -> None:
    fresh = run_cli(duckdb_url, "invoices", "finalize", "--as-of", "2026-02-04", cwd=tmp_path)
    assert fresh.returncode == 1
    assert "run `valueverse build` first" in fresh.stderr
    assert "Traceback" not in fresh.stderr
    _ok(duckdb_url, tmp_path, "catalog", "load", str(SCENARIO / "catalog.yml"))
    _ok(duckdb_url, tmp_path, "build", "--as-of", "2026-02-04")
    stale = run_cli(duckdb_url, "invoices", "finalize", "--as-of", "2026-03-04", cwd=tmp_path)
    assert stale.returncode == 1
    assert "built as of 2026-02-04" in stale.stderr
    assert query(duckdb_url, "SELECT count(*) FROM billing.finalized_invoices") == [(0,)]


def test_a_dropped_store_table_is_an_error_not_recreated_empty(
    warehouse_url: str, tmp_path: Path
) -> None:
    """Dropping billing.finalized_invoice_lines used to be answered by silently creating it
    again, empty: issued invoices lost their lines without a trace."""
    from ingestion.billing.invoice_store import ensure_store
    from ingestion.warehouse import resolve

    ensure_store(resolve(warehouse_url))
    if warehouse_url.startswith("duckdb://"):
        import duckdb

        con = duckdb.connect(warehouse_url[len("duckdb://") :])
        con.execute("DROP TABLE billing.finalized_invoice_lines")
        con.close()
    else:
        with psycopg.connect(warehouse_url, autocommit=True) as conn:
            conn.execute("DROP TABLE billing.finalized_invoice_lines")
    for args in (
        ("invoices", "finalize", "--as-of", "2026-02-04"),
        ("build", "--as-of", "2026-02-04"),
    ):
        damaged = run_cli(warehouse_url, *args, cwd=tmp_path)
        assert damaged.returncode == 1 and "Traceback" not in damaged.stderr, args
        assert "the billing store is damaged: billing.finalized_invoice_lines is missing" in (
            damaged.stderr
        ), args
    tables = query(warehouse_url, "SELECT table_name FROM information_schema.tables"
                   " WHERE table_schema = 'billing' AND table_name LIKE 'finalized%'")  # fmt: skip
    assert tables == [("finalized_invoices",)]
