"""What the read endpoints answer, read from the marts and the billing store (no rating here:
every amount is what dbt computed, so the API, the dashboards and the invoices agree)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from ingestion.warehouse import Session, is_undefined

_USAGE = """
SELECT period_start, period_end, period_status, charge_index, metric_code, aggregation,
       quantity, event_count, amount, currency, last_event_at
FROM marts.rated_usage
WHERE customer_id = %s
ORDER BY period_start DESC, charge_index
"""
_LAST_BUILD = "SELECT max(finished_at) FROM analytics.valueverse_build_log"
_ISSUED = """
SELECT f.invoice_number, f.invoice_id, f.period_start, f.period_end, f.total, f.currency,
       f.finalized_at, coalesce(s.payment_status, 'open')
FROM billing.finalized_invoices AS f
LEFT JOIN billing.invoice_payment_status AS s ON s.invoice_id = f.invoice_id
WHERE f.customer_id = %s
ORDER BY f.period_start DESC, f.invoice_number
"""
_DRAFTS = """
SELECT i.invoice_id, i.period_start, i.period_end, i.total, i.currency, i.status
FROM marts.invoices AS i
WHERE i.customer_id = %s AND i.invoice_number IS NULL
  AND NOT EXISTS (SELECT 1 FROM billing.finalized_invoices AS f WHERE f.invoice_id = i.invoice_id)
ORDER BY i.period_start DESC
"""
_INVOICE = """
SELECT invoice_number, invoice_id, customer_id, period_start, period_end, subtotal,
       discount_amount, tax_amount, adjustment_amount, total, currency, finalized_at
FROM billing.finalized_invoices WHERE invoice_number = %s
"""
_LINES = """
SELECT line_id, line_order, line_type, charge_index, metric, quantity, amount
FROM billing.finalized_invoice_lines WHERE invoice_id = %s ORDER BY line_order
"""
_LINE_EVENTS = """
SELECT line_id, event_id, event_ts, value_number, value_text
FROM marts.invoice_line_events
WHERE line_id IN (SELECT unnest(CAST(%s AS VARCHAR[])))
ORDER BY line_id, event_ts, event_id
LIMIT %s OFFSET %s
"""


def usage(db: Session, customer_id: str) -> dict[str, Any] | None:
    """Quantity and amount so far per period and charge; None when the customer has none."""
    rows = db.rows(_USAGE, [customer_id])
    if not rows:
        return None
    periods: dict[tuple, dict[str, Any]] = {}
    for (
        start,
        end,
        status,
        charge,
        metric,
        aggregation,
        quantity,
        events,
        amount,
        currency,
        last,
    ) in rows:  # noqa: E501
        period = periods.setdefault((start, end), {
            "period_start": start, "period_end": end, "status": status, "currency": currency,
            "charges": [],
        })  # fmt: skip
        period["charges"].append({
            "charge_index": charge, "metric": metric, "aggregation": aggregation,
            "quantity": quantity, "event_count": events, "amount": amount,
            "last_event_at": last,
        })  # fmt: skip
    return {
        "customer_id": customer_id,
        "built_at": _last_build(db),
        "periods": list(periods.values()),
    }


def invoices(db: Session, customer_id: str) -> list[dict[str, Any]]:
    """Issued invoices (numbered, with their payment status), then open and draft ones."""
    issued = [
        {"invoice_number": number, "invoice_id": invoice_id, "period_start": start,
         "period_end": end, "total": total, "currency": currency, "finalized_at": finalized,
         "status": "issued", "payment_status": payment}
        for number, invoice_id, start, end, total, currency, finalized, payment
        in db.rows(_ISSUED, [customer_id])
    ]  # fmt: skip
    drafts = [
        {"invoice_number": None, "invoice_id": invoice_id, "period_start": start,
         "period_end": end, "total": total, "currency": currency, "status": status}
        for invoice_id, start, end, total, currency, status in db.rows(_DRAFTS, [customer_id])
    ]  # fmt: skip
    return issued + drafts


def invoice(db: Session, number: str, page: int, page_size: int) -> dict[str, Any] | None:
    """An issued invoice, its lines, and one page of the events behind its usage lines."""
    head = db.one(_INVOICE, [number])
    if head is None:
        return None
    names = ("invoice_number", "invoice_id", "customer_id", "period_start", "period_end",
             "subtotal", "discount_amount", "tax_amount", "adjustment_amount", "total",
             "currency", "finalized_at")  # fmt: skip
    result: dict[str, Any] = dict(zip(names, head, strict=True))
    lines = [
        {"line_id": line_id, "line_order": order, "line_type": kind, "charge_index": charge,
         "metric": metric, "quantity": quantity, "amount": amount, "events": []}
        for line_id, order, kind, charge, metric, quantity, amount
        in db.rows(_LINES, [result["invoice_id"]])
    ]  # fmt: skip
    by_id = {line["line_id"]: line for line in lines}
    usage_ids = [line["line_id"] for line in lines if line["charge_index"] is not None]
    events = db.rows(_LINE_EVENTS, [usage_ids, page_size + 1, (page - 1) * page_size])
    for line_id, event_id, event_ts, number_value, text_value in events[:page_size]:
        by_id[line_id]["events"].append(
            {"event_id": event_id, "event_ts": event_ts, "value": number_value
             if number_value is not None else text_value}
        )  # fmt: skip
    result["lines"] = lines
    next_page = page + 1 if len(events) > page_size else None
    result["events_page"] = {"page": page, "page_size": page_size, "next_page": next_page}
    return result


def customer_known(db: Session, customer_id: str) -> bool:
    row = db.one(
        "SELECT 1 FROM marts.subscription_periods WHERE customer_id = %s LIMIT 1", [customer_id]
    )
    return row is not None


def _last_build(db: Session) -> datetime | None:
    try:
        return db.value(_LAST_BUILD)
    except Exception as exc:
        if is_undefined(exc):
            return None
        raise


def jsonable(value: Any) -> Any:
    """Decimals as exact strings (money is never a float), dates and times as ISO 8601."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat() + ("Z" if value.tzinfo is None else "")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    return value
