"""The finalized-invoice store: schema `billing`, append-only, for DuckDB and PostgreSQL.

Finalization (ingestion/billing/finalization.py) copies an invoice and its lines here once, with a
number; the dbt marts read them back (dbt/models/staging/billing) so that a finalized invoice
shows exactly what was issued, whatever lands or changes afterwards (dbt/docs/contract.md
section 8). Python owns these tables, not dbt: a `dbt --full-refresh` must never be able to
drop or rewrite issued invoices.

Immutability: on PostgreSQL, triggers refuse every UPDATE, DELETE and TRUNCATE on both tables
(the server itself protects them, whoever connects), and privileges to change rows are revoked
from PUBLIC. DuckDB has no triggers: there the guarantee is that no code path writes anything
but INSERT (documented in dbt/DECISIONLOG.md).
"""

from __future__ import annotations

from collections.abc import Sequence

from ingestion.billing.outbox import OUTBOX_DDL, OUTBOX_TABLE
from ingestion.warehouse import Session, StoreDamaged, WarehouseConfig, connect, transaction

STORE_TABLES = ("finalized_invoices", "finalized_invoice_lines")

_TABLES = """
CREATE SCHEMA IF NOT EXISTS billing;

CREATE TABLE IF NOT EXISTS billing.finalized_invoices (
    invoice_id            VARCHAR PRIMARY KEY,      -- <subscription_id>/<period_start>
    invoice_number        VARCHAR NOT NULL UNIQUE,  -- <series>-<sequence, 6 digits or more>
    series                VARCHAR NOT NULL,
    sequence_number       BIGINT NOT NULL,
    subscription_id       VARCHAR NOT NULL,
    customer_id           VARCHAR NOT NULL,
    plan_code             VARCHAR,
    period_start          DATE NOT NULL,
    period_end            DATE NOT NULL,
    active_days           INTEGER,
    days_in_period        INTEGER,
    fixed_fee_amount      DECIMAL(38, 4),
    usage_amount          DECIMAL(38, 4),
    minimum_topup_amount  DECIMAL(38, 4),
    subtotal              DECIMAL(38, 4) NOT NULL,
    discounts_applied     BIGINT,
    discount_amount       DECIMAL(38, 4) NOT NULL,
    tax_rate              DECIMAL(38, 12),
    tax_amount            DECIMAL(38, 4),
    adjustment_amount     DECIMAL(38, 4) NOT NULL,
    total                 DECIMAL(38, 4) NOT NULL,
    currency              VARCHAR NOT NULL,
    currency_exponent     INTEGER NOT NULL,
    catalog_version       BIGINT,
    finalized_as_of       DATE NOT NULL,
    finalized_at          TIMESTAMP NOT NULL,       -- UTC
    UNIQUE (series, sequence_number)
);

CREATE TABLE IF NOT EXISTS billing.finalized_invoice_lines (
    line_id                 VARCHAR PRIMARY KEY,
    invoice_id              VARCHAR NOT NULL,
    subscription_id         VARCHAR NOT NULL,
    customer_id             VARCHAR NOT NULL,
    plan_code               VARCHAR,
    period_start            DATE NOT NULL,
    period_end              DATE NOT NULL,
    line_order              INTEGER NOT NULL,
    line_type               VARCHAR NOT NULL,
    charge_index            INTEGER,
    metric                  VARCHAR,
    quantity                DECIMAL(38, 9),
    amount_exact            DECIMAL(38, 21),
    amount                  DECIMAL(38, 4) NOT NULL,
    currency                VARCHAR NOT NULL,
    currency_exponent       INTEGER NOT NULL,
    corrected_invoice_id    VARCHAR,   -- adjustment lines: the finalized invoice they correct
    corrected_period_start  DATE,
    corrected_period_end    DATE,
    adjusted_line_type      VARCHAR,   -- adjustment lines: which line of that invoice changed
    adjusted_line_order     INTEGER
);
"""

_POSTGRES_GUARDS = """
CREATE OR REPLACE FUNCTION billing.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'billing.% is append-only: billing history never changes (% refused)',
        TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'corrections are new rows: adjustment lines, new payment attempts';
END
$$;
"""

_POSTGRES_TABLE_GUARDS = """
CREATE OR REPLACE TRIGGER {table}_no_update_delete
    BEFORE UPDATE OR DELETE ON billing.{table}
    FOR EACH ROW EXECUTE FUNCTION billing.refuse_change();
CREATE OR REPLACE TRIGGER {table}_no_truncate
    BEFORE TRUNCATE ON billing.{table}
    FOR EACH STATEMENT EXECUTE FUNCTION billing.refuse_change();
REVOKE UPDATE, DELETE, TRUNCATE ON billing.{table} FROM PUBLIC;
"""


def guards_ddl(tables: Sequence[str]) -> str:
    """The PostgreSQL triggers and revokes that make `billing.<table>` append-only."""
    return "".join(_POSTGRES_TABLE_GUARDS.format(table=table) for table in tables)


def ensure_guarded(
    config: WarehouseConfig,
    duckdb_ddl: Sequence[str],
    postgres_ddl: str,
    tables: Sequence[str],
    views: Sequence[str] = (),
    together: Sequence[str] | None = None,
) -> None:
    """Run idempotent DDL for append-only billing tables (and views over them), once.

    `together` (default: all `tables`) exist all or none: one missing beside the others is
    StoreDamaged, never re-created empty. On PostgreSQL, under one advisory lock (concurrent
    CREATE OR REPLACE of a function or trigger can collide), and skipped when every guarded
    table already has its two triggers and every view exists, so a build does not take table
    locks it does not need."""
    if config.kind == "duckdb":
        with connect(config) as db:
            _refuse_damaged(db, together or tables)
            for statement in duckdb_ddl:
                db.script(statement)
        return
    with transaction(config) as db:
        db.execute("SELECT pg_advisory_xact_lock(hashtext('valueverse.billing_store'))")
        _refuse_damaged(db, together or tables)
        row = db.one(
            "SELECT (SELECT count(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid"
            "        JOIN pg_namespace n ON n.oid = c.relnamespace"
            "        WHERE n.nspname = 'billing' AND NOT t.tgisinternal"
            "          AND c.relname = ANY(%s)),"
            " (SELECT count(*) FROM information_schema.views"
            "  WHERE table_schema = 'billing' AND table_name = ANY(%s))",
            [list(tables), list(views)],
        )
        if row and row[0] == 2 * len(tables) and row[1] == len(views):
            return
        db.script(postgres_ddl)


def _refuse_damaged(db: Session, tables: Sequence[str]) -> None:
    found = {
        name
        for (name,) in db.rows(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'billing'"
        )
    }
    present = [t for t in tables if t in found]
    missing = [t for t in tables if t not in found]
    if present and missing:
        raise StoreDamaged(
            f"the billing store is damaged: billing.{', billing.'.join(missing)} is missing while "
            f"billing.{present[0]} exists; it is not re-created empty (issued history would be "
            "lost without a trace): restore it from a backup"
        )


def ensure_store(config: WarehouseConfig) -> None:
    """Create the billing schema, its tables and (PostgreSQL) its guards if missing, and the
    notifications outbox (ingestion/billing/outbox.py) that every billing write path feeds."""
    ensure_guarded(config, [_TABLES], _TABLES + _POSTGRES_GUARDS + guards_ddl(STORE_TABLES),
                   STORE_TABLES)  # fmt: skip
    ensure_guarded(config, [OUTBOX_DDL], OUTBOX_DDL + guards_ddl([OUTBOX_TABLE]), [OUTBOX_TABLE])
