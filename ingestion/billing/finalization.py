"""Invoice finalization (dbt/docs/contract.md section 8): `valueverse invoices finalize`.

An invoice whose period ended at least `grace_days` before `as_of` is finalized once: it gets
the next number of its issuer series and is copied, lines and totals, from the dbt marts into
the append-only store (ingestion/billing/invoice_store.py). From then on the marts show the
frozen copy;
usage that lands later for that period is billed by the dbt models as `adjustment` lines on the
subscription's next invoice (dbt/models/intermediate/billing/int_invoice_adjustments_computed.sql).

Why one transaction, numbers assigned inside it, and the store locked: numbers must be gapless
and sequential per series. A number is only ever taken together with the invoice it names, so a
crash or a refused commit leaves no gap, and two finalizers cannot take the same number.
Re-running is a no-op for invoices already finalized.

Data quality gate: a failing critical expectation of the latest data-quality run
(`quality.expectation_results`, written by ingestion/quality) blocks every invoice whose period
overlaps the failure's scope (the whole warehouse when the scope is empty).

Notifications (ingestion/billing/outbox.py), in the same transaction: `invoice.finalized` for
every invoice numbered, `invoice.adjusted` for those carrying adjustment lines, and
`finalization.blocked` for every invoice held back, keyed by its reasons so a rerun that is
blocked for the same reasons tells nobody again.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from ingestion.billing import outbox
from ingestion.billing.export import format_amount
from ingestion.billing.invoice_store import ensure_store
from ingestion.job_telemetry import job_run
from ingestion.warehouse import (
    Session,
    UsageError,
    WarehouseConfig,
    is_permission_denied,
    refuse_future,
    transaction,
)

DEFAULT_SERIES = "VV"
DEFAULT_GRACE_DAYS = 3


@dataclass(frozen=True)
class FinalizedInvoice:
    number: str
    invoice_id: str
    subscription_id: str
    period_start: date
    period_end: date
    total: Decimal
    currency: str
    currency_exponent: int

    def total_text(self) -> str:
        """The total with exactly the currency's decimals, as invoices print it."""
        return f"{format_amount(self.total, self.currency_exponent)} {self.currency}"


@dataclass(frozen=True)
class BlockedInvoice:
    invoice_id: str
    subscription_id: str
    period_start: date
    period_end: date
    reasons: tuple[str, ...]


@dataclass
class FinalizeResult:
    finalized: list[FinalizedInvoice] = field(default_factory=list)
    blocked: list[BlockedInvoice] = field(default_factory=list)
    already_finalized: int = 0
    quality_run: str | None = None  # the data-quality run that gated this one, if any


@dataclass(frozen=True)
class _Candidate:
    invoice_id: str
    subscription_id: str
    period_start: date
    period_end: date
    total: Decimal
    currency: str
    currency_exponent: int
    customer_id: str


_CANDIDATES = """
SELECT invoice_id, subscription_id, period_start, period_end, total, currency, currency_exponent,
       customer_id
FROM marts.invoices
WHERE status <> 'finalized' AND period_end <= %s
  AND invoice_id NOT IN (SELECT invoice_id FROM billing.finalized_invoices)
"""
_LINE_SUMS = """
SELECT invoice_id, sum(amount) FROM marts.invoice_lines
WHERE period_end <= %s AND invoice_status <> 'finalized' GROUP BY invoice_id
"""
_INVOICE_COLUMNS = (
    "invoice_id, subscription_id, customer_id, plan_code, period_start, period_end, active_days,"
    " days_in_period, fixed_fee_amount, usage_amount, minimum_topup_amount, subtotal,"
    " discounts_applied, discount_amount, tax_rate, tax_amount, adjustment_amount, total,"
    " currency, currency_exponent"
)
_LINE_COLUMNS = (
    "line_id, invoice_id, subscription_id, customer_id, plan_code, period_start, period_end,"
    " line_order, line_type, charge_index, metric, quantity, amount_exact, amount, currency,"
    " currency_exponent, corrected_invoice_id, corrected_period_start, corrected_period_end,"
    " adjusted_line_type, adjusted_line_order"
)
_QUALITY_FAILURES = """
SELECT r.suite, r.expectation, r.column_name, r.observed, r.scope_start, r.scope_end, r.run_id
FROM quality.expectation_results AS r
WHERE r.run_id = (SELECT run_id FROM quality.runs ORDER BY run_at DESC, run_id DESC LIMIT 1)
  AND r.critical AND NOT r.success
"""


def finalize(
    config: WarehouseConfig,
    as_of: date,
    grace_days: int = DEFAULT_GRACE_DAYS,
    series: str | None = None,
) -> FinalizeResult:
    """Finalize every invoice whose period ended on or before `as_of - grace_days`; one
    `finalize invoices` span (ingestion/job_telemetry.py) with its counts."""
    with job_run("finalize invoices", as_of=as_of.isoformat(), grace_days=grace_days) as run:
        result = _finalize(config, as_of, grace_days, series)
        run.record(finalized=len(result.finalized), blocked=len(result.blocked),
                   already_finalized=result.already_finalized)  # fmt: skip
        if result.blocked:
            run.outcome = "blocked"
    return result


