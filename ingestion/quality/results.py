"""The results contract: quality.expectation_results and quality.runs in the warehouse.

Finalization (another module) reads exactly these tables: it blocks every
invoice whose period overlaps a failing critical row of the latest run. Both
tables are append-only, so every run stays explainable; a run's results are
written in the same transaction as its quality.runs row, so a reader that sees
the run sees all of its results.

A run with failing critical expectations also records `quality.critical_failed` in the
notifications outbox (ingestion/billing/outbox.py), in that same transaction: the finance team
hears of the run that will block finalization exactly when the run is recorded, once per run.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path

from ingestion.billing.invoice_store import ensure_store
from ingestion.billing.outbox import record
from ingestion.quality.checks import ResultRow
from ingestion.warehouse import Session, WarehouseConfig, transaction

DDL = [
    "CREATE SCHEMA IF NOT EXISTS quality",
    """CREATE TABLE IF NOT EXISTS quality.expectation_results (
        run_id       TEXT NOT NULL,
        run_at       TIMESTAMP NOT NULL,   -- UTC, without zone
        as_of        DATE NOT NULL,
        suite        TEXT NOT NULL,
        expectation  TEXT NOT NULL,
        column_name  TEXT,
        critical     BOOLEAN NOT NULL,
        success      BOOLEAN NOT NULL,
        observed     TEXT,
        scope_start  DATE,                 -- NULL: the whole warehouse
        scope_end    DATE                  -- exclusive
    )""",
    """CREATE TABLE IF NOT EXISTS quality.runs (
        run_id             TEXT NOT NULL,
        run_at             TIMESTAMP NOT NULL,
        as_of              DATE NOT NULL,
        success            BOOLEAN NOT NULL,
        critical_failures  INTEGER NOT NULL,
        docs_index         TEXT
    )""",
]

INSERT_RESULT = (
    "INSERT INTO quality.expectation_results (run_id, run_at, as_of, suite, expectation, "
    "column_name, critical, success, observed, scope_start, scope_end) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)
INSERT_RUN = (
    "INSERT INTO quality.runs (run_id, run_at, as_of, success, critical_failures, docs_index) "
    "VALUES (%s, %s, %s, %s, %s, %s)"
)


def ensure_results_tables(config: WarehouseConfig) -> None:
    with transaction(config) as db:
        _ensure(db)


def _ensure(db: Session) -> None:
    """Create the results tables unless both exist: the billing role that writes them may not
    run DDL (ingestion/roles/service_roles.py)."""
    if (
        db.value(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'quality'"
            " AND table_name IN ('expectation_results', 'runs')"
        )
        < 2
    ):
        for statement in DDL:
            db.execute(statement)


def write_results(
    config: WarehouseConfig,
    run_id: str,
    run_at: datetime,
    as_of: date,
    rows: Sequence[ResultRow],
    critical_failures: int,
    docs_index: Path,
) -> None:
    """Append the run's rows and its quality.runs row in one transaction."""
    params = [
        (run_id, run_at, as_of, r.suite, r.expectation, r.column_name, r.critical, r.success,
         r.observed, r.scope_start, r.scope_end)
        for r in rows
    ]  # fmt: skip
    run = (run_id, run_at, as_of, critical_failures == 0, critical_failures, str(docs_index))
    failing = [r for r in rows if r.critical and not r.success]
    if failing:
        ensure_store(config)  # the outbox, before the transaction that writes into it
    with transaction(config) as db:
        _ensure(db)
        if params:
            db.executemany(INSERT_RESULT, params)
        db.execute(INSERT_RUN, run)
        if failing:
            _notify(db, run_id, run_at, as_of, failing)


def _notify(
    db: Session, run_id: str, run_at: datetime, as_of: date, failing: Sequence[ResultRow]
) -> None:
    """`quality.critical_failed` for the run; each expectation with the period it covers
    (null: the whole warehouse), the scope finalization blocks invoices by."""
    expectations = [
        {"suite": r.suite, "expectation": r.expectation, "column": r.column_name,
         "observed": r.observed, "scope_start": r.scope_start, "scope_end": r.scope_end}
        for r in failing
    ]  # fmt: skip
    data = {"run_id": run_id, "run_at": run_at.isoformat() + "Z", "as_of": as_of,
            "critical_failures": len(failing), "expectations": expectations}  # fmt: skip
    # run_at is naive UTC, as the warehouse stores it
    record(
        db, "quality.critical_failed", run_id, data, subject=run_id, at=run_at.replace(tzinfo=UTC)
    )
