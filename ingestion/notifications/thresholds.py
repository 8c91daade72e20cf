"""Usage and spend thresholds (catalog `thresholds:`, raw.catalog_thresholds), evaluated from
the marts after each build; each crossing recorded once in the notifications outbox.

What "reached" means (dbt/docs/contract.md, "Usage and spend thresholds"): a period's value,
as the latest successful build computed it, is at or above the threshold. The value is
- usage: the sum of q over the plan's charges of the metric (marts.rated_usage);
- spend: the period's rated usage amount so far, in the plan's currency (the usage lines,
  before minimum top-up, discounts and tax);
- commitment: that spend as a percentage of the period's minimum commitment, prorated like the
  invoice's minimum (active_days / days_in_period).
Periods evaluated: every period that has started by `as_of` and is not finalized (the open one
and those still in their grace window, where late usage still lands once built). A finalized
period is frozen: its late usage is billed as an adjustment on the next invoice, and counts
toward no period's thresholds.

Why a crossing is keyed by (threshold, subscription, period start) and not by the value: a
rebuild, a rerun or late usage that crosses again must not alert again, and the next period
starts afresh. The alert carries the value, the threshold and the build time it was computed
at (the latest `analytics.valueverse_build_log` entry), so a receiver knows how fresh it is.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import ROUND_DOWN, Decimal
from typing import Any

from ingestion.billing.export import format_amount
from ingestion.billing.invoice_store import ensure_store
from ingestion.billing.outbox import Change, record_many
from ingestion.landing.validation import plain_decimal
from ingestion.warehouse import Session, WarehouseConfig, transaction

_LAST_BUILD = "SELECT max(finished_at) FROM analytics.valueverse_build_log"
_THRESHOLDS = """
SELECT threshold_id, plan_code, subscription_id, kind, metric_code, threshold_value
FROM raw.catalog_thresholds
WHERE catalog_version = (SELECT max(catalog_version) FROM raw.catalog_versions)
ORDER BY threshold_id
"""
_MINIMUMS = """
SELECT plan_code, minimum_commitment FROM raw.catalog_plans
WHERE catalog_version = (SELECT max(catalog_version) FROM raw.catalog_versions)
"""
_PERIODS = """
SELECT invoice_id, subscription_id, customer_id, plan_code, period_start, period_end,
       active_days, days_in_period, currency, currency_exponent
FROM marts.subscription_periods
WHERE period_start <= %s
  AND invoice_id NOT IN (SELECT invoice_id FROM billing.finalized_invoices)