def _finalize(
    config: WarehouseConfig, as_of: date, grace_days: int, series: str | None
) -> FinalizeResult:
    if grace_days < 0:
        raise UsageError(f"grace days must be 0 or more, got {grace_days}")
    refuse_future(as_of, "finalization as of")
    series = series or os.environ.get("VALUEVERSE_INVOICE_SERIES") or DEFAULT_SERIES
    ensure_store(config)
    with transaction(config) as db:
        _lock_store(db)
        _check_built(db, as_of)
        cutoff = as_of - timedelta(days=grace_days)
        candidates = [_Candidate(*row) for row in db.rows(_CANDIDATES, [cutoff])]
        result = FinalizeResult()
        result.already_finalized = int(
            db.value("SELECT count(*) FROM billing.finalized_invoices WHERE period_end <= %s",
                     [cutoff])
        )  # fmt: skip
        sums = {row[0]: Decimal(row[1]) for row in db.rows(_LINE_SUMS, [cutoff])}
        failures, result.quality_run = _quality_failures(db)
        eligible = []
        for invoice in candidates:
            reasons = _blocking_reasons(invoice, sums.get(invoice.invoice_id), failures)
            if reasons:
                result.blocked.append(
                    BlockedInvoice(
                        invoice.invoice_id,
                        invoice.subscription_id,
                        invoice.period_start,
                        invoice.period_end,
                        tuple(reasons),
                    )
                )
            else:
                eligible.append(invoice)
        # numbers follow the order invoices were due: period end, then subscription (code point)
        eligible.sort(key=lambda i: (i.period_end, i.subscription_id, i.period_start))
        last = db.value(
            "SELECT coalesce(max(sequence_number), 0) FROM billing.finalized_invoices"
            " WHERE series = %s",
            [series],
        )
        numbered = [(inv, int(last) + n) for n, inv in enumerate(eligible, start=1)]
        if numbered:
            _insert_batch(
                db,
                [(inv.invoice_id, f"{series}-{seq:06d}", seq) for inv, seq in numbered],
                series,
                as_of,
            )
            notices = _finalized_notices(
                db, [(inv, f"{series}-{seq:06d}") for inv, seq in numbered]
            )
            db.execute("DROP TABLE IF EXISTS finalize_batch")
        else:
            notices = []
        by_id = {inv.invoice_id: inv for inv in candidates}
        notices += [
            _blocked_notice(blocked, by_id[blocked.invoice_id].customer_id, result.quality_run)
            for blocked in result.blocked
        ]
        outbox.record_many(db, notices)
        result.finalized = [
            FinalizedInvoice(
                f"{series}-{seq:06d}",
                inv.invoice_id,
                inv.subscription_id,
                inv.period_start,
                inv.period_end,
                Decimal(inv.total),
                inv.currency,
                int(inv.currency_exponent),
            )
            for inv, seq in numbered
        ]
    return result


def _blocking_reasons(
    invoice: _Candidate, lines_sum: Decimal | None, failures: Sequence[Sequence[Any]]
) -> list[str]:
    reasons = []
    if lines_sum is None or lines_sum != Decimal(invoice.total):
        reasons.append(f"total {invoice.total} differs from the sum of its lines {lines_sum}")
    for suite, expectation, column, observed, scope_start, scope_end, _run in failures:
        if (
            scope_start is None
            or scope_end is None
            or (invoice.period_start < scope_end and scope_start < invoice.period_end)
        ):
            where = f" ({column})" if column else ""
            seen = f": {observed}" if observed else ""
            reasons.append(f"data quality: {suite}: {expectation}{where} failed{seen}")
    return reasons


def _quality_failures(db: Session) -> tuple[list[Sequence[Any]], str | None]:
    present = db.value(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'quality'"
        " AND table_name IN ('runs', 'expectation_results')"
    )
    if present != 2:
        return [], None
    latest = db.one("SELECT run_id FROM quality.runs ORDER BY run_at DESC, run_id DESC LIMIT 1")
    if latest is None:
        return [], None
    return list(db.rows(_QUALITY_FAILURES)), str(latest[0])


def _check_built(db: Session, as_of: date) -> None:
    try:
        built = db.value("SELECT max(as_of) FROM marts.subscription_periods")
        db.rows("SELECT adjustment_amount FROM marts.invoices LIMIT 1")
    except Exception as exc:  # a missing table or column: the marts were never built (or old)
        if is_permission_denied(exc):  # a role that may not read them: say that instead
            raise
        raise UsageError(
            "there are no invoices to finalize yet: run `valueverse build` first"
        ) from exc
    if built is None or built < as_of:
        raise UsageError(
            f"the invoices were built as of {built}: run `valueverse build --as-of "
            f"{as_of.isoformat()}` before finalizing as of that date"
        )


def _lock_store(db: Session) -> None:
    """One finalizer at a time; readers of the store are not blocked. An advisory lock, not a
    table lock: the billing role that finalizes may only insert into the store, and PostgreSQL
    grants the stronger table locks to roles that may update it."""
    if db.kind == "postgres":
        db.execute("SELECT pg_advisory_xact_lock(hashtext('valueverse.finalize'))")


