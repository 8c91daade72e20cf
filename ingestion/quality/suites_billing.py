"""Suites `rated_usage`, `invoice_lines` and `payments`: what billing would send out.

Every failing row of these marts carries its billing period, so a failure is
scoped to [period_start, period_end) and blocks only the invoices it touches.

- rated_usage: schema, keys, amounts present and non-negative (prices are
  >= 0 by the catalog rules), amount is amount_exact rounded once to the
  currency's exponent (half away from zero), accepted pricing models; the share
  of accepted events no charge bills (marts.unbilled_usage) is a warning.
- invoice_lines: schema, keys, accepted line types, and each invoice's total
  equals the sum of its lines (critical), compared as exact Decimals.
- payments: runs only when marts.payments exists (a later issue adds it):
  paid never exceeds due (critical); absent, the suite is skipped, never an error.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import great_expectations.expectations as gxe
import pandas as pd

from ingestion.quality.checks import Check
from ingestion.quality.config import Thresholds
from ingestion.quality.frames import Reader, select_list
from ingestion.quality.gx_helpers import critical, schema_check, warning

PERIOD = ("period_start", "period_end")
MODELS = ["per_unit", "graduated", "volume", "package"]
# finalized: issued by ingestion/billing/finalization.py
STATUSES = ["draft", "closed", "finalized"]
LINE_TYPES = ["fixed_fee", "usage", "minimum_commitment", "discount", "tax", "adjustment"]
RATED = ["line_id", "invoice_id", *PERIOD, "model", "quantity", "event_count"]
RATED += ["amount_exact", "amount", "currency", "currency_exponent"]
LINES = ["line_id", "invoice_id", *PERIOD, "line_type", "amount", "currency"]
INVOICES = ["invoice_id", *PERIOD, "status", "subtotal", "total", "currency"]
PAYMENTS = ["invoice_id", "amount_due", "amount_paid"]


def rounded(exact: Decimal | None, exponent: object) -> Decimal | None:
    """`exact` rounded once to `exponent` decimals, half away from zero (spec rounding)."""
    if exact is None or exponent is None or pd.isna(exponent):
        return None
    return exact.quantize(Decimal(1).scaleb(-int(str(exponent))), rounding=ROUND_HALF_UP)


def rated_usage_checks(reader: Reader, thresholds: Thresholds) -> list[Check]:
    present = reader.table_columns("marts", "rated_usage")
    money = ["quantity", "amount_exact", "amount"]
    frame = reader.frame(
        f"SELECT {select_list(RATED, present, text=money)} FROM marts.rated_usage",
        decimals=money,
        dates=PERIOD,
    )
    exps = [schema_check(RATED)]
    exps += [
        critical(gxe.ExpectColumnValuesToNotBeNull, column=c)
        for c in ("line_id", "invoice_id", *PERIOD, "quantity", "amount_exact", "amount")
        if c in present
    ]
    if "line_id" in present:
        exps.append(critical(gxe.ExpectColumnValuesToBeUnique, column="line_id"))
    exps += [
        critical(gxe.ExpectColumnValuesToBeBetween, column=c, min_value=0)
        for c in ("amount_exact", "amount")
        if c in present
    ]
    if "model" in present:
        exps.append(critical(gxe.ExpectColumnValuesToBeInSet, column="model", value_set=MODELS))
    if {"amount_exact", "amount", "currency_exponent"} <= set(present):
        pairs = zip(frame["amount_exact"], frame["currency_exponent"], strict=True)
        frame["amount_rounded"] = pd.Series([rounded(e, x) for e, x in pairs], dtype=object)
        exps.append(
            critical(
                gxe.ExpectColumnPairValuesToBeEqual,
                column_A="amount",
                column_B="amount_rounded",
                meta={"why": "amount is amount_exact rounded once, half away from zero"},
            )
        )
    checks = [Check("rated_usage", "marts_rated_usage", frame, exps, scope=PERIOD, key="line_id")]
    return checks + [_unbilled_share(reader, thresholds)]


def _unbilled_share(reader: Reader, thresholds: Thresholds) -> Check:
    unbilled = int(reader.scalar("SELECT COUNT(*) FROM marts.unbilled_usage"))
    accepted = int(reader.scalar("SELECT COUNT(*) FROM raw.events"))
    share = unbilled / accepted if accepted else 0.0
    frame = pd.DataFrame([{"unbilled": unbilled, "accepted": accepted, "unbilled_share": share}])
    exps = [
        warning(
            gxe.ExpectColumnValuesToBeBetween,
            column="unbilled_share",
            min_value=0,
            max_value=thresholds.max_unbilled_share,
        )
    ]
    return Check("rated_usage", "unbilled_share", frame, exps)


def invoice_checks(reader: Reader) -> list[Check]:
    lines_present = reader.table_columns("marts", "invoice_lines")
    lines = reader.frame(
        f"SELECT {select_list(LINES, lines_present, text=['amount'])} FROM marts.invoice_lines",
        decimals=["amount"],
        dates=PERIOD,
    )
    exps = [schema_check(LINES)]
    exps += [
        critical(gxe.ExpectColumnValuesToNotBeNull, column=c)
        for c in ("line_id", "invoice_id", *PERIOD, "line_type", "amount", "currency")
        if c in lines_present
    ]
    if "line_id" in lines_present:
        exps.append(critical(gxe.ExpectColumnValuesToBeUnique, column="line_id"))
    if "line_type" in lines_present:
        exps.append(
            critical(gxe.ExpectColumnValuesToBeInSet, column="line_type", value_set=LINE_TYPES)
        )
    inv_present = reader.table_columns("marts", "invoices")
    money = ["subtotal", "total"]
    invoices = reader.frame(
        f"SELECT {select_list(INVOICES, inv_present, text=money)} FROM marts.invoices",
        decimals=money,
        dates=PERIOD,
    )
    inv_exps = [schema_check(INVOICES)]
    inv_exps += [
        critical(gxe.ExpectColumnValuesToNotBeNull, column=c)
        for c in ("invoice_id", *PERIOD, "status", "total", "currency")
        if c in inv_present
    ]
    if "invoice_id" in inv_present:
        inv_exps.append(critical(gxe.ExpectColumnValuesToBeUnique, column="invoice_id"))
    if "status" in inv_present:
        inv_exps.append(
            critical(gxe.ExpectColumnValuesToBeInSet, column="status", value_set=STATUSES)
        )
    return [
        Check("invoice_lines", "marts_invoice_lines", lines, exps, scope=PERIOD, key="line_id"),
        Check(
            "invoice_lines", "marts_invoices", invoices, inv_exps, scope=PERIOD, key="invoice_id"
        ),
        _invoice_totals(reader),
    ]


def _invoice_totals(reader: Reader) -> Check:
    """One row per invoice: its total and the sum of its lines (lines without an invoice too)."""
    frame = reader.frame(
        """
        WITH sums AS (
            SELECT invoice_id, MIN(period_start) AS period_start, MAX(period_end) AS period_end,
                   SUM(amount) AS sum_of_lines
            FROM marts.invoice_lines GROUP BY invoice_id)
        SELECT COALESCE(i.invoice_id, s.invoice_id) AS invoice_id,
               COALESCE(i.period_start, s.period_start) AS period_start,
               COALESCE(i.period_end, s.period_end) AS period_end,
               CAST(i.total AS VARCHAR) AS total,
               CAST(COALESCE(s.sum_of_lines, 0) AS VARCHAR) AS sum_of_lines
        FROM marts.invoices i FULL OUTER JOIN sums s ON s.invoice_id = i.invoice_id
        ORDER BY 1
        """,
        decimals=["total", "sum_of_lines"],
        dates=PERIOD,
    )
    exps = [
        critical(
            gxe.ExpectColumnPairValuesToBeEqual,
            column_A="total",
            column_B="sum_of_lines",
            ignore_row_if="both_values_are_missing",
            meta={"why": "an invoice's total equals the sum of its lines, exactly"},
        )
    ]
    return Check("invoice_lines", "invoice_totals", frame, exps, scope=PERIOD, key="invoice_id")


def payments_checks(reader: Reader) -> list[Check]:
    """Empty when marts.payments does not exist (the caller records the skip)."""
    present = reader.table_columns("marts", "payments")
    if not present:
        return []
    money = ["amount_due", "amount_paid"]
    cols = select_list(PAYMENTS, present, text=money, alias="p.")
    join = "invoice_id" in present
    sql = f"SELECT {cols}" + (", i.period_start, i.period_end" if join else "")
    sql += " FROM marts.payments p"
    if join:
        sql += " LEFT JOIN marts.invoices i ON i.invoice_id = p.invoice_id"
    frame = reader.frame(sql, decimals=money, dates=PERIOD)
    exps = [schema_check(PAYMENTS)]
    exps += [
        critical(gxe.ExpectColumnValuesToNotBeNull, column=c) for c in PAYMENTS if c in present
    ]
    if {"amount_due", "amount_paid"} <= set(present):
        exps.append(
            critical(
                gxe.ExpectColumnPairValuesAToBeGreaterThanB,
                column_A="amount_due",
                column_B="amount_paid",
                or_equal=True,
                meta={"why": "an invoice is never paid more than is due"},
            )
        )
    scope = PERIOD if join else None
    return [Check("payments", "marts_payments", frame, exps, scope=scope, key="invoice_id")]