ORDER BY subscription_id, period_start
"""
_USAGE = """
SELECT invoice_id, metric_code, sum(quantity), sum(amount)
FROM marts.rated_usage WHERE period_start <= %s GROUP BY invoice_id, metric_code
"""
_EVENT_TYPES = {
    "usage": "usage.threshold_reached",
    "spend": "spend.threshold_reached",
    "commitment": "spend.threshold_reached",
}


@dataclass(frozen=True)
class Threshold:
    threshold_id: str
    plan_code: str | None
    subscription_id: str | None
    kind: str  # usage | spend | commitment
    metric_code: str | None
    value: Decimal

    def applies_to(self, subscription_id: str, plan_code: str) -> bool:
        return self.subscription_id == subscription_id or self.plan_code == plan_code


@dataclass(frozen=True)
class Period:
    invoice_id: str
    subscription_id: str
    customer_id: str
    plan_code: str
    period_start: date
    period_end: date
    active_days: int
    days_in_period: int
    currency: str
    currency_exponent: int

    def money(self, amount: Decimal) -> str:
        """An amount as the period's invoice shows it: the currency's decimals."""
        return format_amount(amount, self.currency_exponent)


def evaluate_thresholds(config: WarehouseConfig, as_of: date) -> int:
    """Record every threshold the marts show reached and that was not recorded before, in one
    transaction; the number of notifications newly recorded (0 on a rerun)."""
    ensure_store(config)
    with transaction(config) as db:
        if not _exists(db, "analytics", "valueverse_build_log") or not _exists(
            db, "raw", "catalog_thresholds"
        ):
            return 0  # never built, or built before thresholds existed: nothing to evaluate
        built = db.value(_LAST_BUILD)
        thresholds = [Threshold(*row) for row in db.rows(_THRESHOLDS)]
        if built is None or not thresholds:
            return 0
        built_at = built.replace(tzinfo=UTC)
        minimums = {code: minimum for code, minimum in db.rows(_MINIMUMS)}
        usage: dict[str, dict[str, tuple[Decimal, Decimal]]] = defaultdict(dict)
        for invoice_id, metric, quantity, amount in db.rows(_USAGE, [as_of]):
            usage[invoice_id][metric] = (Decimal(quantity), Decimal(amount))
        before = _count(db)
        crossings = []
        for row in db.rows(_PERIODS, [as_of]):
            period = Period(*row)
            for threshold in thresholds:
                if threshold.applies_to(period.subscription_id, period.plan_code):
                    reached = _reached(threshold, period, usage[period.invoice_id], minimums)
                    if reached is not None:
                        crossings.append(_crossing(threshold, period, reached, built_at, as_of))
        record_many(db, crossings)  # those recorded before (same period) are no-ops
        return _count(db) - before


def _reached(
    threshold: Threshold,
    period: Period,
    usage: dict[str, tuple[Decimal, Decimal]],
    minimums: dict[str, Decimal | None],
) -> dict[str, Any] | None:
    """The figures of the crossing (as text: quantities plain, money with the currency's
    decimals) when the period has reached the threshold, else None."""
    spend = sum((amount for _q, amount in usage.values()), Decimal(0))
    if threshold.kind == "usage":
        used = usage.get(threshold.metric_code or "", (Decimal(0), Decimal(0)))[0]
        if used < threshold.value:
            return None
        return {"value": plain_decimal(used), "threshold": plain_decimal(threshold.value)}
    if threshold.kind == "spend":
        if spend < threshold.value:
            return None
        return {"value": period.money(spend), "threshold": period.money(threshold.value),
                "currency": period.currency}  # fmt: skip
    minimum = minimums.get(period.plan_code)
    if not minimum or period.active_days <= 0:
        return None
    commitment = Decimal(minimum) * period.active_days / period.days_in_period
    if spend * 100 < threshold.value * commitment:  # exact: no division rounds a miss up
        return None
    percent = (spend * 100 / commitment).quantize(Decimal("0.01"), rounding=ROUND_DOWN)
    return {"value": format(percent, "f"), "threshold": plain_decimal(threshold.value),
            "spend": period.money(spend), "commitment": period.money(commitment),
            "currency": period.currency}  # fmt: skip


def _crossing(
    threshold: Threshold,
    period: Period,
    reached: dict[str, Any],
    built_at: datetime,
    as_of: date,
) -> Change:
    data = {
        "threshold_id": threshold.threshold_id, "kind": threshold.kind,
        "metric": threshold.metric_code, **reached,
        "customer_id": period.customer_id, "subscription_id": period.subscription_id,
        "plan_code": period.plan_code, "invoice_id": period.invoice_id,
        "period_start": period.period_start, "period_end": period.period_end,
        "computed_at": built_at, "as_of": as_of,
    }  # fmt: skip
    change = f"{threshold.threshold_id}:{period.subscription_id}:{period.period_start}"
    return Change(_EVENT_TYPES[threshold.kind], change, data, period.customer_id,
                  period.invoice_id)  # fmt: skip


def _exists(db: Session, schema: str, table: str) -> bool:
    """Asked first, not tried: a failed statement would abort the transaction on PostgreSQL."""
    found = db.value(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = %s"
        " AND table_name = %s",
        [schema, table],
    )
    return bool(found)


def _count(db: Session) -> int:
    """How many notifications the outbox holds (the difference is what this run added)."""
    return int(db.value("SELECT count(*) FROM billing.notifications"))
