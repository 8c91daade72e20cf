"""`valueverse invoices export`: the invoice lines as dbt/docs/contract.md section 9 asks.

Only formatting: the lines come from `marts.invoice_lines` as dbt built them
(ingestion/billing/dbt_runner.py). Formatting happens in Python from exact `Decimal` values,
so both warehouses give byte-identical files (the engines print numbers differently).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from ingestion.landing.validation import plain_decimal
from ingestion.warehouse import (
    UsageError,
    WarehouseConfig,
    WarehouseError,
    WarehouseMissing,
    connect,
    driver_errors,
    is_undefined,
)

EXPORT_HEADER = (
    "subscription_id,customer_id,period_start,period_end,line_type,metric,quantity,amount,currency"
)
_EXPORT_QUERY = """
SELECT subscription_id, customer_id, period_start, period_end, line_type, metric, quantity,
       amount, currency, currency_exponent, line_order, charge_index,
       corrected_period_start, corrected_invoice_id, adjusted_line_order
FROM marts.invoice_lines
WHERE period_end <= %s
"""
_BUILT_AS_OF_QUERY = "SELECT max(as_of) FROM marts.subscription_periods"


def export_invoices(config: WarehouseConfig, as_of: date, out: Path) -> int:
    """Write invoice_lines.csv (spec section 9) for periods ending on or before `as_of`.

    Returns the number of lines written (the header not counted).
    """
    rows = sorted(_read_lines(config, as_of), key=_sort_key)
    text = "".join(line + "\n" for line in [EXPORT_HEADER, *(_format(row) for row in rows)])
    out = Path(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(text.encode("utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot write {out}: {exc.strerror or exc}") from None
    return len(rows)


def _read_lines(config: WarehouseConfig, as_of: date) -> Sequence[Sequence[Any]]:
    missing = "there are no invoice lines yet: run `valueverse build` first"
    try:
        with connect(config, read_only=True) as db:
            _check_built_as_of(db.value(_BUILT_AS_OF_QUERY), as_of)
            return db.rows(_EXPORT_QUERY, [as_of])
    except WarehouseMissing:
        raise UsageError(f"{config.duckdb_path} does not exist: {missing}") from None
    except driver_errors() as exc:
        if is_undefined(exc):
            raise UsageError(missing) from None
        raise WarehouseError(f"cannot read the invoice lines: {exc}") from None


def _check_built_as_of(built: date | None, as_of: date) -> None:
    """The marts hold invoices up to the as_of they were built with: exporting a later date
    would silently leave out the periods that ended in between."""
    if built is not None and as_of > built:
        raise UsageError(
            f"the invoices were built as of {built.isoformat()}: run "
            f"`valueverse build --as-of {as_of.isoformat()}` before exporting as of that date"
        )


def _sort_key(row: Sequence[Any]) -> tuple[Any, ...]:
    # subscription_id by code point (Python's str order), period, then the invoice's line order;
    # adjustment lines (line_order 6) by the period they correct, then the line they change
    corrected = (row[12] or date.min, row[13] or "", row[14] or 0)
    return (row[0], row[2], row[10], corrected, row[11] or 0)


def _format(row: Sequence[Any]) -> str:
    (
        subscription_id,
        customer_id,
        period_start,
        period_end,
        line_type,
        metric,
        quantity,
        amount,
        currency,
        exponent,
    ) = row[:10]
    fields: Iterable[str] = (
        subscription_id,
        customer_id,
        period_start.isoformat(),
        period_end.isoformat(),
        line_type,
        metric or "",
        "" if quantity is None else plain_decimal(Decimal(quantity)),
        format_amount(Decimal(amount), int(exponent)),
        currency,
    )
    return ",".join(fields)


def format_amount(amount: Decimal, exponent: int) -> str:
    """Exactly `exponent` decimals (`49.00`, `1200`, `0.125`); never `-0.00`."""
    quantized = amount.quantize(Decimal(1).scaleb(-exponent))
    if quantized == 0:
        quantized = abs(quantized)
    return format(quantized, "f")