def _insert_batch(db: Session, rows: list[tuple[str, str, int]], series: str, as_of: date) -> None:
    """Copy the chosen invoices and their lines from the marts into the store."""
    db.execute(
        "CREATE TEMP TABLE finalize_batch (invoice_id VARCHAR, invoice_number VARCHAR,"
        " sequence_number BIGINT)" + (" ON COMMIT DROP" if db.kind == "postgres" else "")
    )
    db.append("finalize_batch", ("invoice_id", "invoice_number", "sequence_number"), rows)
    now = datetime.now(UTC).replace(tzinfo=None)
    invoice_columns = ", ".join(f"i.{c.strip()}" for c in _INVOICE_COLUMNS.split(","))
    db.execute(
        f"INSERT INTO billing.finalized_invoices ({_INVOICE_COLUMNS}, invoice_number, series,"
        " sequence_number, catalog_version, finalized_as_of, finalized_at)"
        f" SELECT {invoice_columns}, b.invoice_number, %s, b.sequence_number,"
        " (SELECT max(catalog_version) FROM raw.catalog_versions), %s, %s"
        " FROM marts.invoices AS i JOIN finalize_batch AS b ON b.invoice_id = i.invoice_id",
        [series, as_of, now],
    )
    line_columns = ", ".join(f"l.{c.strip()}" for c in _LINE_COLUMNS.split(","))
    db.execute(
        f"INSERT INTO billing.finalized_invoice_lines ({_LINE_COLUMNS})"
        f" SELECT {line_columns} FROM marts.invoice_lines AS l"
        " JOIN finalize_batch AS b ON b.invoice_id = l.invoice_id"
    )


_CORRECTIONS = """
SELECT l.invoice_id, c.invoice_number, c.invoice_id, c.period_start, c.period_end,
       sum(l.amount)
FROM billing.finalized_invoice_lines AS l
JOIN finalize_batch AS b ON b.invoice_id = l.invoice_id
JOIN billing.finalized_invoices AS c ON c.invoice_id = l.corrected_invoice_id
WHERE l.line_type = 'adjustment'
GROUP BY l.invoice_id, c.invoice_number, c.invoice_id, c.period_start, c.period_end
ORDER BY l.invoice_id, c.invoice_number
"""


def _finalized_notices(db: Session, numbered: list[tuple[_Candidate, str]]) -> list[outbox.Change]:
    """`invoice.finalized` for each invoice of the batch (still in finalize_batch), and
    `invoice.adjusted` for those that carry adjustment lines for late usage: the invoice
    that bills the corrections is the one the customer is told about, with every corrected
    invoice and the amount that corrects it. Amounts with the currency's decimals, as issued."""
    corrections: dict[str, list[tuple[Any, ...]]] = {}
    notices = []
    for invoice_id, *correction in db.rows(_CORRECTIONS):
        corrections.setdefault(invoice_id, []).append(tuple(correction))
    for inv, number in numbered:
        exponent = inv.currency_exponent
        data: dict[str, Any] = {
            "invoice_number": number, "invoice_id": inv.invoice_id,
            "customer_id": inv.customer_id, "subscription_id": inv.subscription_id,
            "period_start": inv.period_start, "period_end": inv.period_end,
            "total": format_amount(Decimal(inv.total), exponent), "currency": inv.currency,
        }  # fmt: skip
        notices.append(outbox.Change("invoice.finalized", number, data, inv.customer_id, number))
        corrected = corrections.get(inv.invoice_id)
        if not corrected:
            continue
        listed = [
            {"invoice_number": corrected_number, "invoice_id": corrected_id,
             "period_start": start, "period_end": end,
             "amount": format_amount(Decimal(amount), exponent)}
            for corrected_number, corrected_id, start, end, amount in corrected
        ]  # fmt: skip
        total = sum((Decimal(c[-1]) for c in corrected), Decimal(0))
        adjusted = {**data, "adjustment_total": format_amount(total, exponent),
                    "corrections": listed}  # fmt: skip
        notices.append(outbox.Change("invoice.adjusted", number, adjusted, inv.customer_id, number))
    return notices


def _blocked_notice(
    blocked: BlockedInvoice, customer_id: str, quality_run: str | None
) -> outbox.Change:
    """`finalization.blocked`, once per invoice and set of reasons: a rerun blocked for the
    same reasons is the same block, a different reason is news."""
    digest = hashlib.sha256("\n".join(sorted(blocked.reasons)).encode()).hexdigest()[:16]
    data = {
        "invoice_id": blocked.invoice_id, "customer_id": customer_id,
        "subscription_id": blocked.subscription_id, "period_start": blocked.period_start,
        "period_end": blocked.period_end, "reasons": list(blocked.reasons),
        "quality_run_id": quality_run,
    }  # fmt: skip
    # for the finance team only (no customer_id on the row): an internal hold, not the customer's
    return outbox.Change("finalization.blocked", f"{blocked.invoice_id}:{digest}", data,
                         subject=blocked.invoice_id)  # fmt: skip
