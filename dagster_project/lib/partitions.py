"""Monthly billing-period partitions.

A partition is a calendar month; materializing it finalizes the invoices of periods that end
within that month (and any earlier ones still open: finalization is cumulative and
idempotent). Its `as_of` is the day after the month, capped at today, so the current month's
partition can run daily and finalizes what is due so far. Anniversary and yearly periods fit:
what matters is the day a period ends, not where it starts.
"""

from __future__ import annotations

from datetime import date

import dagster as dg

# the first month with billing data in any ValueVerse deployment (the sample starts 2026-08)
BILLING_START = "2026-01-01"

billing_months = dg.MonthlyPartitionsDefinition(start_date=BILLING_START, end_offset=1)


def month_end_exclusive(partition_key: str) -> date:
    """First day of the month after the partition's month."""
    start = date.fromisoformat(partition_key)
    return date(start.year + start.month // 12, start.month % 12 + 1, 1)


def as_of_for_partition(partition_key: str, today: date) -> date:
    """The as_of that finalizes the partition's month: its end, or today while it runs."""
    return min(month_end_exclusive(partition_key), today)
